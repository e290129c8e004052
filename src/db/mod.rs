//! The database boundary: every SQL statement rowhook runs lives under this
//! folder.
//!
//! [`Database`] is an enum over the supported backends; each method
//! dispatches to the backend's file (`mysql.rs`, `sqlite.rs`). The delivery
//! logic above sees only backend-neutral values: [`SubscriptionRow`]s,
//! [`WatchedTable`]s, [`Page`]s and `NaiveDateTime`s in the server's local
//! time. Adding PostgreSQL means adding a variant and a file, not touching
//! the processor.
//!
//! Identifiers that come from data (the `WatchTable` name) are first checked
//! by [`crate::watch_table::TableName`], then looked up in the schema, and
//! only the schema's own spelling is ever quoted into a statement.

/// Runs `$body` with `$pool` bound to the MySQL or SQLite pool.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Database::MySql { pool: $pool, .. } => $body,
            Database::Sqlite($pool) => $body,
        }
    };
}

pub mod encode;
mod migrate;
mod mysql;
mod operator;
mod quiet;
mod secrets;
mod sqlite;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, Timelike};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Connection;

pub use encode::ColumnKind;
pub use operator::{DeliveryRecord, NewSubscription};
pub use secrets::StoredSecrets;

use crate::health::Health;
use crate::subscription::{SubscriptionId, SubscriptionRow};
use crate::watch_table::{RowFilter, WatchTarget};
use crate::window::{Cursor, Window};

/// Errors of the database layer. Variants the caller acts on are separate
/// from the plain driver error.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0:?}: use mysql://, mariadb:// or sqlite://")]
    UnsupportedUrl(String),
    #[error("table {0:?} does not exist in this database")]
    TableNotFound(String),
    #[error("table {table} has no column {column} of type timestamp or datetime")]
    MissingChangeColumn { table: String, column: String },
    #[error("table {0} has no change column (DateTStamp or SecDateTEdit, timestamp or datetime)")]
    NoChangeColumn(String),
    #[error("table {0} has no single-column integer primary key, which ordered paging needs")]
    NoIntegerKey(String),
    #[error("the server's time {0:?} is not a date and time")]
    BadServerTime(String),
    #[error("time zone {0:?} is unknown to the server (load its time zone tables: mariadb-tzinfo-to-sql /usr/share/zoneinfo | mariadb mysql)")]
    UnknownZone(String),
    #[error("rowhook's tables are not up to date (pending: {0}); run `rowhook migrate`")]
    NotMigrated(String),
    #[error("the signing secret stored for subscription {0} is unusable: {1}; set one with `rowhook secret set` or `rotate`")]
    BadSecret(i64, crate::signing::SecretError),
    #[error("{0}")]
    Sql(#[from] sqlx::Error),
}

impl DbError {
    /// Whether the server refused a statement for want of a privilege
    /// (MySQL's 1142 table, 1143 column, 1044 database, 1045 login, 1227
    /// global privilege).
    pub fn is_missing_grant(&self) -> bool {
        let Self::Sql(sqlx::Error::Database(e)) = self else {
            return false;
        };
        let mysql = e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>();
        mysql.is_some_and(|e| [1142, 1143, 1044, 1045, 1227].contains(&e.number()))
    }

    /// Whether the connection to the server was lost (closed, reset,
    /// killed: MariaDB's 1927; the server shutting down: 1053), or none
    /// could be had in time, rather than a statement refused.
    pub fn is_connection_lost(&self) -> bool {
        use sqlx::Error as E;
        match self {
            Self::Sql(E::Io(_) | E::PoolTimedOut | E::Protocol(_) | E::WorkerCrashed) => true,
            Self::Sql(E::Database(e)) => e
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|e| [1053, 1927].contains(&e.number())),
            _ => false,
        }
    }
}

