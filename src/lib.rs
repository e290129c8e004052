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
//! The folders are the layers, and each imports only from those before it:
//!
//! * [`domain`]: the values rowhook reasons about — a parsed subscription
//!   (`domain/subscription.rs`), the table it watches, where it stands
//!   (`progress.rs`), its health, its secret, a delivery attempt. No I/O.
//! * [`db`]: every SQL statement. Subscriptions are read in a snapshot, a
//!   page is read (`db/mysql/page.rs`), the watermark moves
//!   (`db/progress.rs`).
//! * [`delivery`]: a batch is sent (`sender.rs`) and signed (`signing.rs`),
//!   to an allowed address (`destination.rs`), and logged (`journal.rs`).
//! * [`config`]: the daemon's settings.
//! * [`window`]: one subscription's window — planned (`plan.rs`), read
//!   ahead (`read_ahead.rs`, `pages.rs`), cut into batches (`batch.rs`),
//!   sent and advanced (`run.rs`).
//! * [`tick`]: one tick — subscriptions admitted (`admit.rs`), the safe
//!   stop (`stop.rs`), clock steps (`clock_step.rs`, `rewinds.rs`), empty
//!   windows closed together (`quiet.rs`), a task per window (`task.rs`).
//! * [`daemon`]: ticks until shutdown.
//! * The binary's edge: [`commands`] (one file per subcommand), [`cli`],
//!   [`telemetry`], [`shutdown`], [`env_file`] (`--config`), `windows/`
//!   (the Windows service and Event Log), [`http`] (`--http`: metrics,
//!   health and the status page), and [`receiver`] (the demo's and the
//!   tests' webhook receiver).
#![cfg_attr(not(windows), forbid(unsafe_code))]
// On Windows the calls into Win32 in `win32.rs` are the only unsafe code.
#![cfg_attr(windows, deny(unsafe_code))]

pub mod domain;
/// The few Win32 calls rowhook makes (NetBIOS name, Event Log): a leaf
/// that imports nothing of the crate.
#[cfg(windows)]
#[allow(unsafe_code)]
pub mod win32;

pub mod db;

pub mod delivery;

pub mod config;

pub mod window;

pub mod tick;

pub mod daemon;

pub mod cli;
pub mod commands;
pub mod env_file;
pub mod http;
pub mod receiver;
pub mod shutdown;
pub mod telemetry;
#[cfg(windows)]
pub mod windows;

pub use domain::datetime::DATETIME_FORMAT;
