//! SQL for rowhook's own health and delivery log, and for the operator's
//! commands (`status`, `deliveries`, `subscriptions`, `replay`). Every
//! statement here is plain SQL both backends accept; `with_pool!` runs it
//! on whichever pool this is.

use chrono::NaiveDateTime;
use sqlx::Row;

use super::lease::{check_fenced, upsert_source};
use super::sql::{format_time, parse_server_time};
use super::{Database, DbError};
use crate::domain::attempt::{DeliveryRecord, DeliveryStatus, FailureClass};
use crate::domain::body::BodyKind;
use crate::domain::health::Health;
use crate::domain::lease::Fence;
use crate::domain::subscription::SubscriptionId;

/// A new subscription row for `rowhook subscriptions add`.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub url: String,
    pub watch_table: String,
    pub polling_seconds: u32,
    pub workstation: String,
    pub customer_key: String,
    pub note: String,
}

/// Builds a [`Health`] from `rowhook_health` columns read as text.
pub(super) fn health_from(
    failures: Option<i64>,
    times: [Option<String>; 4],
    reason: Option<String>,
) -> Result<Option<Health>, DbError> {
    let Some(failures) = failures else {
        return Ok(None);
    };
    let [success, failure, next, deactivated] = times;
    let time = |t: Option<String>| t.map(|t| parse_server_time(&t)).transpose();
    Ok(Some(Health {
        consecutive_failures: u32::try_from(failures).unwrap_or(0),
        last_success_at: time(success)?,
        last_failure_at: time(failure)?,
        last_failure_reason: reason.unwrap_or_default(),
        next_retry_at: time(next)?,
        deactivated_at: time(deactivated)?,
    }))
}

/// The error as `rowhook_delivery.error` (255 characters) can hold it: a
/// strict server refuses a longer value, and the attempt would go unlogged.
fn error_column(error: &str) -> &str {
    match error.char_indices().nth(255) {
        Some((end, _)) => &error[..end],
        None => error,
    }
}

fn opt_time(t: Option<NaiveDateTime>) -> Option<String> {
    t.map(format_time)
}

impl Database {
    /// Stores a subscription's health; with a `fence`, only while this
    /// agent holds the lease ([`DbError::LeaseLost`] otherwise).
    pub async fn save_health(
        &self,
        id: SubscriptionId,
        h: &Health,
        fence: Option<&Fence>,
    ) -> Result<(), DbError> {
        let upsert = match self {
            Database::MySql { .. } => " ON DUPLICATE KEY UPDATE consecutive_failures = VALUES(consecutive_failures), \
                 last_success_at = VALUES(last_success_at), last_failure_at = VALUES(last_failure_at), \
                 last_failure_reason = VALUES(last_failure_reason), next_retry_at = VALUES(next_retry_at), \
                 deactivated_at = VALUES(deactivated_at)",
            Database::Sqlite(_) => " ON CONFLICT (subscription_num) DO UPDATE SET \
                 consecutive_failures = excluded.consecutive_failures, last_success_at = excluded.last_success_at, \
                 last_failure_at = excluded.last_failure_at, last_failure_reason = excluded.last_failure_reason, \
                 next_retry_at = excluded.next_retry_at, deactivated_at = excluded.deactivated_at",
        };
        let fence = fence.filter(|_| self.has_leases());
        let sql = format!(
            "INSERT INTO rowhook_health (subscription_num, consecutive_failures, last_success_at, \
             last_failure_at, last_failure_reason, next_retry_at, deactivated_at) {}{upsert}",
            upsert_source(7, fence)
        );
        let written = with_pool!(self, pool => {
            let q = sqlx::query(&sql)
                .bind(id.0)
                .bind(i64::from(h.consecutive_failures))
                .bind(opt_time(h.last_success_at))
                .bind(opt_time(h.last_failure_at))
                .bind(&h.last_failure_reason)
                .bind(opt_time(h.next_retry_at))
                .bind(opt_time(h.deactivated_at));
            bind_fence!(q, id, fence).execute(pool).await?.rows_affected()
        });
        check_fenced(id, fence, written)
    }

