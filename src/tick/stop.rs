//! Where this tick's windows may end: the whole second at or before the
//! server's clock less the safety lag, and no later than the earliest stamp
//! a write still open may make visible (an open transaction's rows carry
//! stamps older than its commit; a statement waiting for a lock has read the
//! clock already). When the server will not show them, a longer lag stands
//! in.
//!
//! `stop` is read from the server's clock (to the microsecond) before any
//! row, never "now" as the rows are read. With both kinds of open write seen
//! (`open_writes` in `db/mysql.rs`), late commits do not depend on the
//! safety lag (default 100 ms): it covers a clock step too small to notice
//! and the server's own bookkeeping of when a statement started. Without
//! the `PROCESS` grant, `--fallback-lag` (5 s) and one WARN; a list MariaDB
//! left stale keeps windows at the last `stop` known safe (one WARN). A
//! write that holds windows back for a minute is named once in a WARN:
//! deliveries wait for it, and an operator should know why.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{NaiveDateTime, Timelike};

use super::lock;
use crate::config::Settings;
use crate::db::{Database, DbError, OpenWrites};
use crate::window::metrics::Metrics;

/// How long an open transaction may hold windows back before an operator
/// is told (once per transaction).
const HOLD_NOTICE: chrono::Duration = chrono::Duration::seconds(60);

/// What the safe stop remembers between ticks, and what it has said.
#[derive(Debug, Default)]
pub struct SafeStop {
    trx_warned: AtomicBool,
    stale_warned: AtomicBool,
    /// The last stop known safe, for a tick that cannot tell (see
    /// [`OpenWrites::Stale`]).
    last_safe: Mutex<Option<NaiveDateTime>>,
    /// The start of the last transaction named for holding windows back.
    hold_named: Mutex<Option<NaiveDateTime>>,
}

impl SafeStop {
    /// The end of this tick's windows, as an instant, the server's clock
    /// reading `now` (UTC, exact).
    pub async fn at(
        &self,
        db: &Database,
        settings: &Settings,
        now: NaiveDateTime,
        metrics: &Metrics,
    ) -> Result<NaiveDateTime, DbError> {
        let lag = |d: Duration| {
            let t = now - chrono::Duration::from_std(d).unwrap_or_default();
            t.with_nanosecond(0).unwrap_or(t)
        };
        let stop = lag(settings.safety_lag);
        let safe = match db.open_writes().await? {
            OpenWrites::None => stop,
            OpenWrites::Since(earliest) => {
                self.notice_hold(now, earliest);
                if earliest < stop {
                    metrics.held_back();
                }
                stop.min(earliest)
            }
            // Nothing is known about transactions begun since the list was
            // made; an earlier tick's stop is still safe, as nothing it
            // waited for can have moved before it.
            OpenWrites::Stale => {
                if !self.stale_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "MariaDB did not refresh information_schema.INNODB_TRX for this tick \
                         (another client reads it more often than every 100 ms); windows wait \
                         where they last were safe until it does."
                    );
                }
                let last = *lock(&self.last_safe);
                return Ok(last.unwrap_or_else(|| lag(settings.fallback_lag)).min(stop));
            }
            OpenWrites::Unknown => {
                if !self.trx_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        fallback_lag = %humantime::format_duration(settings.fallback_lag),
                        "Cannot see open transactions (grant PROCESS to rowhook's database \
                         user); windows end --fallback-lag behind the clock instead."
                    );
                }
                stop.min(lag(settings.fallback_lag))
            }
        };
        *lock(&self.last_safe) = Some(safe);
        Ok(safe)
    }

    /// Says once when one transaction or statement has held every window
    /// back for long: nothing is lost, but deliveries wait for it to end.
    fn notice_hold(&self, now: NaiveDateTime, started: NaiveDateTime) {
        let mut named = lock(&self.hold_named);
        if long_hold(now, started, *named) {
            *named = Some(started);
            let held = Duration::from_secs((now - started).num_seconds().unsigned_abs());
            tracing::warn!(
                since = %started, held = %humantime::format_duration(held),
                "An open transaction or a write statement still running has held deliveries \
                 back since this time (UTC); changes after it are sent once it ends. Find it in \
                 information_schema.INNODB_TRX or PROCESSLIST."
            );
        }
    }
}

/// Whether the transaction open since `started` has now held windows back
/// long enough to say so, and has not been named yet.
fn long_hold(now: NaiveDateTime, started: NaiveDateTime, named: Option<NaiveDateTime>) -> bool {
    now - started >= HOLD_NOTICE && named != Some(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_holding_windows_back_for_a_minute_is_named_once() {
        let at = |s: &str| {
            NaiveDateTime::parse_from_str(s, crate::domain::datetime::DATETIME_FORMAT).unwrap()
        };
        let started = at("2026-01-05 09:00:00");
        assert!(!long_hold(at("2026-01-05 09:00:59"), started, None));
        assert!(long_hold(at("2026-01-05 09:01:00"), started, None));
        assert!(!long_hold(
            at("2026-01-05 09:05:00"),
            started,
            Some(started)
        ));
        // Another transaction, held as long, is named too.
        let next = at("2026-01-05 09:02:00");
        assert!(long_hold(at("2026-01-05 09:03:30"), next, Some(started)));
    }
}
