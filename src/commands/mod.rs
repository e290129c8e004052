//! One file per subcommand. Each takes parsed arguments and returns
//! `anyhow::Result`, the only layer where errors become messages for people.
//!
//! Below it errors are typed: `SubscriptionError` (a row cannot be used),
//! `DbError` (which table or column is missing), `delivery::sender::Failure`
//! (why a POST did not count), `window::Outcome` (how a window ended, with
//! the failed batch's id, size and first key). `anyhow` appears only here and
//! in `main.rs`.

/// `println!` that returns an error instead of panicking when standard
/// output has gone away (`rowhook status | head`, `less` quit early): the
/// command stops there, and `main` ends quietly ([`is_broken_pipe`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::commands::write_line(format_args!($($arg)*))
    };
}

pub mod check;
pub mod deliveries;
pub mod demo;
pub mod migrate;
pub mod replay;
pub mod run;
pub mod secret;
pub mod service;
pub mod status;
pub mod subscriptions;

use std::io::Write as _;

use anyhow::Context as _;

use crate::cli::DbArgs;
use crate::db::Database;

/// Connects to `--database-url`, which every command but `demo` needs.
pub async fn connect(args: &DbArgs, max_connections: u32) -> anyhow::Result<Database> {
    let url = args
        .database_url
        .as_deref()
        .context("no database: pass --database-url or set DATABASE_URL")?;
    Database::connect_in_zone(url, max_connections, args.time_zone.as_deref())
        .await
        .context("cannot connect to the database")
}

/// Renders rows as a plain, aligned text table for a terminal.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = line(headers.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.clone()));
    }
    out
}

/// The body subscription `row` receives, as `status`, `check` and
/// `subscriptions list` show it: its own choice or `default`, then
/// `columns` for a table Open Dental sends no event for.
pub fn body_shown(
    row: &crate::domain::subscription::SubscriptionRow,
    stored: Option<&String>,
    default: crate::domain::body::BodyKind,
) -> String {
    let chosen = match stored.map(|s| s.parse::<crate::domain::body::BodyKind>()) {
        None => default,
        Some(Ok(body)) => body,
        Some(Err(error)) => return format!("invalid: {error}"),
    };
    chosen.for_watch_table(&row.watch_table).to_string()
}

/// The error and its causes, each said once: drivers often repeat their
/// cause's message in their own.
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if !text.contains(&message) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
    }
    text
}

/// Writes one line to standard output (see `outln!`).
pub fn write_line(line: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)?;
    out.write_all(b"\n")
}

/// Whether a command ended because whoever read its output stopped
/// reading: not a failure to report.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
