//! MySQL / MariaDB: the backend Open Dental runs on.
//!
//! Each column is selected through a cast that leaves only a few wire shapes
//! to decode (signed and unsigned BIGINT, text, bytes), so decoding never
//! depends on how the driver labels `tinyint(1)` or a zero date.
//! `TIMESTAMP` columns are read and compared in the session's time zone, the
//! same one `NOW()` uses.

use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use sqlx::mysql::{MySqlPool, MySqlRow};
use sqlx::Row;

use super::{
    choose_change_column, encode, order_and_limit, page_binds, parse_server_time, quote,
    window_from, Column, ColumnKind, DbError, Page, WatchedTable,
};
use crate::subscription::SubscriptionRow;
use crate::watch_table::WatchTarget;
use crate::window::{Cursor, Window};

pub(super) async fn now(pool: &MySqlPool) -> Result<NaiveDateTime, DbError> {
    let text: String = sqlx::query_scalar("SELECT CAST(NOW() AS CHAR)")
        .fetch_one(pool)
        .await?;
    parse_server_time(&text)
}

pub(super) async fn load_subscriptions(
    pool: &MySqlPool,
) -> Result<(NaiveDateTime, Vec<SubscriptionRow>), DbError> {
    // The outer one-row table makes NOW() arrive even when there are no
    // subscriptions, so an idle tick costs one statement.
    let rows = sqlx::query(
        "SELECT CAST(NOW() AS CHAR), s.ApiSubscriptionNum, s.EndPointUrl, s.Workstation, \
                s.CustomerKey, s.WatchTable, CAST(s.PollingSeconds AS SIGNED), s.UiEventType, \
                CAST(s.DateTimeStart AS CHAR), CAST(s.DateTimeStop AS CHAR) \
         FROM (SELECT 1 AS one) AS tick LEFT JOIN apisubscription s ON TRUE \
         ORDER BY s.ApiSubscriptionNum",
    )
    .fetch_all(pool)
    .await?;
    let now_text: String = match rows.first() {
        Some(row) => row.try_get(0)?,
        None => return Err(DbError::BadServerTime(String::new())),
    };
    let mut subscriptions = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(num) = row.try_get::<Option<i64>, _>(1)? else {
            continue;
        };
        let text = |i: usize| -> Result<String, sqlx::Error> {
            Ok(row.try_get::<Option<String>, _>(i)?.unwrap_or_default())
        };
        subscriptions.push(SubscriptionRow {
            num,
            endpoint_url: text(2)?,
            workstation: text(3)?,
            customer_key: text(4)?,
            watch_table: text(5)?,
            polling_seconds: row.try_get::<Option<i64>, _>(6)?.unwrap_or_default(),
            ui_event_type: text(7)?,
            date_time_start: text(8)?,
            date_time_stop: text(9)?,
        });
    }
    Ok((parse_server_time(&now_text)?, subscriptions))
}

pub(super) async fn resolve(
    pool: &MySqlPool,
    target: &WatchTarget,
) -> Result<WatchedTable, DbError> {
    let table = find_table(pool, target.table.as_str()).await?;
    let described = sqlx::query(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
                CAST(COLUMN_KEY AS CHAR) \
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
        let column = Column {
            kind: encode::kind_of(&data_type, column_type.contains("unsigned")),
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
    let change_column_indexed = is_indexed(pool, &table, &change_column).await?;
    Ok(WatchedTable {
        watch_name: target.name.clone(),
        table,
        change_column,
        key_column,
        filter: target.filter,
        columns,
        change_column_indexed,
    })
}

/// The schema's spelling of `name`: an exact match, else the only
/// case-insensitive one.
async fn find_table(pool: &MySqlPool, name: &str) -> Result<String, DbError> {
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND LOWER(TABLE_NAME) = LOWER(?)",
    )
    .bind(name)
    .fetch_all(pool)
    .await?;
    if let Some(exact) = found.iter().find(|t| *t == name) {
        return Ok(exact.clone());
    }
    match found.as_slice() {
        [only] => Ok(only.clone()),
        _ => Err(DbError::TableNotFound(name.to_owned())),
    }
}

async fn is_indexed(pool: &MySqlPool, table: &str, column: &str) -> Result<bool, DbError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.STATISTICS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ? AND SEQ_IN_INDEX = 1",
    )
    .bind(table)
    .bind(column)
    .fetch_one(pool)
    .await?;
    Ok(count > 0)
}

