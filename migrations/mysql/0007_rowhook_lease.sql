-- Which agent delivers each subscription (issue 18): the holder renews its
-- lease; another agent takes it only after `expires` has passed on the
-- server's clock, and raises `epoch`, which every write of progress must
-- still match. Times are the server's UTC, to the microsecond.
CREATE TABLE IF NOT EXISTS rowhook_lease (
  subscription_num BIGINT NOT NULL PRIMARY KEY,
  holder VARCHAR(255) NOT NULL,
  epoch BIGINT NOT NULL,
  since DATETIME(6) NOT NULL,
  expires DATETIME(6) NOT NULL,
  KEY rowhook_lease_holder (holder)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
