//! Logging: one line per meaningful event on stderr, which journald keeps.
//!
//! Plain text by default, without colour codes unless stderr is a terminal;
//! `--log-format json` for log shippers. `RUST_LOG` overrides the level
//! (default `info`, with sqlx's per-connection pool warnings left out).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

pub fn init(format: LogFormat) {
    // sqlx warns for each broken connection it discards; rowhook says once
    // per outage that the database was lost (see `crate::outage`).
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx_core::pool::connection=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
