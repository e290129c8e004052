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

pub mod encode;
mod migrate;
mod mysql;
mod sqlite;

use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

pub use encode::ColumnKind;

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
    #[error("{0}")]
    Sql(#[from] sqlx::Error),
}

/// A connection pool to one of the supported backends.
#[derive(Debug, Clone)]
pub enum Database {
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

/// A column of a watched table, as the schema declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
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
}

/// One page of rows, already rendered as JSON objects in (stamp, key) order.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub rows: Vec<Value>,
    /// The (stamp, key) of the first and last row, for logs and the cursor.
    pub first: Option<Cursor>,
    pub last: Option<Cursor>,
}

impl Page {
    fn push(&mut self, row: Map<String, Value>, at: Cursor) {
        self.first.get_or_insert(at);
        self.last = Some(at);
        self.rows.push(Value::Object(row));
    }
}

impl Database {
    /// Connects to `url` (`mysql://`, `mariadb://`, `sqlite://`). A SQLite
    /// file is created when missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        let timeout = Duration::from_secs(10);
        let mysql_url = match url.strip_prefix("mariadb://") {
            Some(rest) => Some(format!("mysql://{rest}")),
            None => url.starts_with("mysql://").then(|| url.to_owned()),
        };
        if let Some(mysql_url) = mysql_url {
            let options = MySqlConnectOptions::from_str(&mysql_url)?;
            let pool = MySqlPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(timeout)
                .connect_with(options)
                .await?;
            return Ok(Self::MySql(pool));
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

    /// Creates `apisubscription` (Open Dental's DDL) when missing and
    /// rowhook's own tables. Never alters an existing Open Dental table.
    pub async fn migrate(&self) -> Result<Vec<String>, DbError> {
        match self {
            Self::MySql(pool) => migrate::mysql(pool).await,
            Self::Sqlite(pool) => migrate::sqlite(pool).await,
        }
    }

    /// The server's current local time, truncated to the second.
    pub async fn now(&self) -> Result<NaiveDateTime, DbError> {
        match self {
            Self::MySql(pool) => mysql::now(pool).await,
            Self::Sqlite(pool) => sqlite::now(pool).await,
        }
    }

    /// Every `apisubscription` row, and the server's time at the moment they
    /// were read (one statement on MySQL).
    pub async fn load_subscriptions(
        &self,
    ) -> Result<(NaiveDateTime, Vec<SubscriptionRow>), DbError> {
        match self {
            Self::MySql(pool) => mysql::load_subscriptions(pool).await,
            Self::Sqlite(pool) => sqlite::load_subscriptions(pool).await,
        }
    }

    /// Checks a [`WatchTarget`] against the schema.
    pub async fn resolve(&self, target: &WatchTarget) -> Result<WatchedTable, DbError> {
        match self {
            Self::MySql(pool) => mysql::resolve(pool, target).await,
            Self::Sqlite(pool) => sqlite::resolve(pool, target).await,
        }
    }

    /// Up to `limit` rows of `window`, strictly after `after`, in (stamp,
    /// key) order.
    pub async fn fetch_page(
        &self,
        table: &WatchedTable,
        window: Window,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Page, DbError> {
        match self {
            Self::MySql(pool) => mysql::fetch_page(pool, table, window, after, limit).await,
            Self::Sqlite(pool) => sqlite::fetch_page(pool, table, window, after, limit).await,
        }
    }

    /// How many rows changed in `window` (used to say how much the look-back
    /// cap skipped).
    pub async fn count_rows(&self, table: &WatchedTable, window: Window) -> Result<u64, DbError> {
        match self {
            Self::MySql(pool) => mysql::count_rows(pool, table, window).await,
            Self::Sqlite(pool) => sqlite::count_rows(pool, table, window).await,
        }
    }

    /// Moves `DateTimeStart` from `expected` (the text that was read) to
    /// `stop`. Returns false — and changes nothing — when the row no longer
    /// holds `expected`: an operator rewound, moved or deleted it meanwhile.
    pub async fn advance_watermark(
        &self,
        id: SubscriptionId,
        expected: &str,
        stop: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let stop = stop.format(crate::DATETIME_FORMAT).to_string();
        let sql = "UPDATE apisubscription SET DateTimeStart = ? \
                   WHERE ApiSubscriptionNum = ? AND DateTimeStart = ?";
        let done = match self {
            Self::MySql(pool) => {
                let q = sqlx::query(sql).bind(&stop).bind(id.0).bind(expected);
                q.execute(pool).await?.rows_affected()
            }
            Self::Sqlite(pool) => {
                let q = sqlx::query(sql).bind(&stop).bind(id.0).bind(expected);
                q.execute(pool).await?.rows_affected()
            }
        };
        Ok(done == 1)
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match self {
            Self::MySql(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}

/// Parses the server's clock as printed by the server.
fn parse_server_time(text: &str) -> Result<NaiveDateTime, DbError> {
    let whole = text.split('.').next().unwrap_or(text);
    NaiveDateTime::parse_from_str(whole, crate::DATETIME_FORMAT)
        .map_err(|_| DbError::BadServerTime(text.to_owned()))
}

fn format_time(t: NaiveDateTime) -> String {
    t.format(crate::DATETIME_FORMAT).to_string()
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
        format_time(from),
        format_time(window.stop),
        after.map(|c| (format_time(c.stamp), c.key)),
    )
}

fn filter_sql(filter: Option<RowFilter>) -> Option<&'static str> {
    filter.map(|f| match f {
        RowFilter::DeletedAppointments => "HistApptAction = 4",
    })
}
