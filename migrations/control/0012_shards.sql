ALTER TABLE `migration_rollouts` ADD `shard` text DEFAULT 's1' NOT NULL;--> statement-breakpoint
ALTER TABLE `tenant_databases` ADD `shard` text DEFAULT 's1' NOT NULL;--> statement-breakpoint
-- One rollout at a time per shard: each shard's Worker migrates only the databases it binds.
DROP INDEX `migration_rollouts_one_active`;--> statement-breakpoint
CREATE UNIQUE INDEX `migration_rollouts_one_active` ON `migration_rollouts` (`shard`) WHERE `status` IN ('running', 'paused');--> statement-breakpoint
-- Placing a signup asks each shard's free count per jurisdiction.
CREATE INDEX `tenant_databases_free_idx` ON `tenant_databases` (`jurisdiction`, `shard`) WHERE `tenant_id` IS NULL;
