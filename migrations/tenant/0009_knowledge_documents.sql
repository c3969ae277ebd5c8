CREATE TABLE `knowledge_chunks` (
	`pk` integer PRIMARY KEY NOT NULL,
	`id` text NOT NULL,
	`tenant_id` text NOT NULL,
	`knowledge_base_id` text NOT NULL,
	`document_id` text NOT NULL,
	`version` integer NOT NULL,
	`seq` integer NOT NULL,
	`text` text NOT NULL,
	`tokens` integer NOT NULL,
	`pending` integer DEFAULT true NOT NULL,
	`embedding` text,
	`mutation_id` text,
	`mutation_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `knowledge_chunks_id` ON `knowledge_chunks` (`id`);--> statement-breakpoint
CREATE INDEX `knowledge_chunks_document_idx` ON `knowledge_chunks` (`tenant_id`,`document_id`,`version`,`seq`);--> statement-breakpoint
CREATE INDEX `knowledge_chunks_pending_idx` ON `knowledge_chunks` (`tenant_id`,`knowledge_base_id`,`pending`);--> statement-breakpoint
CREATE TABLE `knowledge_documents` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`knowledge_base_id` text NOT NULL,
	`project_id` text NOT NULL,
	`name` text NOT NULL,
	`version` integer NOT NULL,
	`active_version` integer,
	`status` text NOT NULL,
	`content_type` text NOT NULL,
	`size` integer NOT NULL,
	`sha256` text NOT NULL,
	`r2_key` text NOT NULL,
	`attributes` text DEFAULT '{}' NOT NULL,
	`chunk_count` integer,
	`token_count` integer,
	`error_code` text,
	`error` text,
	`lease_token` text,
	`lease_until` integer,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `knowledge_documents_tenant_idx` ON `knowledge_documents` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `knowledge_documents_base_idx` ON `knowledge_documents` (`tenant_id`,`knowledge_base_id`,`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `knowledge_documents_name` ON `knowledge_documents` (`tenant_id`,`knowledge_base_id`,`name`);--> statement-breakpoint
ALTER TABLE `agents` ADD `knowledge_base_ids` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `conversations` ADD `knowledge_base_ids` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `runs` ADD `citations` text;--> statement-breakpoint
CREATE VIRTUAL TABLE `knowledge_chunks_fts` USING fts5(`text`, `knowledge_base_id`, content='knowledge_chunks', content_rowid='pk', tokenize='porter unicode61 remove_diacritics 2');--> statement-breakpoint
INSERT INTO `knowledge_chunks_fts` (`knowledge_chunks_fts`, `rank`) VALUES ('rank', 'bm25(1.0, 0.0)');
