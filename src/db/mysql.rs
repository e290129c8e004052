//! MySQL / MariaDB: the backend Open Dental runs on.
//!
//! Sessions run in UTC (`time_zone='+00:00'`), so `TIMESTAMP` change stamps
//! are compared and paged as instants, in SQL, using the stamp's index.
//! MariaDB compares a `TIMESTAMP` with a local time by converting the local
//! time, and a time in a DST fall-back's repeated hour has two readings: it
//! was seen to pick different ones within one run and lose rows. Open
//! Dental's own datetimes (`DateTimeStart`, `DateTimeStop`, the due check,
//! `TIMESTAMP` columns in the JSON) are local to its zone (`--time-zone`,
//! default the server's `@@global.time_zone`), converted with `CONVERT_TZ`
//! at the edges; a `DateTimeStart` in a repeated hour converts to the
//! earlier reading (duplicates, never losses).
//!
//! The snapshot is one statement: a one-row table left-joined to
//! `apisubscription`, `rowhook_progress` and `rowhook_health` returns the
//! clock (UTC, local, and how far into its second), every subscription,
//! its progress and health, so a tick with nothing due costs one query.
//!
//! Every column reaches the driver in one of a few wire shapes, so decoding
//! never depends on how the driver labels `tinyint(1)` or a zero date.
//! Integers (other than `BIT`), character strings and `NOT NULL`
//! `DATETIME`/`DATE` are selected plainly (casting them cost the server
//! measurably on a backfill); every other column is cast by its declared
//! type (nullable dates, `TIMESTAMP`s to local text, decimals, `TIME`,
//! `YEAR`, `ENUM`/`SET` to `CHAR`, `BIT` to `UNSIGNED`, binary as bytes).
//!
//! `open_writes` is the probe behind a safe `stop` (see `tick/stop.rs`):
//! InnoDB transactions that have written (`INNODB_TRX`) and non-`SELECT`
//! statements still running (`PROCESSLIST`), of connections using rowhook's
//! database (or none): on a shared server, other applications' long
//! transactions would otherwise hold every window back. It needs `PROCESS`.
//! MariaDB serves `INNODB_TRX` from a cache refreshed only after 100 ms
//! without readers, so a client polling it freezes it: the probe runs in a
//! transaction begun `WITH CONSISTENT SNAPSHOT`, and a list that does not
//! show that transaction predates the probe. It asks again after 110–330 ms
//! (spread, so two rowhooks do not keep it stale for each other) for up to
//! 3 s, then reports it stale.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDateTime;
use sqlx::mysql::MySqlPool;
use sqlx::Row;

mod page;

pub(super) use page::fetch_page;

use super::encode::{self, ColumnKind};
use super::error::DbError;
use super::lease::{lease_from, FENCED};
use super::model::{
    choose_change_column, opendental_plan, Column, OpenWrites, PageRead, Snapshot, WatchedTable,
};
use super::rows::snapshot_entry;
use super::sql::{format_time, parse_server_time, window_from, PageBinds};
use crate::domain::lease::Fence;
use crate::domain::progress::{Clock, Progress, Recheck, StartText, Window};
use crate::domain::subscription::SubscriptionId;
use crate::domain::watch_table::WatchTarget;

/// The zone Open Dental's datetimes are in: `configured`, or the server's
/// `@@global.time_zone`. Checked to be one the server can convert.
pub(super) async fn zone(pool: &MySqlPool, configured: Option<&str>) -> Result<String, DbError> {
    let zone = match configured {
        Some(z) => z.to_owned(),
        None => {
            sqlx::query_scalar("SELECT CAST(@@global.time_zone AS CHAR)")
                .fetch_one(pool)
                .await?
        }
    };
    let converted: Option<String> =
        sqlx::query_scalar("SELECT CAST(CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', ?) AS CHAR)")
            .bind(&zone)
            .fetch_one(pool)
            .await?;
    match converted {
        Some(_) => Ok(zone),
        None => Err(DbError::UnknownZone(zone)),
    }
}

/// `zone` as a SQL string literal. Zones come from the server or from
/// `--time-zone`, which admits only `[A-Za-z0-9/_+:-]`; quotes are doubled
/// all the same.
fn zone_literal(zone: &str) -> String {
    format!("'{}'", zone.replace('\'', "''"))
}

