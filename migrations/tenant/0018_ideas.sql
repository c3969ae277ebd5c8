CREATE TABLE `ideas` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`project_id` text NOT NULL,
	`campaign_id` text NOT NULL,
	`run_id` text NOT NULL,
	`seq` integer NOT NULL,
	`title` text NOT NULL,
	`angle` text NOT NULL,
	`channel` text NOT NULL,
	`draft` text NOT NULL,
	`post_id` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `ideas_tenant_idx` ON `ideas` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `ideas_campaign_idx` ON `ideas` (`tenant_id`,`campaign_id`,`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `ideas_run_seq` ON `ideas` (`tenant_id`,`run_id`,`seq`);