/// The select expression for a column: a cast to one of the wire shapes
/// [`decode`] expects.
fn select_expr(column: &Column) -> String {
    let q = quote(&column.name, '`');
    match column.kind {
        ColumnKind::Int => format!("CAST({q} AS SIGNED)"),
        ColumnKind::UInt => format!("CAST({q} AS UNSIGNED)"),
        ColumnKind::Bytes => q,
        // TIME, ENUM, SET and JSON included: text is the one shape they share.
        ColumnKind::Text
        | ColumnKind::Number
        | ColumnKind::Year
        | ColumnKind::Date
        | ColumnKind::DateTime => format!("CAST({q} AS CHAR)"),
    }
}

pub(super) async fn fetch_page(
    pool: &MySqlPool,
    table: &WatchedTable,
    window: Window,
    after: Option<Cursor>,
    limit: u32,
) -> Result<Page, DbError> {
    let mut sql = String::from("SELECT ");
    for column in &table.columns {
        sql.push_str(&select_expr(column));
        sql.push_str(", ");
    }
    sql.push_str(&format!(
        "CAST({} AS CHAR), CAST({} AS SIGNED)",
        quote(&table.change_column, '`'),
        quote(&table.key_column, '`')
    ));
    sql.push_str(&window_from(table, after, '`'));
    sql.push_str(&order_and_limit(table, '`'));
    let (from, stop, cursor) = page_binds(window, after);
    let mut query = sqlx::query(&sql).bind(from).bind(stop);
    if let Some((stamp, key)) = cursor {
        query = query.bind(stamp).bind(key);
    }
    let rows = query.bind(limit).fetch_all(pool).await?;
    let mut page = Page::default();
    for row in &rows {
        let (object, at) = decode(table, row)?;
        page.push(object, at);
    }
    Ok(page)
}

fn decode(table: &WatchedTable, row: &MySqlRow) -> Result<(Map<String, Value>, Cursor), DbError> {
    let mut object = Map::with_capacity(table.columns.len());
    for (i, column) in table.columns.iter().enumerate() {
        let value = match column.kind {
            ColumnKind::Int => row.try_get::<Option<i64>, _>(i)?.map(Value::from),
            ColumnKind::UInt => row.try_get::<Option<u64>, _>(i)?.map(Value::from),
            ColumnKind::Bytes => row
                .try_get::<Option<Vec<u8>>, _>(i)?
                .map(|b| encode::bytes(&b)),
            kind => row
                .try_get::<Option<String>, _>(i)?
                .map(|text| encode::text_as(kind, &text)),
        };
        object.insert(column.name.clone(), value.unwrap_or(Value::Null));
    }
    let n = table.columns.len();
    let stamp: String = row.try_get(n)?;
    let at = Cursor {
        stamp: parse_server_time(&stamp)?,
        key: row.try_get(n + 1)?,
    };
    Ok((object, at))
}

pub(super) async fn count_rows(
    pool: &MySqlPool,
    table: &WatchedTable,
    window: Window,
) -> Result<u64, DbError> {
    let (from, stop, _) = page_binds(window, None);
    let sql = format!("SELECT COUNT(*){}", window_from(table, None, '`'));
    let count: i64 = sqlx::query_scalar(&sql)
        .bind(from)
        .bind(stop)
        .fetch_one(pool)
        .await?;
    Ok(count.unsigned_abs())
}
