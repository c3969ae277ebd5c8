CREATE TABLE `persona_versions` (
	`tenant_id` text NOT NULL,
	`persona_id` text NOT NULL,
	`version` integer NOT NULL,
	`voice` text NOT NULL,
	`audience` text,
	`dos` text NOT NULL,
	`donts` text NOT NULL,
	`examples` text NOT NULL,
	`banned_words` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`persona_id`, `version`)
);
--> statement-breakpoint
CREATE TABLE `personas` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`project_id` text NOT NULL,
	`name` text NOT NULL,
	`latest_version` integer NOT NULL,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `personas_tenant_idx` ON `personas` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `personas_project_idx` ON `personas` (`tenant_id`,`project_id`,`id`);--> statement-breakpoint
ALTER TABLE `agents` ADD `persona_id` text;