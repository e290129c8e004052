//! rowhook turns database row changes into webhooks.
//!
//! It is a faithful, sturdier re-implementation of Open Dental's "API Events"
//! processor: subscriptions are rows of `apisubscription`; for each one that
//! is due, rowhook reads the watched table's rows whose change stamp falls in
//! `[DateTimeStart, now)`, POSTs them as JSON arrays of at most 1000 rows, and
//! moves `DateTimeStart` forward only after every batch was answered with
//! HTTP 200.
//!
//! # Layout
//!
//! * [`subscription`]: a raw `apisubscription` row parsed, once, into a typed
//!   [`subscription::Subscription`] that cannot hold an invalid value.
//! * [`watch_table`]: Open Dental's `WatchTable` names and how they map to a
//!   table, a change column and an optional filter.
//! * [`db`]: the only place SQL lives. [`db::Database`] is the boundary; one
//!   file per backend (`mysql.rs`, `sqlite.rs`).
//! * [`datetime`]: Open Dental's datetime text, read and written without
//!   chrono's per-call format parsing.
//! * [`clock_watch`]: noticing that the server's clock stepped back between
//!   ticks, from its offset to this process's monotonic clock.
//! * [`window`]: the pure arithmetic of a polling window (start, stop,
//!   look-back cap, due time).
//! * [`processor`]: one subscription's window: page, send, advance the
//!   watermark. This is where `DateTimeStart` moves.
//! * [`pages`]: windows of the same table and tick read each page once.
//! * [`quiet`]: due windows with nothing in them, found with one probe per
//!   tick and closed together.
//! * [`batch`]: a page of rows cut into request bodies, and batch ids.
//! * [`delivery`]: the HTTP client. This is where a batch is sent and the
//!   reply is classified.
//! * [`signing`]: Standard Webhooks signatures and per-subscription secrets.
//! * [`destination`]: which receiver addresses may be contacted.
//! * [`health`]: consecutive failures, backoff and deactivation (pure).
//! * [`journal`]: the delivery log writer (`rowhook_delivery`).
//! * [`scheduler`]: the tick loop that loads subscriptions, decides which are
//!   due and runs them concurrently.
//! * [`receiver`]: a small webhook receiver used by `rowhook demo` and by the
//!   tests.
//! * [`commands`]: one file per CLI subcommand; [`cli`], [`config`],
//!   [`telemetry`] and [`shutdown`] are the binary's plumbing.
#![cfg_attr(not(windows), forbid(unsafe_code))]
// On Windows the calls into Win32 in `windows::ffi` are the only unsafe code.
#![cfg_attr(windows, deny(unsafe_code))]

pub mod batch;
pub mod cli;
pub mod clock_watch;
pub mod commands;
pub mod config;
pub mod datetime;
pub mod db;
pub mod delivery;
pub mod destination;
pub mod env_file;
pub mod health;
pub mod journal;
pub mod pages;
pub mod processor;
pub mod quiet;
pub mod receiver;
pub mod scheduler;
pub mod shutdown;
pub mod signing;
pub mod subscription;
pub mod telemetry;
pub mod watch_table;
pub mod window;
#[cfg(windows)]
pub mod windows;

/// The datetime text format Open Dental uses everywhere: in the database
/// literals it writes, in the JSON it sends, and in `DateTimeStart`.
pub const DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
