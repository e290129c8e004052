//! The statements behind leases (`rowhook_lease`, MariaDB only): taking
//! free and expired leases, renewing this agent's, letting them go, and
//! the condition that fences a write. See [`crate::domain::lease`] for the
//! rules.
//!
//! Every time is the server's (`UTC_TIMESTAMP(6)`), so agents whose clocks
//! disagree still agree on when a lease expires. Taking a lease is two
//! statements that cannot both succeed for two agents: `INSERT IGNORE`
//! where there is no row, and an `UPDATE` guarded by `expires <= now`
//! where there is one; what was won is then read back by holder.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDateTime;
use sqlx::mysql::MySqlPool;
use sqlx::Row;

use super::{Database, DbError};
use crate::domain::lease::{AgentId, Fence, LeaseRow};
use crate::domain::subscription::SubscriptionId;

/// How many subscriptions one statement names.
const CHUNK: usize = 500;

/// The condition a fenced write adds, binding the subscription, the holder
/// and the epoch: the lease still names this holder and epoch.
pub(super) const FENCED: &str = "EXISTS (SELECT 1 FROM rowhook_lease l \
     WHERE l.subscription_num = ? AND l.holder = ? AND l.epoch = ?)";

/// The rows an upsert of `n` values inserts: `VALUES (…)`, or under a
/// `fence` the same values as a `SELECT` that yields no row unless the
/// lease still holds (bind the fence after the values, `bind_fence!`).
pub(super) fn upsert_source(n: usize, fence: Option<&Fence>) -> String {
    let marks = marks(n);
    match fence {
        Some(_) => format!("SELECT {marks} FROM DUAL WHERE {FENCED}"),
        None => format!("VALUES ({marks})"),
    }
}

/// A fenced upsert that wrote nothing was refused: the lease passed on.
/// (sqlx asks MariaDB for found rows, so a row rewritten unchanged still
/// counts as written.)
pub(super) fn check_fenced(
    id: SubscriptionId,
    fence: Option<&Fence>,
    written: u64,
) -> Result<(), DbError> {
    match fence {
        Some(_) if written == 0 => Err(DbError::LeaseLost(id.0)),
        _ => Ok(()),
    }
}

impl Database {
    /// Whether this backend coordinates agents with leases (SQLite is one
    /// process: the demo).
    pub fn has_leases(&self) -> bool {
        matches!(self, Self::MySql { .. })
    }

