//! The snapshot's rows, decoded once for both backends.
//!
//! Each backend's snapshot statement names its columns alike (`num`,
//! `endpoint_url`, … `h_reason`), so one decoder reads a subscription row,
//! its progress record and its health by name, whichever driver's row it
//! is given.
//!
//! Data never stalls a subscription: the subscription's text columns are
//! read as bytes, so one odd row (a `_bin` collation, raw bytes in SQLite)
//! is refused on its own by its parse instead of failing the tick for
//! everyone. Likewise a watched row's text is decoded lossily, a DECIMAL a
//! double cannot hold goes as its exact text (`encode.rs`), a zero or
//! pre-1880 `DateTimeStart` means "from the beginning" without asking the
//! server to convert it (`Database::local_to_instant`), and a row too large
//! for any request is skipped and logged (`window/batch.rs`).

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::error::DbError;
use super::operator::health_from;
use super::progress::progress_from;
use crate::domain::health::Health;
use crate::domain::progress::Progress;
use crate::domain::subscription::SubscriptionRow;

/// One subscription as a tick reads it.
pub(super) struct SnapshotEntry {
    pub row: SubscriptionRow,
    pub progress: Option<Progress>,
    pub health: Option<Health>,
    /// The body chosen for it in `rowhook_body`, as stored.
    pub body: Option<String>,
}

/// Decodes one row of a snapshot statement; `None` for the clock-only row
/// MySQL's statement returns when there are no subscriptions.
pub(super) fn snapshot_entry<'r, R>(row: &'r R) -> Result<Option<SnapshotEntry>, DbError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Option<Vec<u8>>: Decode<'r, R::Database>,
{
    let Some(num) = row.try_get::<Option<i64>, _>("num")? else {
        return Ok(None);
    };
    // Read as bytes: sqlx refuses `String` for a MySQL column with a binary
    // collation (`utf8mb4_bin`), and SQLite keeps whatever was written, so
    // a TEXT column may hold invalid UTF-8 or a BLOB. Decoded lossily here,
    // the row's own parse refuses it (`SubscriptionError::NotText`) instead
    // of the whole snapshot failing for every subscription.
    let text = |column: &'static str| -> Result<String, sqlx::Error> {
        Ok(row
            .try_get_unchecked::<Option<Vec<u8>>, _>(column)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    };
    let opt = |column: &'static str| row.try_get::<Option<String>, _>(column);
    let subscription = SubscriptionRow {
        num,
        endpoint_url: text("endpoint_url")?,
        workstation: text("workstation")?,
        customer_key: text("customer_key")?,
        watch_table: text("watch_table")?,
        polling_seconds: row
            .try_get::<Option<i64>, _>("polling_seconds")?
            .unwrap_or_default(),
        ui_event_type: text("ui_event_type")?,
        date_time_start: text("date_time_start")?,
        date_time_stop: text("date_time_stop")?,
    };
    let progress = progress_from(
        opt("p_start")?,
        opt("p_watermark")?,
        opt("p_window_stop")?,
        opt("p_cursor_stamp")?,
        row.try_get("p_cursor_key")?,
    )?;
    let times = [
        opt("h_success")?,
        opt("h_failure")?,
        opt("h_next_retry")?,
        opt("h_deactivated")?,
    ];
    let health = health_from(row.try_get("h_failures")?, times, opt("h_reason")?)?;
    Ok(Some(SnapshotEntry {
        row: subscription,
        progress,
        health,
        body: opt("body")?,
    }))
}
