//! SQLite: the embedded default behind `rowhook demo` and quick tests.
//!
//! SQLite has no `ON UPDATE CURRENT_TIMESTAMP`; the fixture schema keeps the
//! change column with triggers, writing `datetime('now','localtime')` — the
//! same clock [`now`] reads — as `yyyy-MM-dd HH:mm:ss` text, so comparisons
//! are plain text comparisons that sort like times.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Row, TypeInfo, ValueRef};

use super::encode::{self, ColumnKind};
use super::error::DbError;
use super::model::{
    choose_change_column, opendental_plan, Body, Column, Page, PageRead, Snapshot, WatchedTable,
};
use super::rows::snapshot_entry;
use super::sql::{order_and_limit, parse_server_time, quote, window_from, PageBinds};
use crate::domain::opendental::SourceValue;
use crate::domain::progress::{Clock, Cursor, Recheck, StartText, Window};
use crate::domain::subscription::SubscriptionId;
use crate::domain::watch_table::WatchTarget;

pub(super) async fn clock(pool: &SqlitePool) -> Result<Clock, DbError> {
    let text: String = sqlx::query_scalar("SELECT datetime('now', 'localtime')")
        .fetch_one(pool)
        .await?;
    let local = parse_server_time(&text)?;
    Ok(Clock {
        local,
        instant: local,
    })
}

pub(super) async fn snapshot(pool: &SqlitePool) -> Result<Snapshot, DbError> {
    let clock = clock(pool).await?;
    let rows = sqlx::query(
        "SELECT s.ApiSubscriptionNum AS num, s.EndPointUrl AS endpoint_url, \
                s.Workstation AS workstation, s.CustomerKey AS customer_key, \
                s.WatchTable AS watch_table, CAST(s.PollingSeconds AS INTEGER) AS polling_seconds, \
                s.UiEventType AS ui_event_type, CAST(s.DateTimeStart AS TEXT) AS date_time_start, \
                CAST(s.DateTimeStop AS TEXT) AS date_time_stop, \
                p.date_time_start AS p_start, p.watermark AS p_watermark, \
                p.window_stop AS p_window_stop, p.cursor_stamp AS p_cursor_stamp, \
                p.cursor_key AS p_cursor_key, h.consecutive_failures AS h_failures, \
                h.last_success_at AS h_success, h.last_failure_at AS h_failure, \
                h.next_retry_at AS h_next_retry, h.deactivated_at AS h_deactivated, \
                h.last_failure_reason AS h_reason, b.body AS body \
         FROM apisubscription s \
         LEFT JOIN rowhook_progress p ON p.subscription_num = s.ApiSubscriptionNum \
         LEFT JOIN rowhook_health h ON h.subscription_num = s.ApiSubscriptionNum \
         LEFT JOIN rowhook_body b ON b.subscription_num = s.ApiSubscriptionNum \
         ORDER BY s.ApiSubscriptionNum",
    )
    .fetch_all(pool)
    .await?;
    // SQLite's clock is this machine's.
    let phase = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| Duration::from_nanos(u64::from(d.subsec_nanos())))
        .unwrap_or_default();
    let mut snapshot = Snapshot {
        now_exact: clock.instant,
        clock,
        phase,
        subscriptions: Vec::with_capacity(rows.len()),
        progress: HashMap::new(),
        health: HashMap::new(),
        bodies: HashMap::new(),
        leases: HashMap::new(),
    };
    for row in &rows {
        if let Some(entry) = snapshot_entry(row)? {
            snapshot.add(entry);
        }
    }
    Ok(snapshot)
}

pub(super) async fn recheck(
    pool: &SqlitePool,
    id: SubscriptionId,
) -> Result<Option<Recheck>, DbError> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT CAST(DateTimeStart AS TEXT), \
                (DateTimeStop >= '1880' AND DateTimeStop < datetime('now', 'localtime')) \
         FROM apisubscription WHERE ApiSubscriptionNum = ?",
    )
    .bind(id.0)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(start, expired)| Recheck {
        start: StartText::new(start),
        expired: expired != 0,
    }))
}

pub(super) async fn resolve(
    pool: &SqlitePool,
    target: &WatchTarget,
) -> Result<WatchedTable, DbError> {
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND lower(name) = lower(?)",
    )
    .bind(target.table.as_str())
    .fetch_all(pool)
    .await?;
    let table = match found.as_slice() {
        [only] => only.clone(),
        _ => return Err(DbError::TableNotFound(target.table.to_string())),
    };
    let described = sqlx::query("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid")
        .bind(&table)
        .fetch_all(pool)
        .await?;
    let mut columns = Vec::with_capacity(described.len());
    let mut primary = Vec::new();
    for row in &described {
        let declared: String = row.try_get(1)?;
        let column = Column {
            name: row.try_get(0)?,
            kind: encode::kind_of(&declared, false),
            zoned: false,
            // SQLite's values carry their own types; its select list does
            // not cast.
            plain: true,
            // SQLite has no `ON UPDATE`; the fixture's triggers keep the
            // stamp, and rowhook cannot read a trigger's intent.
            auto: true,
        };
        if row.try_get::<i64, _>(2)? > 0 {
            primary.push(column.clone());
        }
        columns.push(column);
    }
    let key_column = match primary.as_slice() {
        [one] if one.kind == ColumnKind::Int => one.name.clone(),
        _ => return Err(DbError::NoIntegerKey(table)),
    };
    let change_column = choose_change_column(&table, target, &columns)?;
    let indexed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pragma_index_list(?1) AS il, pragma_index_info(il.name) AS ii \
         WHERE ii.seqno = 0 AND ii.name = ?2",
    )
    .bind(&table)
    .bind(&change_column)
    .fetch_one(pool)
    .await?;
    Ok(WatchedTable {
        watch_name: target.name.clone(),
        opendental: opendental_plan(&target.name, &columns),
        table,
        change_column,
        key_column,
        filter: target.filter,
        columns,
        change_column_indexed: indexed > 0,
        page_read: PageRead::OneStatement,
        change_column_auto: true,
    })
}

