CREATE TABLE `member_tenants` (
	`user_id` text NOT NULL,
	`tenant_id` text NOT NULL,
	`first_joined_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`user_id`, `tenant_id`)
);
--> statement-breakpoint
CREATE INDEX `member_tenants_tenant_idx` ON `member_tenants` (`tenant_id`);--> statement-breakpoint
-- Every membership made from now on is remembered here, and every one that exists now.
CREATE TRIGGER `memberships_remembered` AFTER INSERT ON `memberships` BEGIN
  INSERT OR IGNORE INTO `member_tenants` (`user_id`, `tenant_id`) VALUES (NEW.`user_id`, NEW.`tenant_id`);
END;
--> statement-breakpoint
INSERT OR IGNORE INTO `member_tenants` (`user_id`, `tenant_id`, `first_joined_at`) SELECT `user_id`, `tenant_id`, `created_at` FROM `memberships`;
