CREATE TABLE `conversations` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`project_id` text NOT NULL,
	`title` text,
	`system_prompt` text,
	`model` text NOT NULL,
	`retention_days` integer,
	`message_count` integer DEFAULT 0 NOT NULL,
	`last_activity_at` text,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `conversations_tenant_idx` ON `conversations` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `conversations_project_idx` ON `conversations` (`tenant_id`,`project_id`,`id`);