pub(super) async fn fetch_page(
    pool: &SqlitePool,
    table: &WatchedTable,
    body: Body<'_>,
    window: Window,
    after: Option<Cursor>,
    limit: u32,
) -> Result<Page, DbError> {
    let columns = table.columns_for(body);
    let mut sql = String::from("SELECT ");
    for column in &columns {
        sql.push_str(&quote(&column.name, '"'));
        sql.push_str(", ");
    }
    sql.push_str(&quote(&table.change_column, '"'));
    sql.push_str(", ");
    sql.push_str(&quote(&table.key_column, '"'));
    sql.push_str(&window_from(table, after, '"'));
    sql.push_str(&order_and_limit(table, '"'));
    let PageBinds {
        from,
        stop,
        after: cursor,
    } = PageBinds::new(window, after);
    let mut query = sqlx::query(&sql).bind(from).bind(stop);
    if let Some((stamp, key)) = cursor {
        query = query.bind(stamp).bind(key);
    }
    let rows = query.bind(limit).fetch_all(pool).await?;
    let mut page = Page::default();
    for row in &rows {
        let object = match body {
            Body::Columns => columns_object(&columns, row)?,
            Body::OpenDental { plan, lookups } => {
                let cells = (0..columns.len())
                    .map(|i| source_cell(row, i))
                    .collect::<Result<Vec<Cell>, DbError>>()?;
                let values: Vec<SourceValue> = cells.iter().map(Cell::value).collect();
                let mut out = Vec::with_capacity(64 * values.len());
                plan.render(&values, lookups, &mut out);
                out
            }
        };
        page.push(object, cursor_of(columns.len(), row)?);
    }
    Ok(page.ended_at(limit))
}

/// One value for Open Dental's renderer, by the value's storage class.
enum Cell {
    Value(SourceValue<'static>),
    Text(String),
}

impl Cell {
    fn value(&self) -> SourceValue<'_> {
        match self {
            Self::Value(v) => *v,
            Self::Text(text) => SourceValue::Text(text),
        }
    }
}

fn source_cell(row: &SqliteRow, i: usize) -> Result<Cell, DbError> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Cell::Value(SourceValue::Null));
    }
    let class = raw.type_info().name().to_owned();
    Ok(match class.as_str() {
        "INTEGER" => Cell::Value(SourceValue::Int(row.try_get_unchecked::<i64, _>(i)?)),
        "REAL" => Cell::Value(SourceValue::Float(row.try_get_unchecked::<f64, _>(i)?)),
        _ => Cell::Text(
            String::from_utf8_lossy(&row.try_get_unchecked::<Vec<u8>, _>(i)?).into_owned(),
        ),
    })
}

/// The (stamp, key) selected after the body's `n` columns.
fn cursor_of(n: usize, row: &SqliteRow) -> Result<Cursor, DbError> {
    let stamp: String = row.try_get(n)?;
    Ok(Cursor {
        stamp: parse_server_time(&stamp)?,
        key: row.try_get(n + 1)?,
    })
}

/// SQLite values carry their own storage class; render each by that class,
/// then by the column's declared kind for text (dates).
fn columns_object(columns: &[&Column], row: &SqliteRow) -> Result<Vec<u8>, DbError> {
    let mut object = encode::JsonRow::new();
    for (i, column) in columns.iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        let class = if raw.is_null() {
            "NULL".to_owned()
        } else {
            raw.type_info().name().to_owned()
        };
        let value = match class.as_str() {
            "NULL" => Value::Null,
            "INTEGER" => Value::from(row.try_get_unchecked::<i64, _>(i)?),
            "REAL" => encode::number(&row.try_get_unchecked::<f64, _>(i)?.to_string()),
            "BLOB" => encode::bytes(&row.try_get_unchecked::<Vec<u8>, _>(i)?),
            // SQLite keeps whatever bytes were written as TEXT; invalid
            // UTF-8 (old latin1 data) becomes U+FFFD rather than an error
            // that would stall the subscription.
            _ => encode::text_as(
                column.kind,
                &String::from_utf8_lossy(&row.try_get_unchecked::<Vec<u8>, _>(i)?),
            ),
        };
        object.field(&column.name, &value);
    }
    Ok(object.finish())
}

pub(super) async fn count_rows(
    pool: &SqlitePool,
    table: &WatchedTable,
    window: Window,
) -> Result<u64, DbError> {
    let PageBinds { from, stop, .. } = PageBinds::new(window, None);
    let sql = format!("SELECT COUNT(*){}", window_from(table, None, '"'));
    let count: i64 = sqlx::query_scalar(&sql)
        .bind(from)
        .bind(stop)
        .fetch_one(pool)
        .await?;
    Ok(count.unsigned_abs())
}
