-- Which body a subscription receives, when it is not the daemon's default
-- (`rowhook subscriptions set N --body opendental|columns`). rowhook's own
-- table: Open Dental's apisubscription is never altered.
CREATE TABLE IF NOT EXISTS rowhook_body (
  subscription_num BIGINT NOT NULL PRIMARY KEY,
  body VARCHAR(16) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
