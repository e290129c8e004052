-- Open Dental's apisubscription, exactly as its 22.1.1 conversion creates it
-- (ConvertDatabases7.cs, To22_1_1). Created only when missing: on a real
-- Open Dental database it already exists and is left alone.
CREATE TABLE IF NOT EXISTS apisubscription (
  ApiSubscriptionNum bigint NOT NULL auto_increment PRIMARY KEY,
  EndPointUrl varchar(255) NOT NULL,
  Workstation varchar(255) NOT NULL,
  CustomerKey varchar(255) NOT NULL,
  WatchTable varchar(255) NOT NULL,
  PollingSeconds int NOT NULL,
  UiEventType varchar(255) NOT NULL,
  DateTimeStart datetime NOT NULL DEFAULT '0001-01-01 00:00:00',
  DateTimeStop datetime NOT NULL DEFAULT '0001-01-01 00:00:00',
  Note varchar(255) NOT NULL,
  INDEX(PollingSeconds)
) DEFAULT CHARSET=utf8;
