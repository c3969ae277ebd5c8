ALTER TABLE `api_keys` ADD `rate_limit_per_minute` integer;--> statement-breakpoint
ALTER TABLE `plans` ADD `member_requests_per_minute` integer DEFAULT 60 NOT NULL;--> statement-breakpoint
UPDATE `plans` SET `member_requests_per_minute` = CASE `id` WHEN 'free' THEN 120 WHEN 'pro' THEN 600 WHEN 'enterprise' THEN 6000 ELSE `member_requests_per_minute` END;