    /// Takes the leases of `free` (no lease row) and `expired` (a row whose
    /// lease has expired, or that already names `agent`) for `agent`, the
    /// latter with a new epoch; returns the epoch of each one won.
    pub async fn take_leases(
        &self,
        agent: &AgentId,
        lease: Duration,
        free: &[SubscriptionId],
        expired: &[SubscriptionId],
    ) -> Result<HashMap<SubscriptionId, i64>, DbError> {
        let Self::MySql { pool, .. } = self else {
            return Ok(HashMap::new());
        };
        let micros = micros(lease);
        for chunk in free.chunks(CHUNK) {
            let rows = vec![
                "(?, ?, 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)";
                chunk.len()
            ];
            let sql = format!(
                "INSERT IGNORE INTO rowhook_lease (subscription_num, holder, epoch, since, expires) \
                 VALUES {}",
                rows.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.0).bind(agent.as_str()).bind(micros);
            }
            q.execute(pool).await?;
        }
        for chunk in expired.chunks(CHUNK) {
            let sql = format!(
                "UPDATE rowhook_lease SET holder = ?, epoch = epoch + 1, since = UTC_TIMESTAMP(6), \
                 expires = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND \
                 WHERE (expires <= UTC_TIMESTAMP(6) OR holder = ?) AND subscription_num IN ({})",
                marks(chunk.len())
            );
            let mut q = sqlx::query(&sql)
                .bind(agent.as_str())
                .bind(micros)
                .bind(agent.as_str());
            for id in chunk {
                q = q.bind(id.0);
            }
            q.execute(pool).await?;
        }
        let asked: Vec<SubscriptionId> = free.iter().chain(expired).copied().collect();
        held_of(pool, agent, &asked).await
    }

    /// Extends the leases of `held` that `agent` still holds by `lease`
    /// from now. `None` when every one was still held; else the epoch of
    /// each that was.
    pub async fn renew_leases(
        &self,
        agent: &AgentId,
        lease: Duration,
        held: &[SubscriptionId],
    ) -> Result<Option<HashMap<SubscriptionId, i64>>, DbError> {
        let Self::MySql { pool, .. } = self else {
            return Ok(None);
        };
        let mut renewed = 0;
        // Named one by one, not by holder alone: a row of this agent's it
        // does not know of (a take whose answer was lost) must not make
        // the count match while one it knows was taken over.
        for chunk in held.chunks(CHUNK) {
            let sql = format!(
                "UPDATE rowhook_lease SET expires = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND \
                 WHERE holder = ? AND subscription_num IN ({})",
                marks(chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(micros(lease)).bind(agent.as_str());
            for id in chunk {
                q = q.bind(id.0);
            }
            renewed += q.execute(pool).await?.rows_affected();
        }
        if usize::try_from(renewed).is_ok_and(|n| n == held.len()) {
            return Ok(None);
        }
        held_of(pool, agent, held).await.map(Some)
    }

    /// Lets leases of `agent` go at once — all of them (a clean shutdown),
    /// or those of `only` — so that another agent takes them on its next
    /// tick instead of after they expire.
    pub async fn release_leases(
        &self,
        agent: &AgentId,
        only: Option<&[SubscriptionId]>,
    ) -> Result<u64, DbError> {
        let Self::MySql { pool, .. } = self else {
            return Ok(0);
        };
        let Some(ids) = only else {
            let done = sqlx::query("DELETE FROM rowhook_lease WHERE holder = ?")
                .bind(agent.as_str())
                .execute(pool)
                .await?;
            return Ok(done.rows_affected());
        };
        let mut released = 0;
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "DELETE FROM rowhook_lease WHERE holder = ? AND subscription_num IN ({})",
                marks(chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(agent.as_str());
            for id in chunk {
                q = q.bind(id.0);
            }
            released += q.execute(pool).await?.rows_affected();
        }
        Ok(released)
    }

    /// Whether `fence` still holds its subscription's lease.
    pub(super) async fn still_holds(
        &self,
        id: SubscriptionId,
        fence: &Fence,
    ) -> Result<bool, DbError> {
        let Self::MySql { pool, .. } = self else {
            return Ok(true);
        };
        let sql = format!("SELECT {FENCED}");
        let q = sqlx::query_scalar(&sql);
        let holds: i64 = bind_fence!(q, id, Some(fence)).fetch_one(pool).await?;
        Ok(holds == 1)
    }
}

/// The leases `agent` holds among `ids`, with their epochs.
async fn held_of(
    pool: &MySqlPool,
    agent: &AgentId,
    ids: &[SubscriptionId],
) -> Result<HashMap<SubscriptionId, i64>, DbError> {
    let mut held = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT subscription_num, CAST(epoch AS SIGNED) FROM rowhook_lease \
             WHERE holder = ? AND subscription_num IN ({})",
            marks(chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(agent.as_str());
        for id in chunk {
            q = q.bind(id.0);
        }
        for row in q.fetch_all(pool).await? {
            held.insert(SubscriptionId(row.try_get(0)?), row.try_get(1)?);
        }
    }
    Ok(held)
}

/// A subscription's lease from the snapshot's `l_*` columns, if it has one
/// (rowhook's own columns, never zero dates: read as their types).
pub(super) fn lease_from(
    holder: Option<String>,
    epoch: Option<i64>,
    since: Option<NaiveDateTime>,
    live: Option<i64>,
) -> Option<LeaseRow> {
    let (Some(holder), Some(epoch), Some(since)) = (holder, epoch, since) else {
        return None;
    };
    Some(LeaseRow {
        holder: AgentId::from(holder),
        epoch,
        since,
        live: live == Some(1),
    })
}

fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
