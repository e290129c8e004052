-- rowhook's own record of where each subscription stands, beside Open
-- Dental's DateTimeStart (which rowhook still moves exactly as Open Dental
-- does). watermark is DateTimeStart as a UTC instant, exact even in a
-- repeated DST hour; window_stop/cursor_* are set while a window is partly
-- delivered, so a restart resumes after the last acknowledged batch.
CREATE TABLE IF NOT EXISTS rowhook_progress (
  subscription_num bigint NOT NULL PRIMARY KEY,
  date_time_start varchar(32) NOT NULL,
  watermark datetime NOT NULL,
  window_stop datetime NULL,
  cursor_stamp datetime NULL,
  cursor_key bigint NULL,
  updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
