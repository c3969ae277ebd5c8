CREATE TABLE `live_sockets` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`conversation_id` text NOT NULL,
	`user_id` text NOT NULL,
	`api_key_id` text,
	`expires_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `live_sockets_user_idx` ON `live_sockets` (`tenant_id`,`user_id`,`expires_at`);--> statement-breakpoint
CREATE INDEX `live_sockets_expiry_idx` ON `live_sockets` (`tenant_id`,`expires_at`);