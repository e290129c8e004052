//! The daemon's heartbeat: ticks until shutdown, timed to the server's
//! clock, then a bounded wait for the windows in flight and the delivery
//! log.
//!
//! Ticks start just after the server's second turns. A window ends at a
//! whole second of the server's clock, so a row committed during second S
//! can first be sent by a tick after S + 1 + the safety lag. Each snapshot
//! reads how far into its second the server's clock is, and the next tick
//! (of a whole number of seconds) starts 25 ms after a window may end at the
//! new second: delivery lag is then about 0.1–1.1 s plus the POST with the
//! default lag, instead of up to a second more depending on when the
//! process happened to start.
//!
//! At shutdown a POST in flight is abandoned (its watermark is not moved);
//! the wait is capped at 10 s, below systemd's `TimeoutStopSec`. When every
//! window has ended, the agent's leases are let go, so a standby takes over
//! on its next tick instead of after they expire.
//!
//! Each tick's work is [`crate::tick`]'s; each window's is
//! [`crate::window`]'s. `rowhook run`, the demo and the tests all come in
//! here with a [`Context`] built by [`Context::new`].

pub mod outage;
#[cfg(unix)]
pub mod supervise;
/// systemd does not supervise Windows services: the Service Control
/// Manager watches the process itself.
#[cfg(not(unix))]
pub mod supervise {
    pub fn ready() {}
    pub fn watchdog() {}
    pub fn stopping() {}
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;

pub use crate::tick::Summary;
use crate::tick::Ticker;
use crate::window::Context;

/// How long shutdown waits for in-flight windows to notice cancellation.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Runs ticks until `ctx.shutdown` is cancelled (or, with `once`, after one
/// tick's work is finished), then waits for the delivery log to be written.
pub async fn run(ctx: Context, once: bool) -> Summary {
    let ticker = Arc::new(Ticker::new(ctx));
    let tracker = TaskTracker::new();
    let mut outage = outage::Outage::default();
    loop {
        let started = Instant::now();
        let metrics = &ticker.ctx().metrics;
        let phase = match ticker.tick(&tracker).await {
            Ok(phase) => {
                metrics.tick_done(started.elapsed());
                outage.answered();
                Some(phase)
            }
            Err(error) => {
                metrics.database_error(&error);
                outage.failed(&ticker.ctx().db, &error);
                None
            }
        };
        // A tick that failed still completed: a database that is down is
        // reported, not restarted for; a wedged one never gets here.
        supervise::watchdog();
        // A lease taken over runs from the tick after (see `tick/lease.rs`).
        if once && !ticker.took_over() {
            break;
        }
        let settings = &ticker.ctx().settings;
        let rest = until_next_tick(settings.tick, settings.safety_lag, started.elapsed(), phase);
        let shutdown = &ticker.ctx().shutdown;
        let slept = shutdown.run_until_cancelled(tokio::time::sleep(rest));
        if slept.await.is_none() {
            break;
        }
    }
    tracker.close();
    let limit = if once { Duration::MAX } else { DRAIN_LIMIT };
    if tokio::time::timeout(limit, tracker.wait()).await.is_err() {
        tracing::warn!("In-flight windows did not stop in time; their watermarks were not moved.");
    } else {
        // Nothing runs under them any more: another agent may take them
        // now rather than when they expire.
        ticker.release_leases().await;
    }
    ticker.ctx().journal.flush().await;
    ticker.summary()
}

/// How long after a tick's windows may end at a new second the tick
/// starts: enough that a tick woken a little early or delayed on its way to
/// the server still reads the new second.
const TICK_OFFSET: Duration = Duration::from_millis(25);

/// How long to wait before the next tick, `elapsed` after this one started,
/// its snapshot having read the server's clock `phase` into a second.
///
/// A window ends at a whole second of the server's clock, at least the
/// safety lag behind it, so a row committed during second S can be sent
/// from the first tick after S + 1 + the safety lag. Started at a random
/// point in the second, a tick finds that moment on average half a second
/// late; started just after it, at once. Ticks of a whole number of seconds
/// are therefore timed from the server's second, starting the safety lag's
/// fraction of a second (plus [`TICK_OFFSET`]) after it turns; other ticks
/// (and a tick whose snapshot failed) simply follow one another.
fn until_next_tick(
    tick: Duration,
    safety_lag: Duration,
    elapsed: Duration,
    phase: Option<Duration>,
) -> Duration {
    let second = Duration::from_secs(1).as_nanos();
    let into_second = (u128::from(safety_lag.subsec_nanos()) + TICK_OFFSET.as_nanos()) % second;
    let into_second = Duration::from_nanos(u64::try_from(into_second).unwrap_or_default());
    match phase {
        Some(phase) if tick.subsec_nanos() == 0 && !tick.is_zero() => (tick + into_second)
            .saturating_sub(phase)
            .saturating_sub(elapsed),
        _ => tick.saturating_sub(elapsed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_next_tick_starts_just_after_the_servers_second_turns() {
        // Read 700 ms into a second, 40 ms of work: the next second turns
        // 300 ms after the read, 260 ms from now; the tick starts 25 ms later.
        assert_eq!(
            until_next_tick(SECOND, SECOND, ms(40), Some(ms(700))),
            ms(285)
        );
        // Already aligned: a second apart.
        assert_eq!(
            until_next_tick(SECOND, SECOND, ms(10), Some(ms(25))),
            ms(990)
        );
        // Longer ticks keep the same offset into the second.
        let five = Duration::from_secs(5);
        assert_eq!(
            until_next_tick(five, SECOND, ms(0), Some(ms(500))),
            ms(4525)
        );
        // A safety lag of 150 ms: windows may end at a new second from 150
        // ms after it turns, so ticks start at 175 ms.
        assert_eq!(
            until_next_tick(SECOND, ms(150), ms(40), Some(ms(700))),
            ms(435)
        );
        assert_eq!(
            until_next_tick(SECOND, ms(150), ms(10), Some(ms(175))),
            ms(990)
        );
    }

    #[test]
    fn a_late_tick_starts_the_next_at_once_and_other_ticks_just_follow() {
        assert_eq!(
            until_next_tick(SECOND, SECOND, ms(1500), Some(ms(100))),
            ms(0)
        );
        // Not whole seconds, or no reading of the clock: plain spacing.
        assert_eq!(
            until_next_tick(ms(200), ms(150), ms(50), Some(ms(700))),
            ms(150)
        );
        assert_eq!(until_next_tick(SECOND, SECOND, ms(50), None), ms(950));
        assert_eq!(
            until_next_tick(Duration::ZERO, SECOND, ms(50), Some(ms(1))),
            ms(0)
        );
    }
}
