CREATE TABLE `erasures` (
	`id` text PRIMARY KEY NOT NULL,
	`subject` text NOT NULL,
	`subject_id` text NOT NULL,
	`requested_by` text NOT NULL,
	`status` text DEFAULT 'queued' NOT NULL,
	`inventory` text,
	`progress` text DEFAULT '{}' NOT NULL,
	`receipt` text,
	`receipt_token_hash` text,
	`error` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`started_at` text,
	`completed_at` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `erasures_subject` ON `erasures` (`subject`,`subject_id`);