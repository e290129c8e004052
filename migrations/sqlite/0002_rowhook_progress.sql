-- rowhook's own record of where each subscription stands (see the MySQL
-- migration of the same number). SQLite times are local text throughout.
CREATE TABLE IF NOT EXISTS rowhook_progress (
  subscription_num INTEGER NOT NULL PRIMARY KEY,
  date_time_start TEXT NOT NULL,
  watermark TEXT NOT NULL,
  window_stop TEXT,
  cursor_stamp TEXT,
  cursor_key INTEGER,
  updated_at TEXT NOT NULL DEFAULT (datetime('now', 'localtime'))
);
