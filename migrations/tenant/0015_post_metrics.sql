CREATE TABLE `post_metrics` (
	`tenant_id` text NOT NULL,
	`post_id` text NOT NULL,
	`campaign_id` text,
	`channel` text NOT NULL,
	`hour` text NOT NULL,
	`impressions` integer NOT NULL,
	`clicks` integer NOT NULL,
	`reactions` integer NOT NULL,
	`shares` integer NOT NULL,
	`conversions` integer,
	PRIMARY KEY(`post_id`, `channel`, `hour`)
);
--> statement-breakpoint
CREATE INDEX `post_metrics_campaign_idx` ON `post_metrics` (`tenant_id`,`campaign_id`,`hour`);