CREATE TABLE `revocation_log` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`kind` text NOT NULL,
	`target_id` text NOT NULL,
	`until` integer NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `revocation_log_until_idx` ON `revocation_log` (`until`);--> statement-breakpoint
ALTER TABLE `sessions` ADD `access_expires_at` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `credential_version` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Sessions from before this migration: their tokens expire at most one maximum
-- ACCESS_TOKEN_TTL (a day) after the session was revoked, or after now if it is live.
UPDATE `sessions` SET `access_expires_at` = coalesce(`revoked_at`, CAST(strftime('%s', 'now') AS integer) * 1000) + 86400000;--> statement-breakpoint
INSERT INTO `revocation_log` (`kind`, `target_id`, `until`, `created_at`)
  SELECT 'sid', `id`, `access_expires_at`, `revoked_at` FROM `sessions` WHERE `revoked_at` IS NOT NULL;--> statement-breakpoint
INSERT INTO `revocation_log` (`kind`, `target_id`, `until`, `created_at`)
  SELECT 'jti', `jti`, `expires_at`, `revoked_at` FROM `revoked_tokens`;
