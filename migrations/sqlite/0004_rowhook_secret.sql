-- See the MySQL migration of the same number.
CREATE TABLE IF NOT EXISTS rowhook_secret (
  subscription_num INTEGER NOT NULL PRIMARY KEY,
  secret TEXT NOT NULL,
  previous_secret TEXT,
  previous_until TEXT,
  created_at TEXT NOT NULL
);