/// What the server says about writes (open transactions, running
/// statements) that may still make rows visible with an earlier change
/// stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenWrites {
    /// No transaction that has written, and no write statement, is open.
    None,
    /// Rows stamped at or after this server time (whole seconds, UTC) may
    /// still appear; earlier ones cannot.
    Since(NaiveDateTime),
    /// The server's list of transactions was not refreshed for this probe
    /// (MariaDB caches `INNODB_TRX`, and another client kept reading it):
    /// transactions begun since it was made are missing from it.
    Stale,
    /// The server will not say (no `PROCESS` privilege), or the backend
    /// cannot (SQLite connections of other processes).
    Unknown,
}

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

/// The server's clock at one moment, in both time bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Open Dental's local time: compared with `DateTimeStart`/`DateTimeStop`.
    pub local: NaiveDateTime,
    /// The time base change stamps compare in (UTC on MySQL).
    pub instant: NaiveDateTime,
}

/// rowhook's own record of a subscription's position (`rowhook_progress`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The `DateTimeStart` text this record belongs to. When the row holds
    /// another value, an operator moved it and the record is stale.
    pub date_time_start: String,
    /// That `DateTimeStart` as an instant, exact even in a repeated DST hour.
    pub watermark: NaiveDateTime,
    /// Set while a window is partly delivered: its `stop`, and the last
    /// acknowledged (stamp, key).
    pub window: Option<(NaiveDateTime, Cursor)>,
}

/// Everything a tick reads: the clock, every subscription row, and
/// rowhook's progress for each.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub clock: Clock,
    /// How far into its second the server's clock was when this was read:
    /// ticks are timed to start just after the server's second turns.
    pub phase: Duration,
    /// The server's UTC clock as precisely as it can be read: to the
    /// microsecond on MariaDB; on SQLite, whose clock the snapshot reads
    /// to the second, `clock.instant` (so windows end a second earlier).
    pub now_exact: NaiveDateTime,
    pub subscriptions: Vec<SubscriptionRow>,
    pub progress: HashMap<SubscriptionId, Progress>,
    pub health: HashMap<SubscriptionId, Health>,
}

/// A column of a watched table, as the schema declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
    /// A MySQL `TIMESTAMP`: read in UTC, rendered in the local zone.
    pub zoned: bool,
    /// MySQL sends the value in a shape it is decoded from (an integer
    /// other than `BIT`, a character string, or a `NOT NULL` `DATETIME` or
    /// `DATE` in the binary protocol), so it is selected as it is rather
    /// than through a cast the server would spend time on.
    pub plain: bool,
}

/// A [`WatchTarget`] checked against the schema: the table exists, and its
/// change column and integer primary key are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedTable {
    /// The `WatchTable` name, for the `Event-Type` header and logs.
    pub watch_name: String,
    /// The table's name as the schema spells it.
    pub table: String,
    pub change_column: String,
    pub key_column: String,
    pub filter: Option<RowFilter>,
    /// All columns, in table order; each becomes one JSON key.
    pub columns: Vec<Column>,
    /// Whether an index starts with the change column (`rowhook check` warns
    /// when not: every poll would scan the table).
    pub change_column_indexed: bool,
    /// How a page is read in (stamp, key) order.
    pub page_read: PageRead,
}

/// How a page is read in (stamp, key) order; see `db/mysql/page.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRead {
    /// An index is in (stamp, key) order (InnoDB appends the key to an index
    /// on the stamp), or the backend plans the order itself (SQLite): one
    /// `ORDER BY stamp, key`.
    OneStatement,
    /// No index is (MyISAM): by stamp, then the last stamp's rows by key.
    StampThenKey,
}

/// One page of rows, already rendered as JSON objects (each row's bytes)
/// in (stamp, key) order.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub rows: Vec<Vec<u8>>,
    /// Each row's (stamp, key), in the same order: the cursor, the logs and
    /// the batch id are made from these.
    pub keys: Vec<Cursor>,
    /// Whether rows may follow in the window: the window ends only with a
    /// page that says none do. Not the same as "as many rows as asked
    /// for": a page read in two statements can come out short while more
    /// rows follow (see `db/mysql/page.rs`).
    pub more: bool,
}

