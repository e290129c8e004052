-- rowhook_secret: each subscription's Standard Webhooks signing secret
-- (whsec_...), created when rowhook first processes the subscription. During
-- a rotation the previous secret also signs until previous_until (UTC).
-- Grant this table to rowhook's user only: it is a credential.
CREATE TABLE IF NOT EXISTS rowhook_secret (
  subscription_num bigint NOT NULL PRIMARY KEY,
  secret varchar(128) NOT NULL,
  previous_secret varchar(128) NULL,
  previous_until datetime NULL,
  created_at datetime NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
