ALTER TABLE `invitations` ADD `projects` text;--> statement-breakpoint
ALTER TABLE `memberships` ADD `projects` text;