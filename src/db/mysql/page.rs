//! Reading a page on MariaDB: up to `limit` rows of a window, strictly after
//! the cursor, in (stamp, key) order, each rendered as its JSON object.
//!
//! How the server puts rows in that order depends on the stamp's index.
//! InnoDB appends the primary key to every secondary index, so an index on
//! the stamp alone is already in (stamp, key) order: one `ORDER BY stamp,
//! key LIMIT n` reads n index entries and stops ([`PageRead::OneStatement`]).
//!
//! A MyISAM index (most of Open Dental's tables) holds the stamp only. The
//! same statement would make the server read and sort every row left in the
//! window — on a backfill, a million rows for every page. There a page is
//! read in two steps, each of which leaves the ordering to the index
//! ([`PageRead::StampThenKey`]):
//!
//! 1. `ORDER BY stamp LIMIT n + 1`. Every row stamped before the last row's
//!    stamp is among these, so those are whole: they go first, put in key
//!    order here.
//! 2. Only the last stamp's rows can have been cut off. They are read again,
//!    `stamp = last ORDER BY key`, as many as the page still lacks; the
//!    server sorts that one second's rows and nothing else.
//!
//! Both give the page `ORDER BY stamp, key LIMIT n` would. A window with n
//! rows or fewer left takes step 1 alone.
//!
//! The window ends only at a page that says no rows follow (`Page::more`),
//! not at any short page: rows of the last second that change between the
//! two statements leave the window, and the page comes out short with rows
//! still after it. Because every page may cost a fixed second statement, a
//! page holds three batches (`READ_BATCHES` in `window/read_ahead.rs`).
//! Each row is decoded as sqlx yields it, while the server still sends the
//! rest of the page.

use chrono::NaiveDateTime;
use serde_json::Value;
use sqlx::mysql::{MySqlPool, MySqlRow};
use sqlx::Row;

use super::zone_literal;
use crate::db::encode::{self, ColumnKind};
use crate::db::error::DbError;
use crate::db::model::{Body, Column, Page, PageRead, WatchedTable};
use crate::db::sql::{format_stamp, parse_stamp, quote, window_from, PageBinds};
use crate::domain::opendental::value;
use crate::domain::opendental::SourceValue;
use crate::domain::progress::{Cursor, Window};

/// One window's reads after a cursor, with the select list built once.
struct Reader<'a> {
    pool: &'a MySqlPool,
    table: &'a WatchedTable,
    body: Body<'a>,
    /// The columns the body reads, in the select list's order.
    columns: Vec<&'a Column>,
    select: String,
    window: Window,
    after: Option<Cursor>,
}

/// What a statement orders by.
#[derive(Clone, Copy)]
enum Order {
    StampAndKey,
    Stamp,
    Key,
}

pub(in crate::db) async fn fetch_page(
    pool: &MySqlPool,
    zone: &str,
    table: &WatchedTable,
    body: Body<'_>,
    window: Window,
    after: Option<Cursor>,
    limit: u32,
) -> Result<Page, DbError> {
    let columns = table.columns_for(body);
    let reader = Reader {
        pool,
        table,
        body,
        select: select_list(table, &columns, zone),
        columns,
        window,
        after,
    };
    match table.page_read {
        PageRead::OneStatement => reader.in_one_statement(limit).await,
        PageRead::StampThenKey => reader.stamp_then_key(limit).await,
    }
}

/// A row's (stamp, key) and its JSON object.
type Decoded = (Cursor, Vec<u8>);