pub(super) async fn clock(pool: &MySqlPool, zone: &str) -> Result<Clock, DbError> {
    let (utc, local): (String, Option<String>) = sqlx::query_as(
        "SELECT CAST(UTC_TIMESTAMP() AS CHAR), CAST(CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', ?) AS CHAR)",
    )
    .bind(zone)
    .fetch_one(pool)
    .await?;
    Ok(Clock {
        instant: parse_server_time(&utc)?,
        local: parse_server_time(local.as_deref().unwrap_or_default())?,
    })
}

/// MySQL/MariaDB refuse `INNODB_TRX` to users without `PROCESS`:
/// ER_SPECIFIC_ACCESS_DENIED_ERROR (1227), ER_DBACCESS_DENIED_ERROR (1044).
const ACCESS_DENIED: [&str; 3] = ["1227", "1044", "42000"];

/// How much earlier than the server reports a running statement may have
/// read the clock. The server notes both when the statement starts; this
/// covers rounding and the two timers it uses, with room to spare.
const STATEMENT_CLOCK_MARGIN_US: i64 = 50_000;

/// MariaDB serves `INNODB_TRX` from a cache it refreshes only when nobody
/// has read it for 100 ms; a little longer than that, a read refreshes it.
const TRX_CACHE_IDLE: Duration = Duration::from_millis(110);

/// How long a probe keeps asking for a list MariaDB has refreshed before
/// it reports the list stale.
const STALE_PATIENCE: Duration = Duration::from_secs(3);

pub(super) async fn open_writes(pool: &MySqlPool) -> Result<OpenWrites, DbError> {
    // Another reader (another rowhook on the same server, a monitor) may
    // have read the cache a moment earlier; after a pause the next read
    // usually refreshes it.
    let began = std::time::Instant::now();
    loop {
        match probe_writes(pool).await? {
            OpenWrites::Stale if began.elapsed() < STALE_PATIENCE => {
                tokio::time::sleep(stale_pause()).await;
            }
            known => return Ok(known),
        }
    }
}

/// 110–330 ms: past the cache's idle time, and spread, because every read
/// of a stale cache (ours included) keeps it stale for the next 100 ms:
/// two clients that found it stale together and asked again in step would
/// keep it stale for each other.
fn stale_pause() -> Duration {
    let spread = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 220)
        .unwrap_or_default();
    TRX_CACHE_IDLE + Duration::from_millis(u64::from(spread))
}

