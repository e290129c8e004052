-- Open Dental's apisubscription in SQLite types. Datetimes are
-- 'yyyy-MM-dd HH:mm:ss' text, which sorts and compares like time.
CREATE TABLE IF NOT EXISTS apisubscription (
  ApiSubscriptionNum INTEGER PRIMARY KEY AUTOINCREMENT,
  EndPointUrl TEXT NOT NULL,
  Workstation TEXT NOT NULL,
  CustomerKey TEXT NOT NULL,
  WatchTable TEXT NOT NULL,
  PollingSeconds INTEGER NOT NULL,
  UiEventType TEXT NOT NULL,
  DateTimeStart TEXT NOT NULL DEFAULT '0001-01-01 00:00:00',
  DateTimeStop TEXT NOT NULL DEFAULT '0001-01-01 00:00:00',
  Note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS apisubscription_PollingSeconds ON apisubscription (PollingSeconds);
