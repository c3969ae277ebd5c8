ALTER TABLE `tenant_databases` ADD `jurisdiction` text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE `tenants` ADD `jurisdiction` text DEFAULT 'default' NOT NULL;