async fn probe_writes(pool: &MySqlPool) -> Result<OpenWrites, DbError> {
    // Two kinds of write may still show rows stamped before now:
    //
    // - an InnoDB transaction that has modified rows or is running a write
    //   (read-only autocommit SELECTs, rowhook's own included, cannot
    //   commit rows). `trx_started` has whole seconds and a transaction is
    //   registered only at its first row, after its first statement read the
    //   clock: rows from a second before it are possible;
    // - any statement still running that is not a SELECT, in whatever state:
    //   one waiting for a lock (a backup's `LOCK TABLES … READ`, a metadata
    //   lock, a MyISAM table lock) has read the clock already, and is not a
    //   transaction yet; nor is any MyISAM statement. Its rows carry the
    //   second it started.
    //
    // The probe runs in a transaction begun with a snapshot, so that it is
    // itself registered: if the cached `INNODB_TRX` does not show it, the
    // cache predates the probe and says nothing about transactions begun
    // since.
    //
    // Connections using another database are not waited for: on a server
    // shared with other applications (or other practices) their long
    // transactions would hold every window back, and writing Open Dental's
    // tables from another database means naming them across databases,
    // which its clients do not do. A connection without a database, or a
    // server-internal transaction, still counts.
    let mut tx = pool
        .begin_with("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await?;
    let row: Result<(i64, Option<String>, Option<String>), _> = sqlx::query_as(
        "SELECT \
           EXISTS(SELECT 1 FROM information_schema.INNODB_TRX \
                  WHERE trx_mysql_thread_id = CONNECTION_ID()), \
           (SELECT CAST(MIN(t.trx_started) - INTERVAL 1 SECOND AS CHAR) \
            FROM information_schema.INNODB_TRX t \
            LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
            WHERE t.trx_mysql_thread_id <> CONNECTION_ID() \
              AND (t.trx_rows_modified > 0 OR (t.trx_query IS NOT NULL AND t.trx_is_read_only = 0)) \
              AND (p.DB IS NULL OR p.DB = DATABASE())), \
           (SELECT CAST(UTC_TIMESTAMP(6) - INTERVAL (MAX(ROUND(p.TIME_MS * 1000)) + ?) MICROSECOND AS CHAR) \
            FROM information_schema.PROCESSLIST p \
            WHERE p.COMMAND IN ('Query', 'Execute') AND p.ID <> CONNECTION_ID() \
              AND (p.DB IS NULL OR p.DB = DATABASE()) \
              AND COALESCE(UPPER(LEFT(TRIM(p.INFO), 6)), '') <> 'SELECT')",
    )
    .bind(STATEMENT_CLOCK_MARGIN_US)
    .fetch_one(&mut *tx)
    .await;
    match row {
        Ok((fresh, transaction, statement)) => {
            tx.commit().await?;
            if fresh == 0 {
                return Ok(OpenWrites::Stale);
            }
            let bounds = [transaction, statement].into_iter().flatten();
            let bounds: Vec<NaiveDateTime> = bounds
                .map(|text| parse_server_time(&text))
                .collect::<Result<_, _>>()?;
            Ok(bounds
                .into_iter()
                .min()
                .map_or(OpenWrites::None, OpenWrites::Since))
        }
        Err(sqlx::Error::Database(e))
            if e.code()
                .is_some_and(|c| ACCESS_DENIED.contains(&c.as_ref())) =>
        {
            Ok(OpenWrites::Unknown)
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn snapshot(pool: &MySqlPool, zone: &str) -> Result<Snapshot, DbError> {
    // The outer one-row table makes the clock arrive even when there are no
    // subscriptions, so an idle tick costs one statement.
    let rows = sqlx::query(
        "SELECT CAST(UTC_TIMESTAMP() AS CHAR), \
                CAST(CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', ?) AS CHAR), \
                CAST(MICROSECOND(UTC_TIMESTAMP(6)) AS SIGNED), \
                s.ApiSubscriptionNum AS num, s.EndPointUrl AS endpoint_url, \
                s.Workstation AS workstation, s.CustomerKey AS customer_key, \
                s.WatchTable AS watch_table, CAST(s.PollingSeconds AS SIGNED) AS polling_seconds, \
                s.UiEventType AS ui_event_type, CAST(s.DateTimeStart AS CHAR) AS date_time_start, \
                CAST(s.DateTimeStop AS CHAR) AS date_time_stop, \
                p.date_time_start AS p_start, CAST(p.watermark AS CHAR) AS p_watermark, \
                CAST(p.window_stop AS CHAR) AS p_window_stop, \
                CAST(p.cursor_stamp AS CHAR) AS p_cursor_stamp, p.cursor_key AS p_cursor_key, \
                CAST(h.consecutive_failures AS SIGNED) AS h_failures, \
                CAST(h.last_success_at AS CHAR) AS h_success, \
                CAST(h.last_failure_at AS CHAR) AS h_failure, \
                CAST(h.next_retry_at AS CHAR) AS h_next_retry, \
                CAST(h.deactivated_at AS CHAR) AS h_deactivated, h.last_failure_reason AS h_reason, \
                b.body AS body, l.holder AS l_holder, l.epoch AS l_epoch, l.since AS l_since, \
                CAST(l.expires > UTC_TIMESTAMP(6) AS SIGNED) AS l_live \
         FROM (SELECT 1 AS one) AS tick \
         LEFT JOIN apisubscription s ON TRUE \
         LEFT JOIN rowhook_progress p ON p.subscription_num = s.ApiSubscriptionNum \
         LEFT JOIN rowhook_health h ON h.subscription_num = s.ApiSubscriptionNum \
         LEFT JOIN rowhook_body b ON b.subscription_num = s.ApiSubscriptionNum \
         LEFT JOIN rowhook_lease l ON l.subscription_num = s.ApiSubscriptionNum \
         ORDER BY s.ApiSubscriptionNum",
    )
    .bind(zone)
    .fetch_all(pool)
    .await?;
    let Some(first) = rows.first() else {
        return Err(DbError::BadServerTime(String::new()));
    };
    let clock = Clock {
        instant: parse_server_time(&first.try_get::<String, _>(0)?)?,
        local: parse_server_time(&first.try_get::<Option<String>, _>(1)?.unwrap_or_default())?,
    };
    let micros = first.try_get::<Option<i64>, _>(2)?.unwrap_or_default();
    let phase = Duration::from_micros(micros.clamp(0, 999_999).unsigned_abs());
    let now_exact = clock.instant + chrono::Duration::microseconds(micros.clamp(0, 999_999));
    let mut snapshot = Snapshot {
        clock,
        phase,
        now_exact,
        subscriptions: Vec::with_capacity(rows.len()),
        progress: HashMap::new(),
        health: HashMap::new(),
        bodies: HashMap::new(),
        leases: HashMap::new(),
    };
    for row in &rows {
        let Some(entry) = snapshot_entry(row)? else {
            continue;
        };
        let lease = lease_from(
            row.try_get("l_holder")?,
            row.try_get("l_epoch")?,
            row.try_get("l_since")?,
            row.try_get("l_live")?,
        );
        if let Some(lease) = lease {
            snapshot.leases.insert(entry.row.id(), lease);
        }
        snapshot.add(entry);
    }
    Ok(snapshot)
}

pub(super) async fn local_to_instant(
    pool: &MySqlPool,
    zone: &str,
    local: &str,
) -> Result<NaiveDateTime, DbError> {
    // The earlier of the two readings of a repeated hour; elsewhere both are
    // the same instant. Zero dates and times before 1970 stay as they are.
    let text: Option<String> = sqlx::query_scalar(
        "SELECT CAST(COALESCE(LEAST(CONVERT_TZ(CAST(? AS DATETIME), ?, '+00:00'), \
                CONVERT_TZ(CAST(? AS DATETIME) - INTERVAL 1 HOUR, ?, '+00:00') + INTERVAL 1 HOUR), \
                CAST(? AS DATETIME)) AS CHAR)",
    )
    .bind(local)
    .bind(zone)
    .bind(local)
    .bind(zone)
    .bind(local)
    .fetch_one(pool)
    .await?;
    match text {
        Some(t) => parse_server_time(&t),
        None => parse_server_time(local),
    }
}

pub(super) async fn instant_to_local(
    pool: &MySqlPool,
    zone: &str,
    instant: NaiveDateTime,
) -> Result<String, DbError> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT CAST(CONVERT_TZ(?, '+00:00', ?) AS CHAR)")
            .bind(format_time(instant))
            .bind(zone)
            .fetch_one(pool)
            .await?;
    Ok(text.unwrap_or_else(|| format_time(instant)))
}

/// A delivered window's end in one statement: `DateTimeStart` moves from
/// `expected` and the progress record to the window's end, both or neither.
/// False when either row does not match (an operator's edit, or no progress
/// record yet): the caller then takes the two-statement way.
pub(super) async fn close_window(
    pool: &MySqlPool,
    id: SubscriptionId,
    expected: &StartText,
    progress: &Progress,
    fence: Option<&Fence>,
) -> Result<bool, DbError> {
    let fenced = match fence {
        Some(_) => format!(" AND {FENCED}"),
        None => String::new(),
    };
    let sql = format!(
        "UPDATE apisubscription s JOIN rowhook_progress p ON p.subscription_num = s.ApiSubscriptionNum \
         SET s.DateTimeStart = ?, p.date_time_start = ?, p.watermark = ?, \
             p.window_stop = NULL, p.cursor_stamp = NULL, p.cursor_key = NULL \
         WHERE s.ApiSubscriptionNum = ? AND s.DateTimeStart = ?{fenced}"
    );
    let q = sqlx::query(&sql)
        .bind(progress.date_time_start.as_str())
        .bind(progress.date_time_start.as_str())
        .bind(format_time(progress.watermark))
        .bind(id.0)
        .bind(expected.as_str());
    let matched = bind_fence!(q, id, fence)
        .execute(pool)
        .await?
        .rows_affected();
    // sqlx asks for found rows: both rows matched, whether or not changed.
    Ok(matched == 2)
}

pub(super) async fn recheck(
    pool: &MySqlPool,
    zone: &str,
    id: SubscriptionId,
) -> Result<Option<Recheck>, DbError> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT CAST(DateTimeStart AS CHAR), \
                CAST(YEAR(DateTimeStop) >= 1880 AND DateTimeStop < CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', ?) AS SIGNED) \
         FROM apisubscription WHERE ApiSubscriptionNum = ?",
    )
    .bind(zone)
    .bind(id.0)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(start, expired)| Recheck {
        start: StartText::new(start),
        expired: expired != 0,
    }))
}

