//! The database boundary: every SQL statement rowhook runs lives under this
//! folder.
//!
//! [`Database`] is an enum over the supported backends. It is crossed in
//! one of two ways, and the choice follows the SQL:
//! * a statement whose text differs by backend lives in the backend's file
//!   (`mysql.rs`, `sqlite.rs`), and the method here matches on the variant
//!   to call it;
//! * a statement both backends accept as written is run here, or in the
//!   file of its subject, through `with_pool!`.
//!
//! Backends sit behind one enum: each method dispatches to the backend's
//! file, so PostgreSQL would be one more variant and one more file.
//!
//! Files by subject: [`model`] (what this layer hands up), [`error`],
//! `sql.rs` (quoting, a window's `WHERE`, stamp text), `progress.rs` (the
//! progress record and the `DateTimeStart` compare-and-set), `rows.rs` (the
//! snapshot's rows, decoded once for both backends), `operator.rs` (health,
//! the delivery log, operator commands), `lease.rs` (which agent delivers
//! each subscription, and the fence its writes carry), `secrets.rs`, `quiet.rs` (empty
//! windows closed together), `demo.rs` (the demo's writer), [`encode`] (a
//! row's columns as JSON) and `migrate.rs`.
//!
//! The layers above see only backend-neutral values from [`crate::domain`]
//! and [`model`]. Identifiers that come from data (the `WatchTable` name)
//! are first checked by [`crate::domain::watch_table::TableName`], then
//! looked up in the schema, and only the schema's own spelling is ever
//! quoted into a statement.

/// Runs `$body` with `$pool` bound to the MySQL or SQLite pool.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Database::MySql { pool: $pool, .. } => $body,
            Database::Sqlite($pool) => $body,
        }
    };
}

/// Binds the three values of `lease::FENCED` (the subscription, the
/// holder, the epoch) to `$q` when there is a fence.
macro_rules! bind_fence {
    ($q:expr, $id:expr, $fence:expr) => {
        match $fence {
            Some(fence) => $q.bind($id.0).bind(fence.holder.as_str()).bind(fence.epoch),
            None => $q,
        }
    };
}

mod demo;
pub mod encode;
pub mod error;
mod lease;
mod lookups;
mod migrate;
pub mod model;
mod mysql;
mod operator;
mod progress;
mod quiet;
mod rows;
mod secrets;
mod sql;
mod sqlite;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Connection;

pub use encode::ColumnKind;
pub use error::DbError;
pub use model::{Body, Column, OpenWrites, Page, PageRead, Snapshot, WatchedTable};
pub use operator::NewSubscription;
pub use quiet::EmptyWindow;

use crate::domain::progress::{Clock, Cursor, Recheck, StartText, Window};
use crate::domain::subscription::SubscriptionId;
use crate::domain::watch_table::WatchTarget;
use sql::{format_time, parse_server_time};

/// A connection pool to one of the supported backends.
#[derive(Debug, Clone)]
pub enum Database {
    /// Sessions run in UTC so change stamps (`TIMESTAMP`) compare as
    /// instants; `zone` is the time zone Open Dental's own datetimes
    /// (`DateTimeStart`, `DateTimeStop`) and the JSON are in.
    MySql { pool: MySqlPool, zone: Arc<str> },
    /// SQLite has no time zones: stamps and `DateTimeStart` are both local
    /// text, and instants are local times.
    Sqlite(SqlitePool),
}

/// How long a MariaDB connection may sit idle in the pool before it is
/// pinged on being handed out again. sqlx by default pings every connection
/// it hands out, and again every one that comes back: in steady delivery
/// that was two round trips per statement (830 pings/s with 100
/// subscriptions). A connection used within this time passed the ping on
/// its return; one idle longer may have been dropped by the server or the
/// network, and is asked first.
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

