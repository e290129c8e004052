//! rowhook's record of each subscription's position (`rowhook_progress`), and
//! the compare-and-set that moves `DateTimeStart`: this is where the
//! watermark moves.
//!
//! `DateTimeStart` moves only from the exact text that was read
//! ([`StartText`]) to the window's stop; an operator who moved it meanwhile
//! wins, and the record that belonged to the old text is ignored.
//!
//! `DateTimeStart` is the contract; the record is the precision. As in Open
//! Dental, a window's rows count as sent only once `DateTimeStart` has moved
//! past them, and rowhook moves it exactly when Open Dental would. The
//! record keeps (a) the `DateTimeStart` text rowhook last wrote, (b) the
//! same moment as an exact UTC instant, and (c) while a window is partly
//! delivered, its `stop` and the last acknowledged (stamp, key), so a
//! restart resumes after the last acknowledged batch. A `DateTimeStart` that
//! no longer equals (a) was moved by an operator, and rowhook follows it.
//!
//! Zero or unusual values compare correctly because the server compares its
//! own text. When the new local text equals the old (only in a repeated DST
//! hour) no update is attempted, so MySQL's "0 rows affected when
//! unchanged" is never mistaken for an operator's edit. On MariaDB, once a
//! record exists, one statement moves both (one commit per delivered
//! window); otherwise the two plain statements decide.

use chrono::NaiveDateTime;

use super::error::DbError;
use super::lease::{check_fenced, upsert_source, FENCED};
use super::sql::{format_stamp, format_time, parse_server_time, parse_stamp};
use super::{mysql, Database};
use crate::domain::lease::Fence;
use crate::domain::progress::{Cursor, Progress, Resume, StartText};
use crate::domain::subscription::SubscriptionId;

impl Database {
    /// Ends a delivered window: `DateTimeStart` from `expected` (the text
    /// that was read) to `done.date_time_start`, then the progress record
    /// to `done`. Returns false — and changes nothing — when the row no
    /// longer holds `expected`. On MariaDB the common case is one statement.
    /// With a `fence`, nothing is written unless this agent still holds the
    /// lease ([`DbError::LeaseLost`] otherwise).
    pub async fn close_window(
        &self,
        id: SubscriptionId,
        expected: &StartText,
        done: &Progress,
        fence: Option<&Fence>,
    ) -> Result<bool, DbError> {
        let stop = &done.date_time_start;
        // In a repeated DST hour the new local text can equal the old one;
        // then only the progress record moves.
        if stop != expected {
            if let Self::MySql { pool, .. } = self {
                if mysql::close_window(pool, id, expected, done, fence).await? {
                    return Ok(true);
                }
            }
            if !self.advance_watermark(id, expected, stop, fence).await? {
                return match fence {
                    Some(fence) if !self.still_holds(id, fence).await? => {
                        Err(DbError::LeaseLost(id.0))
                    }
                    _ => Ok(false),
                };
            }
        }
        self.save_progress(id, done, fence).await?;
        Ok(true)
    }