impl Reader<'_> {
    async fn in_one_statement(&self, limit: u32) -> Result<Page, DbError> {
        let mut page = Page::default();
        for (at, object) in self.rows(Order::StampAndKey, None, limit).await? {
            page.push(object, at);
        }
        Ok(page.ended_at(limit))
    }

    async fn stamp_then_key(&self, limit: u32) -> Result<Page, DbError> {
        let mut first = self
            .rows(Order::Stamp, None, limit.saturating_add(1))
            .await?;
        // More rows than the page holds: the last stamp's may be cut off.
        let cut = if first.len() > limit as usize {
            first.iter().map(|(at, _)| at.stamp).max()
        } else {
            None
        };
        if let Some(last) = cut {
            first.retain(|(at, _)| at.stamp < last);
        }
        first.sort_unstable_by_key(|(at, _)| *at);
        let mut page = Page::default();
        for (at, object) in first {
            page.push(object, at);
        }
        let Some(last) = cut else {
            return Ok(page);
        };
        // Rows followed this page when step 1 ran, even if the page comes
        // out short: rows of the last stamp changed between the two
        // statements (they are in a later window now).
        page.more = true;
        let lacking = limit.saturating_sub(page.len());
        if lacking > 0 {
            for (at, object) in self.rows(Order::Key, Some(last), lacking).await? {
                page.push(object, at);
            }
        }
        if page.rows.is_empty() {
            // Every row of the first step was at `last`, and none is now:
            // read this page in one statement rather than read the same
            // rows again.
            return self.in_one_statement(limit).await;
        }
        Ok(page)
    }

    /// The window's rows after the cursor (only those stamped `at`, if
    /// given), in `order`, at most `limit`.
    async fn rows(
        &self,
        order: Order,
        at: Option<NaiveDateTime>,
        limit: u32,
    ) -> Result<Vec<Decoded>, DbError> {
        let stamp = quote(&self.table.change_column, '`');
        let key = quote(&self.table.key_column, '`');
        let mut sql = format!(
            "SELECT {}{}",
            self.select,
            window_from(self.table, self.after, '`')
        );
        if at.is_some() {
            sql.push_str(&format!(" AND {stamp} = ?"));
        }
        sql.push_str(&match order {
            Order::StampAndKey => format!(" ORDER BY {stamp}, {key} LIMIT ?"),
            Order::Stamp => format!(" ORDER BY {stamp} LIMIT ?"),
            Order::Key => format!(" ORDER BY {key} LIMIT ?"),
        });
        let PageBinds {
            from,
            stop,
            after: cursor,
        } = PageBinds::new(self.window, self.after);
        let mut query = sqlx::query(&sql).bind(from).bind(stop);
        if let Some((stamp, key)) = cursor {
            query = query.bind(stamp).bind(key);
        }
        if let Some(at) = at {
            query = query.bind(format_stamp(at));
        }
        let (columns, body) = (&self.columns, self.body);
        // Each row is decoded as it arrives, while the server is still
        // reading and sending the next ones.
        let rows: Vec<Result<Decoded, DbError>> = query
            .bind(limit)
            .map(|row: MySqlRow| {
                Ok((
                    cursor_of(columns.len(), &row)?,
                    object(columns, body, &row)?,
                ))
            })
            .fetch_all(self.pool)
            .await?;
        rows.into_iter().collect()
    }
}

/// Every column, then the stamp and the key again for the cursor.
fn select_list(table: &WatchedTable, columns: &[&Column], zone: &str) -> String {
    let mut sql = String::new();
    for column in columns {
        sql.push_str(&select_expr(column, zone));
        sql.push_str(", ");
    }
    sql.push_str(&format!(
        "CAST({} AS CHAR), CAST({} AS SIGNED)",
        quote(&table.change_column, '`'),
        quote(&table.key_column, '`')
    ));
    sql
}

/// The select expression for a column: as it is when its type already
/// arrives in a shape [`object`] expects, else a cast to one. `TIMESTAMP`s
/// are shown in Open Dental's zone.
fn select_expr(column: &Column, zone: &str) -> String {
    let q = quote(&column.name, '`');
    if column.plain {
        return q;
    }
    match column.kind {
        ColumnKind::Int => format!("CAST({q} AS SIGNED)"),
        ColumnKind::UInt => format!("CAST({q} AS UNSIGNED)"),
        ColumnKind::Bytes => q,
        ColumnKind::DateTime if column.zoned => {
            format!(
                "CAST(COALESCE(CONVERT_TZ({q}, '+00:00', {}), {q}) AS CHAR)",
                zone_literal(zone)
            )
        }
        // TIME, ENUM, SET and JSON included: text is the one shape they share.
        ColumnKind::Text
        | ColumnKind::Number
        | ColumnKind::Year
        | ColumnKind::Date
        | ColumnKind::DateTime => format!("CAST({q} AS CHAR)"),
    }
}

/// The row's (stamp, key), from the two columns after the table's own.
/// The (stamp, key) selected after the body's `n` columns.
fn cursor_of(n: usize, row: &MySqlRow) -> Result<Cursor, DbError> {
    let stamp: String = row.try_get(n)?;
    Ok(Cursor {
        stamp: parse_stamp(&stamp)?,
        key: row.try_get(n + 1)?,
    })
}

