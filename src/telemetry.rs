//! Logging: one line per meaningful event on stderr, which journald keeps.
//!
//! Plain text by default, without colour codes unless stderr is a terminal;
//! `--log-format json` for log shippers. `RUST_LOG` overrides the level
//! (default `info`, with sqlx's per-connection pool warnings left out).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event; a window's events are prefixed with its
    /// span, `window{subscription=7 table=Appointment}:`.
    Text,
    /// One JSON object per event; a window's `subscription` and `table` are
    /// under `span`.
    Json,
}

/// `RUST_LOG`, else INFO. sqlx warns for each broken connection it
/// discards; rowhook says once per outage that the database was lost (see
/// `daemon/outage.rs`), so sqlx's are left out by default.
fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx_core::pool::connection=error"))
}

pub fn init(format: LogFormat) {
    let filter = filter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// Running as a Windows service: one Event Log event per line, from source
/// `rowhook`, without the timestamp the Event Log records itself. Falls
/// back to stderr (which a service discards) if the source cannot be
/// opened, and says why there.
#[cfg(windows)]
pub fn init_event_log() {
    let event_log = match crate::windows::event_log::EventLog::open() {
        Ok(event_log) => event_log,
        Err(error) => {
            init(LogFormat::Text);
            tracing::error!(%error, "cannot open the Event Log; logging to stderr.");
            return;
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(event_log)
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .try_init();
}
