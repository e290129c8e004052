//! Where a window is planned: from `DateTimeStart` to the tick's safe stop,
//! cut to the look-back cap, rewound when the server's clock went back.
//!
//! A server clock behind `DateTimeStart` means new rows carry stamps below
//! it: the window restarts at `now − (PollingSeconds + 60 s)` and
//! `DateTimeStart` moves back to the new `stop` (duplicates, never losses;
//! a WARN says by how much). Smaller steps are `tick/clock_step.rs`'s.
//!
//! [`plan`] is the arithmetic, kept free of I/O so it can be tested
//! exhaustively; [`plan_for`] applies a subscription's settings to it, and
//! [`plan_logged`] says what a plan had to cut or rewind.

use std::time::Duration;

use chrono::NaiveDateTime;

use super::Context;
use crate::config::Settings;
use crate::db::{DbError, WatchedTable};
use crate::domain::progress::{Clock, Window};
use crate::domain::subscription::Subscription;

/// How far below the server's clock a window restarts after the clock went
/// back, beyond the subscription's own polling interval: rows stamped since
/// the step are at most this old when the next tick sees it.
const REWIND_MARGIN: Duration = Duration::from_secs(60);

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

/// The one place a subscription's window is planned, for the window itself
/// and for [`plain_window`] alike.
pub fn plan_for(
    settings: &Settings,
    subscription: &Subscription,
    start: NaiveDateTime,
    clock: Clock,
    stop: NaiveDateTime,
) -> Plan {
    let rewind = subscription.polling + REWIND_MARGIN;
    plan(start, clock.instant, stop, settings.max_lookback, rewind)
}

/// The window `subscription` would read now from `start`, when it needs
/// nothing beyond the page query: no look-back cut, no clock step, not
/// waiting. The tick closes such windows together when they are empty.
pub fn plain_window(
    settings: &Settings,
    subscription: &Subscription,
    start: NaiveDateTime,
    clock: Clock,
    stop: NaiveDateTime,
) -> Option<Window> {
    match plan_for(settings, subscription, start, clock, stop) {
        Plan::Read {
            window,
            skipped: None,
            clock_stepped_back: None,
        } => Some(window),
        _ => None,
    }
}

/// Plans a new window, logging what the plan had to cut or rewind; `None`
/// when the window must wait.
pub async fn plan_logged(
    ctx: &Context,
    subscription: &Subscription,
    table: &WatchedTable,
    start: NaiveDateTime,
    clock: Clock,
    stop: NaiveDateTime,
) -> Result<Option<Window>, DbError> {
    let Plan::Read {
        window,
        skipped,
        clock_stepped_back,
    } = plan_for(&ctx.settings, subscription, start, clock, stop)
    else {
        return Ok(None);
    };
    if let Some(skipped) = skipped {
        let rows = ctx.db.count_rows(table, skipped).await?;
        let span = (skipped.stop - skipped.start).to_std().unwrap_or_default();
        tracing::warn!(
            rows_skipped = rows,
            skipped = %humantime::format_duration(span),
            "DateTimeStart is older than --max-lookback; changes before the cut are not sent \
             (set --max-lookback 0 to send everything)."
        );
    }
    if let Some(stepped) = clock_stepped_back {
        tracing::warn!(
            behind = %humantime::format_duration(stepped),
            "The server's clock is behind DateTimeStart (it was stepped back); re-reading from \
             just before now so rows stamped since are not lost."
        );
    }
    Ok(Some(window))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, crate::domain::datetime::DATETIME_FORMAT).unwrap()
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