    /// Moves `DateTimeStart` from `expected` (the text that was read) to
    /// `stop`. Returns false — and changes nothing — when the row no longer
    /// holds `expected` (an operator rewound, moved or deleted it
    /// meanwhile), or the `fence` no longer holds.
    async fn advance_watermark(
        &self,
        id: SubscriptionId,
        expected: &StartText,
        stop: &StartText,
        fence: Option<&Fence>,
    ) -> Result<bool, DbError> {
        let sql = "UPDATE apisubscription SET DateTimeStart = ? \
                   WHERE ApiSubscriptionNum = ? AND DateTimeStart = ?";
        let done = match (self, fence) {
            (Self::MySql { pool, .. }, Some(fence)) => {
                let sql = format!("{sql} AND {FENCED}");
                let q = sqlx::query(&sql)
                    .bind(stop.as_str())
                    .bind(id.0)
                    .bind(expected.as_str());
                bind_fence!(q, id, Some(fence))
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            _ => with_pool!(self, pool => {
                let q = sqlx::query(sql).bind(stop.as_str()).bind(id.0).bind(expected.as_str());
                q.execute(pool).await?.rows_affected()
            }),
        };
        Ok(done == 1)
    }

    /// After the server's clock stepped back: every progress record at or
    /// after `to` moves back to `to`, and a partly delivered window whose
    /// last acknowledged batch is at or after it is dropped (read again from
    /// its start). Returns how many records moved.
    pub async fn rewind_progress(&self, to: NaiveDateTime) -> Result<u64, DbError> {
        let min = match self {
            Self::MySql { .. } => "LEAST",
            Self::Sqlite(_) => "MIN",
        };
        let sql = format!(
            "UPDATE rowhook_progress SET watermark = {min}(watermark, ?), window_stop = NULL, \
             cursor_stamp = NULL, cursor_key = NULL WHERE watermark > ? OR cursor_stamp >= ?"
        );
        let to = format_time(to);
        let moved = with_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(&to)
                .bind(&to)
                .bind(&to)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(moved)
    }

    /// Records rowhook's position for `id` (`rowhook_progress`); with a
    /// `fence`, only while this agent holds the lease
    /// ([`DbError::LeaseLost`] otherwise).
    pub async fn save_progress(
        &self,
        id: SubscriptionId,
        p: &Progress,
        fence: Option<&Fence>,
    ) -> Result<(), DbError> {
        let (stop, stamp, key) = match p.window {
            Some(Resume { stop, after }) => (
                Some(format_time(stop)),
                Some(format_stamp(after.stamp)),
                Some(after.key),
            ),
            None => (None, None, None),
        };
        let fence = fence.filter(|_| self.has_leases());
        let upsert = match self {
            Self::MySql { .. } => MYSQL_UPSERT,
            Self::Sqlite(_) => SQLITE_UPSERT,
        };
        let sql = format!(
            "INSERT INTO rowhook_progress (subscription_num, date_time_start, watermark, \
             window_stop, cursor_stamp, cursor_key) {} {upsert}",
            upsert_source(6, fence)
        );
        let watermark = format_time(p.watermark);
        let written = with_pool!(self, pool => {
            let q = sqlx::query(&sql)
                .bind(id.0)
                .bind(p.date_time_start.as_str())
                .bind(watermark)
                .bind(stop)
                .bind(stamp)
                .bind(key);
            bind_fence!(q, id, fence).execute(pool).await?.rows_affected()
        });
        check_fenced(id, fence, written)
    }
}

const MYSQL_UPSERT: &str = "ON DUPLICATE KEY UPDATE date_time_start = VALUES(date_time_start), \
     watermark = VALUES(watermark), window_stop = VALUES(window_stop), \
     cursor_stamp = VALUES(cursor_stamp), cursor_key = VALUES(cursor_key)";

const SQLITE_UPSERT: &str = "ON CONFLICT (subscription_num) DO UPDATE SET \
     date_time_start = excluded.date_time_start, watermark = excluded.watermark, \
     window_stop = excluded.window_stop, cursor_stamp = excluded.cursor_stamp, \
     cursor_key = excluded.cursor_key";

/// Builds a [`Progress`] from the columns of `rowhook_progress` as text.
pub(super) fn progress_from(
    date_time_start: Option<String>,
    watermark: Option<String>,
    window_stop: Option<String>,
    cursor_stamp: Option<String>,
    cursor_key: Option<i64>,
) -> Result<Option<Progress>, DbError> {
    let (Some(date_time_start), Some(watermark)) = (date_time_start, watermark) else {
        return Ok(None);
    };
    let window = match (window_stop, cursor_stamp, cursor_key) {
        (Some(stop), Some(stamp), Some(key)) => Some(Resume {
            stop: parse_server_time(&stop)?,
            after: Cursor {
                stamp: parse_stamp(&stamp)?,
                key,
            },
        }),
        _ => None,
    };
    Ok(Some(Progress {
        date_time_start: StartText::new(date_time_start),
        watermark: parse_server_time(&watermark)?,
        window,
    }))
}
