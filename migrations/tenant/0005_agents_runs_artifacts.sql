CREATE TABLE `agents` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`project_id` text NOT NULL,
	`name` text NOT NULL,
	`model` text NOT NULL,
	`system_prompt` text,
	`temperature` real,
	`max_tokens` integer NOT NULL,
	`tools` text DEFAULT '[]' NOT NULL,
	`prompt_key` text,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `agents_tenant_idx` ON `agents` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `agents_project_idx` ON `agents` (`tenant_id`,`project_id`,`id`);--> statement-breakpoint
CREATE TABLE `artifact_versions` (
	`tenant_id` text NOT NULL,
	`artifact_id` text NOT NULL,
	`version` integer NOT NULL,
	`r2_key` text NOT NULL,
	`sha256` text NOT NULL,
	`size` integer NOT NULL,
	`content_type` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`tenant_id`, `artifact_id`, `version`)
);
--> statement-breakpoint
CREATE TABLE `artifacts` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`project_id` text NOT NULL,
	`kind` text NOT NULL,
	`name` text NOT NULL,
	`latest_version` integer NOT NULL,
	`run_id` text,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `artifacts_tenant_idx` ON `artifacts` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `artifacts_project_idx` ON `artifacts` (`tenant_id`,`project_id`,`id`);--> statement-breakpoint
CREATE TABLE `outbox` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`type` text NOT NULL,
	`subject_type` text NOT NULL,
	`subject_id` text NOT NULL,
	`data` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`published_at` text
);
--> statement-breakpoint
CREATE INDEX `outbox_tenant_idx` ON `outbox` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `outbox_subject_idx` ON `outbox` (`tenant_id`,`subject_id`,`id`);--> statement-breakpoint
CREATE TABLE `prompt_versions` (
	`tenant_id` text NOT NULL,
	`prompt_key` text NOT NULL,
	`version` integer NOT NULL,
	`template` text NOT NULL,
	`variables` text NOT NULL,
	`weight` integer DEFAULT 0 NOT NULL,
	`note` text,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`tenant_id`, `prompt_key`, `version`)
);
--> statement-breakpoint
CREATE TABLE `prompts` (
	`tenant_id` text NOT NULL,
	`key` text NOT NULL,
	`latest_version` integer NOT NULL,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`tenant_id`, `key`)
);
--> statement-breakpoint
CREATE TABLE `runs` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`project_id` text NOT NULL,
	`agent_id` text NOT NULL,
	`status` text NOT NULL,
	`input` text NOT NULL,
	`agent_config` text NOT NULL,
	`prompt` text NOT NULL,
	`prompt_key` text,
	`prompt_version` integer,
	`output` text,
	`error_code` text,
	`error` text,
	`attempts` integer DEFAULT 0 NOT NULL,
	`lease_token` text,
	`lease_until` integer,
	`reserved_tokens` integer DEFAULT 0 NOT NULL,
	`reserved_month` text,
	`artifact_id` text NOT NULL,
	`model` text,
	`provider` text,
	`tokens_in` integer,
	`tokens_out` integer,
	`cost_micros` integer,
	`latency_ms` integer,
	`cancel_requested_at` text,
	`idempotency_key` text,
	`request_hash` text,
	`created_by` text NOT NULL,
	`api_key_id` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`started_at` text,
	`finished_at` text,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `runs_tenant_idx` ON `runs` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `runs_status_idx` ON `runs` (`tenant_id`,`status`,`id`);--> statement-breakpoint
CREATE INDEX `runs_agent_idx` ON `runs` (`tenant_id`,`agent_id`,`id`);--> statement-breakpoint
CREATE INDEX `runs_prompt_idx` ON `runs` (`tenant_id`,`prompt_key`,`prompt_version`);--> statement-breakpoint
CREATE UNIQUE INDEX `runs_idempotency_key` ON `runs` (`tenant_id`,`idempotency_key`);