/// The row as its JSON object.
fn object(columns: &[&Column], body: Body<'_>, row: &MySqlRow) -> Result<Vec<u8>, DbError> {
    let Body::OpenDental { plan, lookups } = body else {
        return columns_object(columns, row);
    };
    let cells = columns
        .iter()
        .enumerate()
        .map(|(i, column)| source_cell(column, row, i))
        .collect::<Result<Vec<Cell>, DbError>>()?;
    let values: Vec<SourceValue> = cells.iter().map(Cell::value).collect();
    let mut out = Vec::with_capacity(64 * values.len());
    plan.render(&values, lookups, &mut out);
    Ok(out)
}

/// One value for Open Dental's renderer: borrowed from the row, or owned
/// where it had to be made (an unsigned past `i64`, text that was not
/// UTF-8).
enum Cell<'r> {
    Value(SourceValue<'r>),
    Owned(String),
}

impl Cell<'_> {
    fn value(&self) -> SourceValue<'_> {
        match self {
            Self::Value(v) => *v,
            Self::Owned(text) => SourceValue::Text(text),
        }
    }
}

fn source_cell<'r>(column: &Column, row: &'r MySqlRow, i: usize) -> Result<Cell<'r>, DbError> {
    let text = |raw: Option<&'r [u8]>| match raw {
        None => Cell::Value(SourceValue::Null),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Cell::Value(SourceValue::Text(text)),
            Err(_) => Cell::Owned(String::from_utf8_lossy(bytes).into_owned()),
        },
    };
    Ok(match column.kind {
        ColumnKind::Int => Cell::Value(
            row.try_get::<Option<i64>, _>(i)?
                .map_or(SourceValue::Null, SourceValue::Int),
        ),
        ColumnKind::UInt => match row.try_get::<Option<u64>, _>(i)? {
            None => Cell::Value(SourceValue::Null),
            Some(n) => match i64::try_from(n) {
                Ok(n) => Cell::Value(SourceValue::Int(n)),
                Err(_) => Cell::Owned(n.to_string()),
            },
        },
        ColumnKind::Date | ColumnKind::DateTime if column.plain => {
            let raw = row.try_get_unchecked::<Option<&[u8]>, _>(i)?;
            match value::from_mysql_binary_date(raw) {
                Some(v) => Cell::Value(v),
                None => text(raw),
            }
        }
        ColumnKind::Bytes => text(row.try_get_unchecked::<Option<&[u8]>, _>(i)?),
        _ => text(row.try_get::<Option<&[u8]>, _>(i)?),
    })
}

/// Every column, as `encode.rs` documents.
fn columns_object(columns: &[&Column], row: &MySqlRow) -> Result<Vec<u8>, DbError> {
    let mut object = encode::JsonRow::new();
    for (i, column) in columns.iter().enumerate() {
        let name = &column.name;
        match column.kind {
            ColumnKind::Int => object.field(name, &row.try_get::<Option<i64>, _>(i)?.into()),
            ColumnKind::UInt => object.field(name, &row.try_get::<Option<u64>, _>(i)?.into()),
            // Unchecked: spatial columns arrive labelled GEOMETRY, which
            // sqlx does not list among byte types; their value is bytes all
            // the same.
            ColumnKind::Bytes => object.field(
                name,
                &row.try_get_unchecked::<Option<&[u8]>, _>(i)?
                    .map_or(Value::Null, encode::bytes),
            ),
            ColumnKind::Date | ColumnKind::DateTime if column.plain => {
                let raw = row.try_get_unchecked::<Option<&[u8]>, _>(i)?;
                match encode::binary_date(column.kind, raw) {
                    Some(value) => object.field(name, &value),
                    None => text(&mut object, name, column.kind, raw),
                }
            }
            kind => text(&mut object, name, kind, row.try_get::<Option<&[u8]>, _>(i)?),
        }
    }
    Ok(object.finish())
}

/// A value that arrived as text. MariaDB converts text to the session's
/// utf8mb4 and will not store invalid UTF-8 (outside strict mode it keeps
/// '?'), so this is a guard: bytes that still are not UTF-8 become U+FFFD
/// instead of an error that would stall the subscription.
fn text(object: &mut encode::JsonRow, name: &str, kind: ColumnKind, raw: Option<&[u8]>) {
    match raw {
        None => object.field(name, &Value::Null),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => object.text_field(name, kind, text),
            Err(_) => object.text_field(name, kind, &String::from_utf8_lossy(bytes)),
        },
    }
}
