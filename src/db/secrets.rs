//! SQL for `rowhook_secret`: each subscription's signing secrets.
//!
//! Times here are UTC from this machine's clock, the same clock that dates
//! `webhook-timestamp`, so a rotation's grace period and the signatures
//! agree.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use sqlx::Row;

use super::sql::{format_time, parse_server_time};
use super::{Database, DbError};
use crate::domain::secret::{SigningSecret, StoredSecrets};
use crate::domain::subscription::SubscriptionId;

fn parse(id: SubscriptionId, text: &str) -> Result<SigningSecret, DbError> {
    SigningSecret::parse(text).map_err(|e| DbError::BadSecret(id.0, e))
}

/// A row of `rowhook_secret` (secret, previous secret, until when).
fn stored(
    id: SubscriptionId,
    current: String,
    previous: Option<String>,
    until: Option<String>,
) -> Result<StoredSecrets, DbError> {
    let previous = match (previous, until) {
        (Some(secret), Some(until)) => Some((parse(id, &secret)?, parse_server_time(&until)?)),
        _ => None,
    };
    Ok(StoredSecrets {
        current: parse(id, &current)?,
        previous,
    })
}

impl Database {
    /// The subscription's secrets, creating a secret the first time.
    pub async fn secrets(&self, id: SubscriptionId) -> Result<StoredSecrets, DbError> {
        if let Some(stored) = self.read_secrets(id).await? {
            return Ok(stored);
        }
        let fresh = SigningSecret::generate().map_err(|e| DbError::BadSecret(id.0, e))?;
        let now = format_time(chrono::Utc::now().naive_utc());
        // Two agents may create one at once: the key keeps the first, and a
        // plain keyed insert takes no gap locks (an INSERT … SELECT … WHERE
        // NOT EXISTS deadlocked on InnoDB when many subscriptions started
        // together).
        let sql = match self {
            Database::MySql { .. } => {
                "INSERT IGNORE INTO rowhook_secret (subscription_num, secret, created_at) VALUES (?, ?, ?)"
            }
            Database::Sqlite(_) => {
                "INSERT OR IGNORE INTO rowhook_secret (subscription_num, secret, created_at) VALUES (?, ?, ?)"
            }
        };
        with_pool!(self, pool => {
            sqlx::query(sql)
                .bind(id.0)
                .bind(fresh.expose())
                .bind(&now)
                .execute(pool)
                .await?;
        });
        match self.read_secrets(id).await? {
            Some(stored) => Ok(stored),
            None => Err(DbError::Sql(sqlx::Error::RowNotFound)),
        }
    }

    /// The stored secrets of each of `ids` that has some, in one statement:
    /// a tick reads them once for all the windows it starts, instead of each
    /// window reading its own.
    pub async fn secrets_of(
        &self,
        ids: &[SubscriptionId],
    ) -> Result<HashMap<SubscriptionId, StoredSecrets>, DbError> {
        let mut found = HashMap::with_capacity(ids.len());
        // Bound, so that no statement grows past the servers' limits on
        // placeholders (SQLite's is 32,766).
        for chunk in ids.chunks(1000) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT subscription_num, secret, previous_secret, CAST(previous_until AS CHAR) \
                 FROM rowhook_secret WHERE subscription_num IN ({marks})"
            );
            let rows: Vec<(i64, String, Option<String>, Option<String>)> = with_pool!(self, pool => {
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id.0);
                }
                let mut rows = Vec::new();
                for row in query.fetch_all(pool).await? {
                    rows.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?));
                }
                rows
            });
            for (num, current, previous, until) in rows {
                let id = SubscriptionId(num);
                found.insert(id, stored(id, current, previous, until)?);
            }
        }
        Ok(found)
    }

    async fn read_secrets(&self, id: SubscriptionId) -> Result<Option<StoredSecrets>, DbError> {
        let sql = "SELECT secret, previous_secret, CAST(previous_until AS CHAR) \
                   FROM rowhook_secret WHERE subscription_num = ?";
        let row: Option<(String, Option<String>, Option<String>)> = with_pool!(self, pool => {
            match sqlx::query(sql).bind(id.0).fetch_optional(pool).await? {
                Some(row) => Some((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)),
                None => None,
            }
        });
        let Some((current, previous, until)) = row else {
            return Ok(None);
        };
        stored(id, current, previous, until).map(Some)
    }

    /// Replaces the secret with one an integrator brings; the old one stops
    /// signing at once.
    pub async fn set_secret(
        &self,
        id: SubscriptionId,
        secret: &SigningSecret,
    ) -> Result<(), DbError> {
        self.secrets(id).await?;
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE rowhook_secret SET secret = ?, previous_secret = NULL, previous_until = NULL \
                 WHERE subscription_num = ?",
            )
            .bind(secret.expose())
            .bind(id.0)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Makes `secret` the current one; the old one keeps signing until
    /// `until` (UTC).
    pub async fn rotate_secret(
        &self,
        id: SubscriptionId,
        secret: &SigningSecret,
        until: NaiveDateTime,
    ) -> Result<(), DbError> {
        self.secrets(id).await?;
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE rowhook_secret SET previous_secret = secret, previous_until = ?, secret = ? \
                 WHERE subscription_num = ?",
            )
            .bind(format_time(until))
            .bind(secret.expose())
            .bind(id.0)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