pub(super) async fn resolve(
    pool: &MySqlPool,
    target: &WatchTarget,
) -> Result<WatchedTable, DbError> {
    let (table, engine) = find_table(pool, target.table.as_str()).await?;
    let described = sqlx::query(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
                CAST(COLUMN_KEY AS CHAR), CAST(IS_NULLABLE AS CHAR), \
                CAST(EXTRA AS CHAR) LIKE '%on update current_timestamp%' \
         FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(&table)
    .fetch_all(pool)
    .await?;
    let mut columns = Vec::with_capacity(described.len());
    let mut primary = Vec::new();
    for row in &described {
        let name: String = row.try_get(0)?;
        let data_type: String = row.try_get(1)?;
        let column_type: String = row.try_get(2)?;
        let data_type = data_type.to_ascii_lowercase();
        let not_null = row.try_get::<String, _>(4)? == "NO";
        let column = Column {
            kind: encode::kind_of(&data_type, column_type.contains("unsigned")),
            zoned: data_type == "timestamp",
            plain: PLAIN_TYPES.contains(&data_type.as_str())
                || (not_null && BINARY_DATES.contains(&data_type.as_str())),
            auto: row.try_get::<i64, _>(5)? != 0,
            name,
        };
        if row.try_get::<String, _>(3)? == "PRI" {
            primary.push(column.clone());
        }
        columns.push(column);
    }
    let key_column = match primary.as_slice() {
        [one] if matches!(one.kind, ColumnKind::Int | ColumnKind::UInt) => one.name.clone(),
        _ => return Err(DbError::NoIntegerKey(table)),
    };
    let change_column = choose_change_column(&table, target, &columns)?;
    let (change_column_indexed, page_read) = stamp_index(
        pool,
        &table,
        &change_column,
        &key_column,
        engine.is_some_and(|e| e.eq_ignore_ascii_case("InnoDB")),
    )
    .await?;
    let change_column_auto = columns.iter().any(|c| c.name == change_column && c.auto);
    Ok(WatchedTable {
        watch_name: target.name.clone(),
        opendental: opendental_plan(&target.name, &columns),
        table,
        change_column,
        key_column,
        filter: target.filter,
        columns,
        change_column_indexed,
        page_read,
        change_column_auto,
    })
}

/// The schema's spelling of `name` (an exact match, else the only
/// case-insensitive one) and its engine (none for a view).
async fn find_table(pool: &MySqlPool, name: &str) -> Result<(String, Option<String>), DbError> {
    let found: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(ENGINE AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND LOWER(TABLE_NAME) = LOWER(?)",
    )
    .bind(name)
    .fetch_all(pool)
    .await?;
    if let Some(exact) = found.iter().find(|(t, _)| t == name) {
        return Ok(exact.clone());
    }
    match found.as_slice() {
        [only] => Ok(only.clone()),
        _ => Err(DbError::TableNotFound(name.to_owned())),
    }
}

/// Whether an index starts with the stamp, and how a page is read: in one
/// statement when an index is in (stamp, key) order — its second column is
/// the key, or it has none and the table is InnoDB, whose indexes end with
/// the primary key.
async fn stamp_index(
    pool: &MySqlPool,
    table: &str,
    stamp: &str,
    key: &str,
    innodb: bool,
) -> Result<(bool, PageRead), DbError> {
    let listed: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(INDEX_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR) \
         FROM information_schema.STATISTICS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    let mut indexes: Vec<(&str, Vec<&str>)> = Vec::new();
    for (index, column) in &listed {
        match indexes.last_mut() {
            Some((name, columns)) if name == index => columns.push(column),
            _ => indexes.push((index, vec![column])),
        }
    }
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let on_stamp: Vec<&Vec<&str>> = indexes
        .iter()
        .map(|(_, columns)| columns)
        .filter(|columns| columns.first().is_some_and(|c| same(c, stamp)))
        .collect();
    let ordered = on_stamp.iter().any(|columns| match columns.get(1) {
        Some(second) => same(second, key),
        None => innodb,
    });
    let read = if ordered {
        PageRead::OneStatement
    } else {
        PageRead::StampThenKey
    };
    Ok((!on_stamp.is_empty(), read))
}

/// Date types the page reader decodes from the binary protocol when the
/// column is `NOT NULL`. sqlx reads a zero date (`0000-00-00`) as NULL, so
/// in a column that cannot hold NULL an absent value is a zero date; a
/// nullable column is cast to text, where the two differ.
const BINARY_DATES: [&str; 2] = ["datetime", "date"];

/// Column types whose values arrive as the page reader decodes them: integers as
/// integers, character strings as text.
const PLAIN_TYPES: [&str; 11] = [
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "bigint",
    "char",
    "varchar",
    "tinytext",
    "text",
    "mediumtext",
    "longtext",
];

pub(super) async fn count_rows(
    pool: &MySqlPool,
    table: &WatchedTable,
    window: Window,
) -> Result<u64, DbError> {
    let PageBinds { from, stop, .. } = PageBinds::new(window, None);
    let sql = format!("SELECT COUNT(*){}", window_from(table, None, '`'));
    let count: i64 = sqlx::query_scalar(&sql)
        .bind(from)
        .bind(stop)
        .fetch_one(pool)
        .await?;
    Ok(count.unsigned_abs())
}
