CREATE TABLE `channel_accounts` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`project_id` text NOT NULL,
	`channel` text NOT NULL,
	`name` text NOT NULL,
	`credentials` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `channel_accounts_project_channel` ON `channel_accounts` (`tenant_id`,`project_id`,`channel`);--> statement-breakpoint
CREATE INDEX `channel_accounts_tenant_idx` ON `channel_accounts` (`tenant_id`,`id`);--> statement-breakpoint
CREATE TABLE `post_publications` (
	`tenant_id` text NOT NULL,
	`post_id` text NOT NULL,
	`revision` integer NOT NULL,
	`channel` text NOT NULL,
	`account_id` text NOT NULL,
	`external_id` text NOT NULL,
	`url` text NOT NULL,
	`published_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`post_id`, `revision`, `channel`)
);
--> statement-breakpoint
ALTER TABLE `posts` ADD `publish_error` text;--> statement-breakpoint
ALTER TABLE `posts` ADD `publish_lease_until` integer;--> statement-breakpoint
ALTER TABLE `posts` ADD `published_at` text;