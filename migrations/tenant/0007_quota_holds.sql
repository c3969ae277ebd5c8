CREATE TABLE `quota_holds` (
	`tenant_id` text NOT NULL,
	`reference` text NOT NULL,
	`month` text NOT NULL,
	`tokens` integer NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`tenant_id`, `reference`)
);
--> statement-breakpoint
CREATE INDEX `quota_holds_created_idx` ON `quota_holds` (`created_at`);--> statement-breakpoint
-- A run's reservation moves from its row to a hold named by the run, so a deploy mid-run loses none.
INSERT INTO `quota_holds` (`tenant_id`, `reference`, `month`, `tokens`) SELECT `tenant_id`, `id`, `reserved_month`, `reserved_tokens` FROM `runs` WHERE `reserved_tokens` > 0 AND `reserved_month` IS NOT NULL;--> statement-breakpoint
ALTER TABLE `runs` DROP COLUMN `reserved_tokens`;--> statement-breakpoint
ALTER TABLE `runs` DROP COLUMN `reserved_month`;