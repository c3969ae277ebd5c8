CREATE TABLE `post_reminders` (
	`tenant_id` text NOT NULL,
	`post_id` text NOT NULL,
	`revision` integer NOT NULL,
	`level` integer NOT NULL,
	`sent_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`post_id`, `revision`, `level`)
);
--> statement-breakpoint
ALTER TABLE `posts` ADD `review_started_at` text;