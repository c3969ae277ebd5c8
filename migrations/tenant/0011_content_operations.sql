CREATE TABLE `approval_policies` (
	`tenant_id` text NOT NULL,
	`project_id` text NOT NULL,
	`mode` text NOT NULL,
	`levels` text NOT NULL,
	`updated_by` text NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`tenant_id`, `project_id`)
);
--> statement-breakpoint
CREATE TABLE `campaigns` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`project_id` text NOT NULL,
	`name` text NOT NULL,
	`goal` text,
	`channels` text NOT NULL,
	`starts_on` text,
	`ends_on` text,
	`status` text NOT NULL,
	`owner_id` text NOT NULL,
	`tags` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `campaigns_tenant_idx` ON `campaigns` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `campaigns_project_idx` ON `campaigns` (`tenant_id`,`project_id`,`id`);--> statement-breakpoint
CREATE TABLE `post_comments` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`post_id` text NOT NULL,
	`revision` integer NOT NULL,
	`parent_id` text,
	`channel` text,
	`anchor_start` integer,
	`anchor_end` integer,
	`body` text NOT NULL,
	`author_type` text NOT NULL,
	`author_id` text NOT NULL,
	`resolved_at` text,
	`resolved_by` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `post_comments_post_idx` ON `post_comments` (`tenant_id`,`post_id`,`id`);--> statement-breakpoint
CREATE TABLE `post_reviews` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`post_id` text NOT NULL,
	`revision` integer NOT NULL,
	`level` integer NOT NULL,
	`decision` text NOT NULL,
	`reviewer_type` text NOT NULL,
	`reviewer_id` text NOT NULL,
	`comment` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `post_reviews_post_idx` ON `post_reviews` (`tenant_id`,`post_id`,`revision`);--> statement-breakpoint
CREATE UNIQUE INDEX `post_reviews_once` ON `post_reviews` (`post_id`,`revision`,`reviewer_id`,`decision`);--> statement-breakpoint
CREATE TABLE `post_revisions` (
	`tenant_id` text NOT NULL,
	`post_id` text NOT NULL,
	`revision` integer NOT NULL,
	`title` text NOT NULL,
	`variants` text NOT NULL,
	`content_hash` text NOT NULL,
	`author_id` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`post_id`, `revision`)
);
--> statement-breakpoint
CREATE TABLE `posts` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`project_id` text NOT NULL,
	`campaign_id` text,
	`title` text NOT NULL,
	`status` text NOT NULL,
	`revision` integer NOT NULL,
	`review_levels` text,
	`approved_revision` integer,
	`scheduled_at` text,
	`scheduled_revision` integer,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `posts_tenant_idx` ON `posts` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `posts_project_idx` ON `posts` (`tenant_id`,`project_id`,`id`);--> statement-breakpoint
CREATE INDEX `posts_campaign_idx` ON `posts` (`tenant_id`,`campaign_id`,`id`);--> statement-breakpoint
CREATE INDEX `posts_status_idx` ON `posts` (`tenant_id`,`status`,`scheduled_at`);