impl Database {
    /// Connects to `url` (`mysql://`, `mariadb://`, `sqlite://`). Open
    /// Dental's times are taken to be in the server's default time zone.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        Self::connect_in_zone(url, max_connections, None).await
    }

    /// Like [`Database::connect`], with Open Dental's times in `time_zone`
    /// (a name such as `America/New_York`, an offset, or `None` for the
    /// server's `@@global.time_zone`). A SQLite file is created when missing.
    pub async fn connect_in_zone(
        url: &str,
        max_connections: u32,
        time_zone: Option<&str>,
    ) -> Result<Self, DbError> {
        let timeout = Duration::from_secs(10);
        let mysql_url = match url.strip_prefix("mariadb://") {
            Some(rest) => Some(format!("mysql://{rest}")),
            None => url.starts_with("mysql://").then(|| url.to_owned()),
        };
        if let Some(mysql_url) = mysql_url {
            // UTC sessions (sqlx's default, said aloud): stamps compare as
            // instants, never as ambiguous local times.
            let options =
                MySqlConnectOptions::from_str(&mysql_url)?.timezone(Some("+00:00".to_owned()));
            let pool = MySqlPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(timeout)
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_AFTER_IDLE {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options)
                .await?;
            let zone = mysql::zone(&pool, time_zone).await?;
            return Ok(Self::MySql {
                pool,
                zone: zone.into(),
            });
        }
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(timeout)
                .connect_with(options)
                .await?;
            return Ok(Self::Sqlite(pool));
        }
        let scheme = url.split("://").next().unwrap_or_default();
        Err(DbError::UnsupportedUrl(format!("{scheme}://…")))
    }

    /// Closes the pool's idle connections, so that the next statements
    /// connect afresh; returns how many. A server restart or a network cut
    /// kills every connection at once, and without this each would be
    /// found dead by one more failed statement.
    pub fn drop_idle(&self) -> usize {
        let Self::MySql { pool, .. } = self else {
            return 0;
        };
        let mut dropped = 0;
        for _ in 0..pool.num_idle() {
            let Some(idle) = pool.try_acquire() else {
                break;
            };
            // Detached and dropped: the socket closes, no statement is sent.
            drop(idle.detach());
            dropped += 1;
        }
        dropped
    }

    /// Creates `apisubscription` (Open Dental's DDL) when missing and
    /// rowhook's own tables. Never alters an existing Open Dental table.
    pub async fn migrate(&self) -> Result<Vec<String>, DbError> {
        match self {
            Self::MySql { pool, .. } => migrate::mysql(pool).await,
            Self::Sqlite(pool) => migrate::sqlite(pool).await,
        }
    }

    /// Fails with [`DbError::NotMigrated`] unless every migration this
    /// binary knows has been applied.
    pub async fn check_migrated(&self) -> Result<(), DbError> {
        let pending = match self {
            Self::MySql { pool, .. } => migrate::pending_mysql(pool).await?,
            Self::Sqlite(pool) => migrate::pending_sqlite(pool).await?,
        };
        match pending.is_empty() {
            true => Ok(()),
            false => Err(DbError::NotMigrated(pending.join(", "))),
        }
    }

    /// The server's clock now.
    pub async fn clock(&self) -> Result<Clock, DbError> {
        match self {
            Self::MySql { pool, zone } => mysql::clock(pool, zone).await,
            Self::Sqlite(pool) => sqlite::clock(pool).await,
        }
    }

    /// The server's local time now (Open Dental's `NOW()`).
    pub async fn now(&self) -> Result<NaiveDateTime, DbError> {
        Ok(self.clock().await?.local)
    }

    /// The earliest stamp an open transaction or a running write statement
    /// may still make visible, so a window's `stop` can stay before it. See
    /// [`OpenWrites`].
    pub async fn open_writes(&self) -> Result<OpenWrites, DbError> {
        match self {
            Self::MySql { pool, .. } => mysql::open_writes(pool).await,
            // SQLite allows one writer at a time and rowhook cannot see other
            // processes' transactions; the safety lag is the only guard.
            Self::Sqlite(_) => Ok(OpenWrites::None),
        }
    }

    /// Every `apisubscription` row with rowhook's progress for it, and the
    /// server's clock when they were read (one statement on MySQL).
    pub async fn snapshot(&self) -> Result<Snapshot, DbError> {
        match self {
            Self::MySql { pool, zone } => mysql::snapshot(pool, zone).await,
            Self::Sqlite(pool) => sqlite::snapshot(pool).await,
        }
    }

    /// A `DateTimeStart` text as an instant. In a repeated DST hour the
    /// earlier reading is taken: rows may be sent twice, never skipped.
    pub async fn local_to_instant(&self, local: &str) -> Result<NaiveDateTime, DbError> {
        // A zero or pre-1880 DateTimeStart means "from the beginning" in Open
        // Dental; no zone applies, and MySQL cannot convert a zero date.
        let min = crate::domain::subscription::od_min_datetime();
        if crate::domain::subscription::parse_od_datetime("DateTimeStart", local).ok() == Some(min)
        {
            return Ok(min);
        }
        match self {
            Self::MySql { pool, zone } => mysql::local_to_instant(pool, zone, local).await,
            Self::Sqlite(_) => parse_server_time(local),
        }
    }

    /// An instant as the `DateTimeStart` text Open Dental would write.
    pub async fn instant_to_local(&self, instant: NaiveDateTime) -> Result<StartText, DbError> {
        let text = match self {
            Self::MySql { pool, zone } => mysql::instant_to_local(pool, zone, instant).await?,
            Self::Sqlite(_) => format_time(instant),
        };
        Ok(StartText::new(text))
    }

    /// Checks a [`WatchTarget`] against the schema.
    pub async fn resolve(&self, target: &WatchTarget) -> Result<WatchedTable, DbError> {
        match self {
            Self::MySql { pool, .. } => mysql::resolve(pool, target).await,
            Self::Sqlite(pool) => sqlite::resolve(pool, target).await,
        }
    }

    /// Up to `limit` rows of `window` (instants), strictly after `after`, in
    /// (stamp, key) order.
    pub async fn fetch_page(
        &self,
        table: &WatchedTable,
        body: Body<'_>,
        window: Window,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Page, DbError> {
        match self {
            Self::MySql { pool, zone } => {
                mysql::fetch_page(pool, zone, table, body, window, after, limit).await
            }
            Self::Sqlite(pool) => sqlite::fetch_page(pool, table, body, window, after, limit).await,
        }
    }

    /// How many rows changed in `window` (used to say how much the look-back
    /// cap skipped).
    pub async fn count_rows(&self, table: &WatchedTable, window: Window) -> Result<u64, DbError> {
        match self {
            Self::MySql { pool, .. } => mysql::count_rows(pool, table, window).await,
            Self::Sqlite(pool) => sqlite::count_rows(pool, table, window).await,
        }
    }

    /// `DateTimeStart` of subscription `id` as stored now, and whether
    /// `DateTimeStop` has passed; `None` when the row was deleted. Read
    /// between batches so an operator's edit stops a window at once.
    pub async fn recheck(&self, id: SubscriptionId) -> Result<Option<Recheck>, DbError> {
        match self {
            Self::MySql { pool, zone } => mysql::recheck(pool, zone, id).await,
            Self::Sqlite(pool) => sqlite::recheck(pool, id).await,
        }
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match self {
            Self::MySql { pool, .. } => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}
