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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// What to do with a subscription whose `DateTimeStart` is `start` when the
/// server's clock says `stop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Read this window. `skipped` is the part before it that the look-back
    /// cap cut off, if any; the caller must say so in the log.
    Read {
        window: Window,
        skipped: Option<Window>,
    },
    /// `stop <= start`: nothing can have changed yet (same second), or the
    /// server's clock is behind `DateTimeStart`. Do nothing; never move the
    /// watermark backwards.
    Wait { clock_behind: bool },
}

/// Plans a window. `max_lookback` of `None` means unlimited.
pub fn plan(start: NaiveDateTime, stop: NaiveDateTime, max_lookback: Option<Duration>) -> Plan {
    if stop <= start {
        return Plan::Wait {
            clock_behind: stop < start,
        };
    }
    let earliest = max_lookback
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| stop.checked_sub_signed(d));
    match earliest {
        Some(earliest) if earliest > start => Plan::Read {
            window: Window {
                start: earliest,
                stop,
            },
            skipped: Some(Window {
                start,
                stop: earliest,
            }),
        },
        _ => Plan::Read {
            window: Window { start, stop },
            skipped: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, crate::DATETIME_FORMAT).unwrap()
    }

    const DAYS3: Option<Duration> = Some(Duration::from_secs(3 * 86_400));

    #[test]
    fn a_recent_start_reads_the_whole_interval() {
        let p = plan(at("2024-01-01 10:00:00"), at("2024-01-01 10:00:05"), DAYS3);
        assert_eq!(
            p,
            Plan::Read {
                window: Window {
                    start: at("2024-01-01 10:00:00"),
                    stop: at("2024-01-01 10:00:05")
                },
                skipped: None
            }
        );
    }

    #[test]
    fn an_old_start_is_cut_to_the_lookback_and_reports_what_was_cut() {
        let p = plan(at("2024-01-01 00:00:00"), at("2024-01-10 00:00:00"), DAYS3);
        let Plan::Read {
            window,
            skipped: Some(skipped),
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
    fn a_clock_behind_the_watermark_waits() {
        assert_eq!(
            plan(at("2024-01-01 10:00:05"), at("2024-01-01 10:00:00"), DAYS3),
            Plan::Wait { clock_behind: true }
        );
        assert_eq!(
            plan(at("2024-01-01 10:00:05"), at("2024-01-01 10:00:05"), DAYS3),
            Plan::Wait {
                clock_behind: false
            }
        );
    }
}
