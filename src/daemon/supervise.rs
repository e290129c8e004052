//! Telling systemd how rowhook is: ready, alive, stopping.
//!
//! systemd notices a crash by itself: the process exits. It cannot notice a
//! hang: a daemon whose tick loop is stuck on a database that accepted the
//! connection but never answers looks, from outside, exactly like a healthy
//! one, and no webhook is sent until someone looks at the journal. The
//! notify protocol (`sd_notify(3)`: one datagram per message, to the Unix
//! socket named in `NOTIFY_SOCKET`) closes that gap:
//!
//! - `READY=1` once rowhook has connected and found its tables migrated.
//!   With `Type=notify`, `systemctl start` waits for it, so a start that
//!   cannot reach the database or finds a migration missing fails the start
//!   itself, with rowhook's message, instead of "started" and then exiting.
//! - `WATCHDOG=1` each time a tick has completed. With `WatchdogSec=`, a
//!   loop that stops completing ticks is killed and restarted: a
//!   heartbeat from a timer would keep a wedged loop alive, so the ping
//!   comes from the loop itself.
//! - `STOPPING=1` when a shutdown signal arrives, so `systemctl status`
//!   says "deactivating" while in-flight windows drain.
//!
//! Outside systemd (a terminal, cron, the tests) `NOTIFY_SOCKET` is unset
//! and every function here does nothing. A message that cannot be sent is
//! logged at debug level and otherwise ignored: supervision must never stop
//! deliveries.

use std::time::Duration;

use sd_notify::NotifyState;

/// A watchdog timeout shorter than this would be missed by a tick loop
/// that pings about once a second, even while healthy.
const SHORTEST_WATCHDOG: Duration = Duration::from_secs(3);

/// Startup is finished: connected, tables checked. Warns when systemd's
/// watchdog is set too short for a loop that pings once a tick.
pub fn ready() {
    send(NotifyState::Ready);
    let mut usec = 0;
    // `false`: keep the variables; nothing here runs child processes.
    if sd_notify::watchdog_enabled(false, &mut usec) {
        let timeout = Duration::from_micros(usec);
        if timeout < SHORTEST_WATCHDOG {
            tracing::warn!(
                watchdog = %humantime::format_duration(timeout),
                "systemd's WatchdogSec is shorter than 3 s; rowhook pings once a tick \
                 (about a second) and may be restarted while healthy."
            );
        }
    }
}

/// A tick has completed: the loop is alive.
pub fn watchdog() {
    send(NotifyState::Watchdog);
}

/// Shutting down: in-flight windows are draining.
pub fn stopping() {
    send(NotifyState::Stopping);
}

fn send(state: NotifyState<'_>) {
    // `false`: keep NOTIFY_SOCKET set, for the messages still to come.
    if let Err(error) = sd_notify::notify(false, std::slice::from_ref(&state)) {
        tracing::debug!(%error, message = %state, "Cannot notify systemd.");
    }
}
