-- rowhook_health: per subscription, what an operator asks first: is it
-- healthy, when did it last deliver, why did it last fail, when is the next
-- retry, is it deactivated. Times are Open Dental's local time, like
-- DateTimeStart, so an operator can compare them by eye.
CREATE TABLE IF NOT EXISTS rowhook_health (
  subscription_num bigint NOT NULL PRIMARY KEY,
  consecutive_failures int NOT NULL DEFAULT 0,
  last_success_at datetime NULL,
  last_failure_at datetime NULL,
  last_failure_reason varchar(255) NOT NULL DEFAULT '',
  next_retry_at datetime NULL,
  deactivated_at datetime NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- rowhook_delivery: one row per POST attempt. Payloads are not stored (they
-- are patient records, and the rows can be re-read); pruned after
-- --delivery-log-retention (default 30 days).
CREATE TABLE IF NOT EXISTS rowhook_delivery (
  id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
  subscription_num bigint NOT NULL,
  batch_id varchar(64) NOT NULL,
  watch_table varchar(255) NOT NULL,
  window_start datetime NOT NULL,
  window_stop datetime NOT NULL,
  first_key bigint NULL,
  last_key bigint NULL,
  row_count int NOT NULL,
  attempt int NOT NULL,
  status varchar(8) NOT NULL,
  http_status int NULL,
  error_class varchar(16) NULL,
  error varchar(255) NOT NULL DEFAULT '',
  elapsed_ms int NOT NULL,
  attempted_at datetime NOT NULL,
  KEY subscription_id (subscription_num, id),
  KEY batch (subscription_num, batch_id),
  KEY attempted_at (attempted_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