impl Page {
    fn push(&mut self, row: Vec<u8>, at: Cursor) {
        self.keys.push(at);
        self.rows.push(row);
    }

    pub fn last(&self) -> Option<Cursor> {
        self.keys.last().copied()
    }

    /// How many rows; at most a page's limit, which is a `u32`.
    fn len(&self) -> u32 {
        u32::try_from(self.keys.len()).unwrap_or(u32::MAX)
    }

    /// A page read in one statement: rows may follow if it is full.
    fn ended_at(mut self, limit: u32) -> Self {
        self.more = self.len() >= limit;
        self
    }
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
        let min = crate::subscription::od_min_datetime();
        if crate::subscription::parse_od_datetime("DateTimeStart", local).ok() == Some(min) {
            return Ok(min);
        }
        match self {
            Self::MySql { pool, zone } => mysql::local_to_instant(pool, zone, local).await,
            Self::Sqlite(_) => parse_server_time(local),
        }
    }

    /// An instant as the `DateTimeStart` text Open Dental would write.
    pub async fn instant_to_local(&self, instant: NaiveDateTime) -> Result<String, DbError> {
        match self {
            Self::MySql { pool, zone } => mysql::instant_to_local(pool, zone, instant).await,
            Self::Sqlite(_) => Ok(format_time(instant)),
        }
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
        window: Window,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Page, DbError> {
        match self {
            Self::MySql { pool, zone } => {
                mysql::fetch_page(pool, zone, table, window, after, limit).await
            }
            Self::Sqlite(pool) => sqlite::fetch_page(pool, table, window, after, limit).await,
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
    pub async fn recheck(&self, id: SubscriptionId) -> Result<Option<(String, bool)>, DbError> {
        match self {
            Self::MySql { pool, zone } => mysql::recheck(pool, zone, id).await,
            Self::Sqlite(pool) => sqlite::recheck(pool, id).await,
        }
    }

    /// Ends a delivered window: `DateTimeStart` from `expected` (the text
    /// that was read) to `done.date_time_start`, then the progress record
    /// to `done`. Returns false — and changes nothing — when the row no
    /// longer holds `expected`. On MariaDB the common case is one statement.
    pub async fn close_window(
        &self,
        id: SubscriptionId,
        expected: &str,
        done: &Progress,
    ) -> Result<bool, DbError> {
        let stop = &done.date_time_start;
        // In a repeated DST hour the new local text can equal the old one;
        // then only the progress record moves.
        if stop != expected {
            if let Self::MySql { pool, .. } = self {
                if mysql::close_window(pool, id, expected, done).await? {
                    return Ok(true);
                }
            }
            if !self.advance_watermark(id, expected, stop).await? {
                return Ok(false);
            }
        }
        self.save_progress(id, done).await?;
        Ok(true)
    }

    /// Moves `DateTimeStart` from `expected` (the text that was read) to
    /// `stop`. Returns false — and changes nothing — when the row no longer
    /// holds `expected`: an operator rewound, moved or deleted it meanwhile.
    async fn advance_watermark(
        &self,
        id: SubscriptionId,
        expected: &str,
        stop: &str,
    ) -> Result<bool, DbError> {
        let sql = "UPDATE apisubscription SET DateTimeStart = ? \
                   WHERE ApiSubscriptionNum = ? AND DateTimeStart = ?";
        let done = match self {
            Self::MySql { pool, .. } => {
                let q = sqlx::query(sql).bind(stop).bind(id.0).bind(expected);
                q.execute(pool).await?.rows_affected()
            }
            Self::Sqlite(pool) => {
                let q = sqlx::query(sql).bind(stop).bind(id.0).bind(expected);
                q.execute(pool).await?.rows_affected()
            }
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

    /// Records rowhook's position for `id` (`rowhook_progress`).
    pub async fn save_progress(&self, id: SubscriptionId, p: &Progress) -> Result<(), DbError> {
        let (stop, stamp, key) = match p.window {
            Some((stop, c)) => (
                Some(format_time(stop)),
                Some(format_stamp(c.stamp)),
                Some(c.key),
            ),
            None => (None, None, None),
        };
        let sql = match self {
            Self::MySql { .. } => {
                "INSERT INTO rowhook_progress (subscription_num, date_time_start, watermark, \
                 window_stop, cursor_stamp, cursor_key) VALUES (?, ?, ?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE date_time_start = VALUES(date_time_start), \
                 watermark = VALUES(watermark), window_stop = VALUES(window_stop), \
                 cursor_stamp = VALUES(cursor_stamp), cursor_key = VALUES(cursor_key)"
            }
            Self::Sqlite(_) => {
                "INSERT INTO rowhook_progress (subscription_num, date_time_start, watermark, \
                 window_stop, cursor_stamp, cursor_key) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (subscription_num) DO UPDATE SET \
                 date_time_start = excluded.date_time_start, watermark = excluded.watermark, \
                 window_stop = excluded.window_stop, cursor_stamp = excluded.cursor_stamp, \
                 cursor_key = excluded.cursor_key"
            }
        };
        let watermark = format_time(p.watermark);
        match self {
            Self::MySql { pool, .. } => {
                sqlx::query(sql)
                    .bind(id.0)
                    .bind(&p.date_time_start)
                    .bind(watermark)
                    .bind(stop)
                    .bind(stamp)
                    .bind(key)
                    .execute(pool)
                    .await?;
            }
            Self::Sqlite(pool) => {
                sqlx::query(sql)
                    .bind(id.0)
                    .bind(&p.date_time_start)
                    .bind(watermark)
                    .bind(stop)
                    .bind(stamp)
                    .bind(key)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match self {
            Self::MySql { pool, .. } => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}

/// Builds a [`Progress`] from the columns of `rowhook_progress` as text.
fn progress_from(
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
        (Some(stop), Some(stamp), Some(key)) => Some((
            parse_server_time(&stop)?,
            Cursor {
                stamp: parse_stamp(&stamp)?,
                key,
            },
        )),
        _ => None,
    };
    Ok(Some(Progress {
        date_time_start,
        watermark: parse_server_time(&watermark)?,
        window,
    }))
}

/// Parses the server's clock as printed by the server.
fn parse_server_time(text: &str) -> Result<NaiveDateTime, DbError> {
    let whole = text.split('.').next().unwrap_or(text);
    crate::datetime::parse(whole).map_err(|_| DbError::BadServerTime(text.to_owned()))
}

fn format_time(t: NaiveDateTime) -> String {
    crate::datetime::format(t)
}

/// Parses a row's change stamp as the server prints it, keeping any
/// fraction of a second (to the microsecond, MySQL's finest): a cursor that
/// dropped it would start the next page before rows already sent, and a page
/// that ended inside such a second would be read again forever.
fn parse_stamp(text: &str) -> Result<NaiveDateTime, DbError> {
    let bad = || DbError::BadServerTime(text.to_owned());
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let at = crate::datetime::parse(whole).map_err(|_| bad())?;
    if fraction.is_empty() {
        return Ok(at);
    }
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(6)
        .collect();
    let micros: u32 = digits.parse().map_err(|_| bad())?;
    at.with_nanosecond(micros * 1000).ok_or_else(bad)
}

/// A change stamp as the server reads it: [`format_time`], then the
/// microseconds when there are any.
fn format_stamp(t: NaiveDateTime) -> String {
    let whole = format_time(t);
    match t.nanosecond() / 1000 {
        0 => whole,
        micros => format!("{whole}.{micros:06}"),
    }
}

/// Picks the change column: the target's own, else `DateTStamp`, else
/// `SecDateTEdit`; it must be a timestamp or datetime column.
fn choose_change_column(
    table: &str,
    target: &WatchTarget,
    columns: &[Column],
) -> Result<String, DbError> {
    let is_stamp = |c: &&Column| c.kind == ColumnKind::DateTime;
    let find = |name: &str| {
        columns
            .iter()
            .filter(is_stamp)
            .find(|c| c.name.eq_ignore_ascii_case(name))
    };
    match target.change_column {
        Some(wanted) => {
            find(wanted)
                .map(|c| c.name.clone())
                .ok_or_else(|| DbError::MissingChangeColumn {
                    table: table.to_owned(),
                    column: wanted.to_owned(),
                })
        }
        None => find("DateTStamp")
            .or_else(|| find("SecDateTEdit"))
            .map(|c| c.name.clone())
            .ok_or_else(|| DbError::NoChangeColumn(table.to_owned())),
    }
}

/// Quotes an identifier the schema gave us, for MySQL (backticks) or SQLite
/// (double quotes), doubling any quote inside it.
fn quote(ident: &str, mark: char) -> String {
    let doubled = ident.replace(mark, &format!("{mark}{mark}"));
    format!("{mark}{doubled}{mark}")
}

/// Builds the backend-neutral `FROM ... WHERE ...` of a window query, with
/// `?` placeholders bound by the caller in [`page_binds`] order.
fn window_from(table: &WatchedTable, after: Option<Cursor>, mark: char) -> String {
    let stamp = quote(&table.change_column, mark);
    let key = quote(&table.key_column, mark);
    let mut sql = format!(
        " FROM {} WHERE {stamp} >= ? AND {stamp} < ?",
        quote(&table.table, mark)
    );
    if let Some(filter) = filter_sql(table.filter) {
        sql.push_str(" AND ");
        sql.push_str(filter);
    }
    if after.is_some() {
        // stamp >= cursor.stamp is implied by the first bind (see page_binds),
        // so "after (stamp, key)" reduces to this and keeps the index range.
        sql.push_str(&format!(" AND ({stamp} > ? OR {key} > ?)"));
    }
    sql
}

/// The ordering that makes the keyset cursor exact, then the page size.
fn order_and_limit(table: &WatchedTable, mark: char) -> String {
    let stamp = quote(&table.change_column, mark);
    let key = quote(&table.key_column, mark);
    format!(" ORDER BY {stamp}, {key} LIMIT ?")
}

/// The values for [`window_from`]'s placeholders, as text.
fn page_binds(window: Window, after: Option<Cursor>) -> (String, String, Option<(String, i64)>) {
    let from = match after {
        Some(c) if c.stamp > window.start => c.stamp,
        _ => window.start,
    };
    (
        format_stamp(from),
        format_time(window.stop),
        after.map(|c| (format_stamp(c.stamp), c.key)),
    )
}

fn filter_sql(filter: Option<RowFilter>) -> Option<&'static str> {
    filter.map(|f| match f {
        RowFilter::DeletedAppointments => "HistApptAction = 4",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_keeps_its_fraction_of_a_second_both_ways() {
        for (text, printed) in [
            ("2024-03-05 06:07:08", "2024-03-05 06:07:08"),
            ("2024-03-05 06:07:08.100", "2024-03-05 06:07:08.100000"),
            ("2024-03-05 06:07:08.000001", "2024-03-05 06:07:08.000001"),
            ("2024-03-05 06:07:08.000", "2024-03-05 06:07:08"),
            ("2024-03-05 06:07:08.1234567", "2024-03-05 06:07:08.123456"),
        ] {
            let at = parse_stamp(text).unwrap();
            assert_eq!(format_stamp(at), printed, "{text}");
            assert_eq!(parse_stamp(printed).unwrap(), at, "{text}");
        }
        assert!(parse_stamp("2024-03-05 06:07:08.x").is_err());
        assert!(parse_stamp("yesterday").is_err());
    }
}
