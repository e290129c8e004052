-- See the MySQL migration of the same number.
CREATE TABLE IF NOT EXISTS rowhook_health (
  subscription_num INTEGER NOT NULL PRIMARY KEY,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  last_success_at TEXT,
  last_failure_at TEXT,
  last_failure_reason TEXT NOT NULL DEFAULT '',
  next_retry_at TEXT,
  deactivated_at TEXT
);
CREATE TABLE IF NOT EXISTS rowhook_delivery (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  subscription_num INTEGER NOT NULL,
  batch_id TEXT NOT NULL,
  watch_table TEXT NOT NULL,
  window_start TEXT NOT NULL,
  window_stop TEXT NOT NULL,
  first_key INTEGER,
  last_key INTEGER,
  row_count INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  status TEXT NOT NULL,
  http_status INTEGER,
  error_class TEXT,
  error TEXT NOT NULL DEFAULT '',
  elapsed_ms INTEGER NOT NULL,
  attempted_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rowhook_delivery_subscription ON rowhook_delivery (subscription_num, id);
CREATE INDEX IF NOT EXISTS rowhook_delivery_batch ON rowhook_delivery (subscription_num, batch_id);
CREATE INDEX IF NOT EXISTS rowhook_delivery_attempted_at ON rowhook_delivery (attempted_at);
