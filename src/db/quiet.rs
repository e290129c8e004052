//! The statements behind `tick/quiet.rs`: one probe for the newest change
//! stamp of several tables, and one pair of updates that closes many empty
//! windows at once.

use chrono::NaiveDateTime;
use sqlx::Row;

use super::sql::{format_time, quote};
use super::{Database, DbError, WatchedTable};
use crate::domain::lease::AgentId;
use crate::domain::progress::StartText;
use crate::domain::subscription::SubscriptionId;

/// An empty window to close: whose, and the `DateTimeStart` text that was
/// read (the compare-and-set's expected value).
#[derive(Debug, Clone, Copy)]
pub struct EmptyWindow<'a> {
    pub id: SubscriptionId,
    pub read: &'a StartText,
}

/// How many subscriptions one closing statement names; bounds its size.
const CHUNK: usize = 500;

impl Database {
    /// The greatest change stamp before `stop` in each of `tables`, as the
    /// text the server compares (`None`: no such row), in one statement.
    ///
    /// `stop` is the window's own bound, so the same rows qualify as for a
    /// page (in SQLite, where any value can sit in any column, it also keeps
    /// out BLOBs, which sort after all text). The maximum ignores a row
    /// filter: it can only be later than the filtered one, so a window it
    /// calls empty is empty. With an index that starts with the change
    /// column the server answers from the index alone.
    pub async fn latest_stamps(
        &self,
        tables: &[&WatchedTable],
        stop: NaiveDateTime,
    ) -> Result<Vec<Option<String>>, DbError> {
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        let (mark, text) = match self {
            Self::MySql { .. } => ('`', "CHAR"),
            Self::Sqlite(_) => ('"', "TEXT"),
        };
        let parts: Vec<String> = tables
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let stamp = quote(&t.change_column, mark);
                format!(
                    "SELECT {i}, CAST(MAX({stamp}) AS {text}) FROM {} WHERE {stamp} < ?",
                    quote(&t.table, mark)
                )
            })
            .collect();
        let sql = parts.join(" UNION ALL ");
        let mut latest = vec![None; tables.len()];
        let stop = format_time(stop);
        // Stamps are read as bytes: a hostile one must not fail every tick.
        let rows: Vec<(i64, Option<Vec<u8>>)> = with_pool!(self, pool => {
            let mut q = sqlx::query(&sql);
            for _ in tables {
                q = q.bind(&stop);
            }
            let mut rows = Vec::with_capacity(tables.len());
            for row in q.fetch_all(pool).await? {
                rows.push((row.try_get(0)?, row.try_get_unchecked(1)?));
            }
            rows
        });
        for (i, stamp) in rows {
            if let Some(slot) = usize::try_from(i).ok().and_then(|i| latest.get_mut(i)) {
                *slot = stamp.map(|b| String::from_utf8_lossy(&b).into_owned());
            }
        }
        Ok(latest)
    }

    /// Closes windows that held no rows, all ending at `stop` (`stop_local`
    /// as `DateTimeStart` text). First rowhook's position for each moves to
    /// `stop`; then each `DateTimeStart` moves from the text that was read,
    /// by compare-and-set. Returns how many `DateTimeStart`s moved.
    ///
    /// A position that does not match its `DateTimeStart` (the row was
    /// edited meanwhile, or rowhook stopped between the two statements)
    /// reads next tick as an operator's edit, and the window is read again
    /// from `DateTimeStart`. Every subscription named must already have a
    /// progress record.
    pub async fn close_empty_windows(
        &self,
        stop: NaiveDateTime,
        stop_local: &StartText,
        read: &[EmptyWindow<'_>],
        holder: Option<&AgentId>,
    ) -> Result<u64, DbError> {
        let watermark = format_time(stop);
        // Closed from the tick itself, never from a window that may have
        // outlived its lease: the holder is fence enough.
        let holder = holder.filter(|_| self.has_leases());
        let held = match holder {
            Some(_) => {
                " AND {num} IN (SELECT subscription_num FROM rowhook_lease WHERE holder = ?)"
            }
            None => "",
        };
        let mut moved = 0;
        for chunk in read.chunks(CHUNK) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let progress = format!(
                "UPDATE rowhook_progress SET date_time_start = ?, watermark = ?, \
                 window_stop = NULL, cursor_stamp = NULL, cursor_key = NULL \
                 WHERE subscription_num IN ({marks}){}",
                held.replace("{num}", "subscription_num")
            );
            let pairs = vec!["(ApiSubscriptionNum = ? AND DateTimeStart = ?)"; chunk.len()];
            let cas = format!(
                "UPDATE apisubscription SET DateTimeStart = ? WHERE ({}){}",
                pairs.join(" OR "),
                held.replace("{num}", "ApiSubscriptionNum")
            );
            moved += with_pool!(self, pool => {
                let mut q = sqlx::query(&progress).bind(stop_local.as_str()).bind(&watermark);
                for window in chunk {
                    q = q.bind(window.id.0);
                }
                if let Some(holder) = holder {
                    q = q.bind(holder.as_str());
                }
                q.execute(pool).await?;
                let mut q = sqlx::query(&cas).bind(stop_local.as_str());
                for window in chunk {
                    q = q.bind(window.id.0).bind(window.read.as_str());
                }
                if let Some(holder) = holder {
                    q = q.bind(holder.as_str());
                }
                q.execute(pool).await?.rows_affected()
            });
        }
        Ok(moved)
    }
}
