CREATE TABLE `migration_rollouts` (
	`id` text PRIMARY KEY NOT NULL,
	`target` text NOT NULL,
	`canary` integer DEFAULT 0 NOT NULL,
	`status` text DEFAULT 'running' NOT NULL,
	`total` integer NOT NULL,
	`failed_binding` text,
	`failed_migration` text,
	`failed_statement` text,
	`error` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`completed_at` text
);
--> statement-breakpoint
-- One rollout at a time: a second one started while one runs or is paused conflicts here (409).
CREATE UNIQUE INDEX `migration_rollouts_one_active` ON `migration_rollouts` ((1)) WHERE `status` IN ('running', 'paused');
