-- Which body a subscription receives, when it is not the daemon's default
-- (`rowhook subscriptions set N --body opendental|columns`).
CREATE TABLE IF NOT EXISTS rowhook_body (
  subscription_num INTEGER NOT NULL PRIMARY KEY,
  body TEXT NOT NULL
);
