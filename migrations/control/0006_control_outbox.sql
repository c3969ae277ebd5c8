CREATE TABLE `outbox` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`type` text NOT NULL,
	`subject_type` text NOT NULL,
	`subject_id` text NOT NULL,
	`data` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`relayed_at` text
);
--> statement-breakpoint
CREATE INDEX `outbox_unrelayed_idx` ON `outbox` (`tenant_id`,`id`) WHERE relayed_at IS NULL;--> statement-breakpoint
CREATE INDEX `outbox_created_idx` ON `outbox` (`created_at`);