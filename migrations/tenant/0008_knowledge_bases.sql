CREATE TABLE `knowledge_bases` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`project_id` text NOT NULL,
	`name` text NOT NULL,
	`description` text,
	`embedding_model` text NOT NULL,
	`dimensions` integer NOT NULL,
	`chunk_max_tokens` integer NOT NULL,
	`chunk_overlap_tokens` integer NOT NULL,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `knowledge_bases_tenant_idx` ON `knowledge_bases` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `knowledge_bases_project_idx` ON `knowledge_bases` (`tenant_id`,`project_id`,`id`);