    /// Appends attempts to the delivery log in one transaction (one log
    /// flush, not one per attempt), each numbered after the earlier
    /// attempts of the same batch. All or none are written.
    pub async fn record_deliveries(&self, records: &[DeliveryRecord]) -> Result<(), DbError> {
        let sql = "INSERT INTO rowhook_delivery (subscription_num, batch_id, watch_table, window_start, \
                   window_stop, first_key, last_key, row_count, attempt, status, http_status, error_class, \
                   error, elapsed_ms, attempted_at) \
                   SELECT ?, ?, ?, ?, ?, ?, ?, ?, COUNT(*) + 1, ?, ?, ?, ?, ?, ? \
                   FROM rowhook_delivery WHERE subscription_num = ? AND batch_id = ?";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for r in records {
                sqlx::query(sql)
                    .bind(r.subscription.0)
                    .bind(&r.batch_id)
                    .bind(&r.watch_table)
                    .bind(format_time(r.window_start))
                    .bind(format_time(r.window_stop))
                    .bind(r.first_key)
                    .bind(r.last_key)
                    .bind(i64::from(r.rows))
                    .bind(r.status.as_str())
                    .bind(r.http_status.map(i64::from))
                    .bind(r.error_class.map(FailureClass::as_str))
                    .bind(error_column(&r.error))
                    .bind(i32::try_from(r.elapsed_ms).unwrap_or(i32::MAX))
                    .bind(format_time(r.attempted_at))
                    .bind(r.subscription.0)
                    .bind(&r.batch_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes delivery-log rows attempted before `before`, a slice at a
    /// time so a large backlog never holds a long lock. Returns how many.
    pub async fn prune_deliveries(&self, before: NaiveDateTime) -> Result<u64, DbError> {
        let before = format_time(before);
        let mut total = 0;
        loop {
            let deleted = with_pool!(self, pool => {
                sqlx::query(
                    "DELETE FROM rowhook_delivery WHERE id IN (SELECT id FROM (SELECT id FROM rowhook_delivery \
                     WHERE attempted_at < ? ORDER BY id LIMIT 5000) AS old)",
                )
                .bind(&before)
                .execute(pool)
                .await?
                .rows_affected()
            });
            total += deleted;
            if deleted < 5000 {
                return Ok(total);
            }
        }
    }

    /// The most recent attempts, newest first.
    pub async fn deliveries(
        &self,
        subscription: Option<SubscriptionId>,
        failed_only: bool,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, DbError> {
        let mut sql = String::from(
            "SELECT subscription_num, batch_id, watch_table, CAST(window_start AS CHAR), \
             CAST(window_stop AS CHAR), first_key, last_key, row_count, attempt, status, http_status, \
             error_class, error, elapsed_ms, CAST(attempted_at AS CHAR) FROM rowhook_delivery WHERE 1 = 1",
        );
        if subscription.is_some() {
            sql.push_str(" AND subscription_num = ?");
        }
        if failed_only {
            sql.push_str(" AND status = 'FAILED'");
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let sql = match self {
            Database::Sqlite(_) => sql.replace(" AS CHAR)", " AS TEXT)"),
            Database::MySql { .. } => sql,
        };
        let mut records = Vec::new();
        with_pool!(self, pool => {
            let mut q = sqlx::query(&sql);
            if let Some(id) = subscription {
                q = q.bind(id.0);
            }
            for row in q.bind(i64::from(limit)).fetch_all(pool).await? {
                let status: String = row.try_get(9)?;
                let class: Option<String> = row.try_get(11)?;
                records.push(DeliveryRecord {
                    subscription: SubscriptionId(row.try_get(0)?),
                    batch_id: row.try_get(1)?,
                    watch_table: row.try_get(2)?,
                    window_start: parse_server_time(&row.try_get::<String, _>(3)?)?,
                    window_stop: parse_server_time(&row.try_get::<String, _>(4)?)?,
                    first_key: row.try_get(5)?,
                    last_key: row.try_get(6)?,
                    rows: u32::try_from(row.try_get::<i64, _>(7)?).unwrap_or(0),
                    attempt: u32::try_from(row.try_get::<i64, _>(8)?).unwrap_or(0),
                    status: DeliveryStatus::parse(&status),
                    http_status: row.try_get::<Option<i64>, _>(10)?.and_then(|s| u16::try_from(s).ok()),
                    error_class: class.as_deref().map(FailureClass::parse),
                    error: row.try_get(12)?,
                    elapsed_ms: u64::try_from(row.try_get::<i64, _>(13)?).unwrap_or(0),
                    attempted_at: parse_server_time(&row.try_get::<String, _>(14)?)?,
                });
            }
        });
        Ok(records)
    }

    /// Clears the failure count and deactivation, and makes the
    /// subscription due at once. `DateTimeStart` keeps its place. Returns
    /// false when no such subscription exists.
    pub async fn reactivate(&self, id: SubscriptionId) -> Result<bool, DbError> {
        if !self.subscription_exists(id).await? {
            return Ok(false);
        }
        let health = Health::default();
        self.save_health(id, &health, None).await?;
        Ok(true)
    }

    /// Makes a subscription that is backing off due at once: its next
    /// retry is cleared, its failure count and deactivation are kept.
    /// Returns false when no such subscription exists.
    pub async fn retry_now(&self, id: SubscriptionId) -> Result<bool, DbError> {
        if !self.subscription_exists(id).await? {
            return Ok(false);
        }
        with_pool!(self, pool => {
            sqlx::query("UPDATE rowhook_health SET next_retry_at = NULL WHERE subscription_num = ?")
                .bind(id.0)
                .execute(pool)
                .await?;
        });
        Ok(true)
    }

    /// Whether `apisubscription` has this row.
    pub async fn subscription_exists(&self, id: SubscriptionId) -> Result<bool, DbError> {
        let n: i64 = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM apisubscription WHERE ApiSubscriptionNum = ?")
                .bind(id.0)
                .fetch_one(pool)
                .await?
        });
        Ok(n > 0)
    }

    /// Records the body subscription `id` receives (`None`: the daemon's
    /// default). Returns false when no such subscription exists.
    pub async fn set_body(
        &self,
        id: SubscriptionId,
        body: Option<BodyKind>,
    ) -> Result<bool, DbError> {
        if !self.subscription_exists(id).await? {
            return Ok(false);
        }
        let upsert = match self {
            Database::MySql { .. } => {
                "INSERT INTO rowhook_body (subscription_num, body) VALUES (?, ?) \
                 ON DUPLICATE KEY UPDATE body = VALUES(body)"
            }
            Database::Sqlite(_) => {
                "INSERT INTO rowhook_body (subscription_num, body) VALUES (?, ?) \
                 ON CONFLICT (subscription_num) DO UPDATE SET body = excluded.body"
            }
        };
        with_pool!(self, pool => {
            match body {
                Some(body) => sqlx::query(upsert).bind(id.0).bind(body.as_str()).execute(pool).await?,
                None => sqlx::query("DELETE FROM rowhook_body WHERE subscription_num = ?")
                    .bind(id.0)
                    .execute(pool)
                    .await?,
            };
        });
        Ok(true)
    }

    /// Inserts an ordinary Open Dental subscription row starting now;
    /// returns its number.
    pub async fn add_subscription(&self, s: &NewSubscription) -> Result<SubscriptionId, DbError> {
        let now = format_time(self.now().await?);
        let sql =
            "INSERT INTO apisubscription (EndPointUrl, Workstation, CustomerKey, WatchTable, \
                   PollingSeconds, UiEventType, DateTimeStart, DateTimeStop, Note) \
                   VALUES (?, ?, ?, ?, ?, '', ?, '0001-01-01 00:00:00', ?)";
        let id = with_pool!(self, pool => {
            let done = sqlx::query(sql)
                .bind(&s.url)
                .bind(&s.workstation)
                .bind(&s.customer_key)
                .bind(&s.watch_table)
                .bind(i64::from(s.polling_seconds))
                .bind(&now)
                .bind(&s.note)
                .execute(pool)
                .await?;
            i64::try_from(done.last_insert_id_or_rowid()).unwrap_or_default()
        });
        Ok(SubscriptionId(id))
    }

    /// Sets `DateTimeStop` to now: Open Dental's way to end a subscription.
    pub async fn stop_subscription(&self, id: SubscriptionId) -> Result<bool, DbError> {
        let now = format_time(self.now().await?);
        self.update_subscription(
            "UPDATE apisubscription SET DateTimeStop = ? WHERE ApiSubscriptionNum = ?",
            &now,
            id,
        )
        .await
    }

    /// Deletes the row and rowhook's own records of it, its secret and lease
    /// included (the delivery log keeps its history until pruned).
    pub async fn remove_subscription(&self, id: SubscriptionId) -> Result<bool, DbError> {
        let mut removed = false;
        let mut statements = vec![
            "DELETE FROM apisubscription WHERE ApiSubscriptionNum = ?",
            "DELETE FROM rowhook_progress WHERE subscription_num = ?",
            "DELETE FROM rowhook_health WHERE subscription_num = ?",
            "DELETE FROM rowhook_secret WHERE subscription_num = ?",
            "DELETE FROM rowhook_body WHERE subscription_num = ?",
        ];
        if self.has_leases() {
            statements.push("DELETE FROM rowhook_lease WHERE subscription_num = ?");
        }
        for sql in statements {
            let n = with_pool!(self, pool => sqlx::query(sql).bind(id.0).execute(pool).await?.rows_affected());
            removed |= n > 0 && sql.contains("apisubscription");
        }
        Ok(removed)
    }

    /// Rewinds (or moves) `DateTimeStart` to `since`, Open Dental's way to
    /// replay. A running daemon notices the edit and follows it.
    pub async fn replay(&self, id: SubscriptionId, since: NaiveDateTime) -> Result<bool, DbError> {
        let since = format_time(since);
        self.update_subscription(
            "UPDATE apisubscription SET DateTimeStart = ? WHERE ApiSubscriptionNum = ?",
            &since,
            id,
        )
        .await
    }

    async fn update_subscription(
        &self,
        sql: &str,
        value: &str,
        id: SubscriptionId,
    ) -> Result<bool, DbError> {
        let n = with_pool!(self, pool => {
            sqlx::query(sql).bind(value).bind(id.0).execute(pool).await?.rows_affected()
        });
        // MySQL counts only changed rows; an unchanged value still means the
        // subscription exists.
        Ok(n > 0 || self.subscription_exists(id).await?)
    }
}

/// `last_insert_id` (MySQL) and `last_insert_rowid` (SQLite) under one name.
trait LastInsert {
    fn last_insert_id_or_rowid(&self) -> u64;
}

impl LastInsert for sqlx::mysql::MySqlQueryResult {
    fn last_insert_id_or_rowid(&self) -> u64 {
        self.last_insert_id()
    }
}

impl LastInsert for sqlx::sqlite::SqliteQueryResult {
    fn last_insert_id_or_rowid(&self) -> u64 {
        u64::try_from(self.last_insert_rowid()).unwrap_or_default()
    }
}
