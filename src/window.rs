//! The arithmetic of one polling window, kept free of I/O so it can be
//! tested exhaustively.
//!
//! A window is the half-open interval `[start, stop)` of change stamps.
//! `stop` is the database server's `NOW()`, captured before any row is read,
//! so a row stamped during paging (stamp >= stop) falls in the next window
//! instead of being skipped. Inside a window rows are paged by a keyset
//! [`Cursor`] on (stamp, primary key), which neither repeats nor skips rows
//! when thousands share one second.

use std::time::Duration;

use chrono::NaiveDateTime;

/// The position after the last acknowledged row: the next page starts
/// strictly after (stamp, key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub stamp: NaiveDateTime,
    pub key: i64,
}

/// The interval to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveDateTime,
    pub stop: NaiveDateTime,
}

/// What to do with a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Read this window. `skipped` is the part before it that the look-back
    /// cap cut off, if any; `clock_stepped_back` is set when the server's
    /// clock is behind `DateTimeStart` and the window was rewound to catch
    /// rows stamped since the step. The caller must log both.
    Read {
        window: Window,
        skipped: Option<Window>,
        clock_stepped_back: Option<Duration>,
    },
    /// `stop <= start`: nothing can be read safely yet (the same second, or
    /// an open transaction holds `stop` back). Do nothing.
    Wait,
}

/// Plans a window for a subscription whose `DateTimeStart` is `start`.
///
/// `now` is the server's clock; `stop` is the safe end (`now` less the
/// safety lag, and before any open writing transaction). `max_lookback` of
/// `None` is unlimited. When `now < start` the clock went back (a step, or
/// a DST fall-back in local time): new rows carry stamps below `start`, so
/// the window restarts at `now - rewind`; rows already sent in that span
/// are sent again (duplicates, never losses).
pub fn plan(
    start: NaiveDateTime,
    now: NaiveDateTime,
    stop: NaiveDateTime,
    max_lookback: Option<Duration>,
    rewind: Duration,
) -> Plan {
    if now < start {
        let stepped = (start - now).to_std().unwrap_or_default();
        let from = chrono::Duration::from_std(rewind)
            .ok()
            .and_then(|r| now.checked_sub_signed(r))
            .unwrap_or(now);
        if stop <= from {
            return Plan::Wait;
        }
        let window = Window { start: from, stop };
        return Plan::Read {
            window,
            skipped: None,
            clock_stepped_back: Some(stepped),
        };
    }
    if stop <= start {
        return Plan::Wait;
    }
    let earliest = max_lookback
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| stop.checked_sub_signed(d));
    let (window, skipped) = match earliest {
        Some(earliest) if earliest > start => (
            Window {
                start: earliest,
                stop,
            },
            Some(Window {
                start,
                stop: earliest,
            }),
        ),
        _ => (Window { start, stop }, None),
    };
    Plan::Read {
        window,
        skipped,
        clock_stepped_back: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, crate::DATETIME_FORMAT).unwrap()
    }

    const DAYS3: Option<Duration> = Some(Duration::from_secs(3 * 86_400));
    const REWIND: Duration = Duration::from_secs(60);

    /// `plan` with `now == stop`.
    fn plan(start: NaiveDateTime, stop: NaiveDateTime, lookback: Option<Duration>) -> Plan {
        super::plan(start, stop, stop, lookback, REWIND)
    }

    #[test]
    fn a_recent_start_reads_the_whole_interval() {
        let p = plan(at("2024-01-01 10:00:00"), at("2024-01-01 10:00:05"), DAYS3);
        let window = Window {
            start: at("2024-01-01 10:00:00"),
            stop: at("2024-01-01 10:00:05"),
        };
        assert_eq!(
            p,
            Plan::Read {
                window,
                skipped: None,
                clock_stepped_back: None
            }
        );
    }

    #[test]
    fn an_old_start_is_cut_to_the_lookback_and_reports_what_was_cut() {
        let p = plan(at("2024-01-01 00:00:00"), at("2024-01-10 00:00:00"), DAYS3);
        let Plan::Read {
            window,
            skipped: Some(skipped),
            ..
        } = p
        else {
            panic!("{p:?}")
        };
        assert_eq!(window.start, at("2024-01-07 00:00:00"));
        assert_eq!(
            skipped,
            Window {
                start: at("2024-01-01 00:00:00"),
                stop: window.start
            }
        );
    }

    #[test]
    fn unlimited_lookback_never_cuts() {
        let p = plan(at("0001-01-01 00:00:00"), at("2024-01-10 00:00:00"), None);
        assert!(matches!(p, Plan::Read { skipped: None, .. }));
    }

    #[test]
    fn the_same_second_waits() {
        assert_eq!(
            plan(at("2024-01-01 10:00:05"), at("2024-01-01 10:00:05"), DAYS3),
            Plan::Wait
        );
    }

    #[test]
    fn an_open_transaction_holding_stop_back_waits_without_rewinding() {
        let (start, now) = (at("2024-01-01 10:00:05"), at("2024-01-01 10:00:09"));
        let stop = at("2024-01-01 10:00:03");
        assert_eq!(super::plan(start, now, stop, DAYS3, REWIND), Plan::Wait);
    }

    #[test]
    fn a_clock_that_stepped_back_rewinds_the_window_below_now() {
        // DateTimeStart 01:59:58 (before a DST fall-back), now 01:00:05.
        let (start, now) = (at("2024-11-03 01:59:58"), at("2024-11-03 01:00:05"));
        let stop = at("2024-11-03 01:00:04");
        let p = super::plan(start, now, stop, DAYS3, REWIND);
        let window = Window {
            start: at("2024-11-03 00:59:05"),
            stop,
        };
        let stepped = Some(Duration::from_secs(3593));
        assert_eq!(
            p,
            Plan::Read {
                window,
                skipped: None,
                clock_stepped_back: stepped
            }
        );
    }
}
