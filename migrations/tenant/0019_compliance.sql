CREATE TABLE `compliance_settings` (
	`tenant_id` text PRIMARY KEY NOT NULL,
	`run_retention_days` integer,
	`audit_retention_days` integer DEFAULT 400 NOT NULL,
	`webhook_retention_days` integer DEFAULT 30 NOT NULL,
	`uploads_on_erasure` text DEFAULT 'keep' NOT NULL,
	`updated_by` text,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE TABLE `exports` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`scope` text NOT NULL,
	`requested_by` text NOT NULL,
	`status` text DEFAULT 'queued' NOT NULL,
	`progress` text,
	`manifest` text,
	`object_key` text,
	`bytes` integer,
	`error` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`started_at` text,
	`completed_at` text,
	`expires_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `exports_tenant_idx` ON `exports` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `exports_expiry_idx` ON `exports` (`tenant_id`,`expires_at`);--> statement-breakpoint
-- Every audit entry is also an `audit.entry_created` event for webhooks, written by the insert's own
-- statement, so no path that records an entry can leave its event out. The event's id is the entry's
-- (same time order); its data names the actor and resource but carries no details (they may hold an
-- email): a subscriber reads them from GET /v1/audit-log.
CREATE TRIGGER `audit_log_event` AFTER INSERT ON `audit_log` BEGIN
  INSERT INTO `outbox` (`id`, `tenant_id`, `type`, `subject_type`, `subject_id`, `data`, `created_at`)
  VALUES ('evt_' || substr(NEW.`id`, 5), NEW.`tenant_id`, 'audit.entry_created', 'audit_entry', NEW.`id`,
    json_object('id', NEW.`id`, 'action', NEW.`action`, 'actor', json_object('type', NEW.`actor_type`, 'id', NEW.`actor_id`),
      'resource', json_object('type', NEW.`resource_type`, 'id', NEW.`resource_id`), 'request_id', NEW.`request_id`, 'created_at', NEW.`created_at`),
    NEW.`created_at`);
END;
