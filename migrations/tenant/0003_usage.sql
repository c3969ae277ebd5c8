CREATE TABLE `usage_daily` (
	`tenant_id` text NOT NULL,
	`day` text NOT NULL,
	`model` text NOT NULL,
	`project_id` text NOT NULL,
	`user_id` text NOT NULL,
	`calls` integer NOT NULL,
	`tokens_in` integer NOT NULL,
	`tokens_out` integer NOT NULL,
	`cost_micros` integer NOT NULL,
	PRIMARY KEY(`tenant_id`, `day`, `model`, `project_id`, `user_id`)
);
--> statement-breakpoint
CREATE TABLE `usage_events` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`day` text NOT NULL,
	`user_id` text NOT NULL,
	`api_key_id` text,
	`project_id` text NOT NULL,
	`source` text NOT NULL,
	`source_id` text,
	`model` text NOT NULL,
	`provider` text NOT NULL,
	`tokens_in` integer NOT NULL,
	`tokens_out` integer NOT NULL,
	`cost_micros` integer NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `usage_events_tenant_day_idx` ON `usage_events` (`tenant_id`,`day`);