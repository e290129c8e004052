//! The plainest sqlx client: reads the rows a backfill reads, in the order
//! rowhook reads them, and throws them away. A ceiling in `bench/limit.sh`.
//!
//! ```text
//! cargo run --release --example bench_read -- DATABASE_URL stream|pages FROM TO
//! ```
//!
//! * `stream`: one query, `SELECT * FROM appointment WHERE DateTStamp >= FROM
//!   AND DateTStamp < TO ORDER BY DateTStamp, AptNum`, rows decoded as they
//!   arrive: what reading costs with no paging at all.
//! * `pages`: the same rows in keyset pages of 3000 (rowhook reads three
//!   batches of 1000 at a time) on (DateTStamp, AptNum), with the statements
//!   rowhook sends (src/db/mysql/page.rs, `*` for its cast select list): on
//!   MyISAM the first 3001 rows by stamp, then the last stamp's rows by key;
//!   on InnoDB one statement in (stamp, key) order. What reading in pages
//!   costs the database and the driver.
//!
//! FROM and TO are datetimes in the server's zone. Each value's raw bytes
//! are counted, not converted. Prints one line of JSON:
//! `{"rows":N,"bytes":N,"queries":N,"seconds":S}`.

use std::error::Error;
use std::time::Instant;

use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::{Connection as _, Row as _};

const PAGE: i64 = 3000;
const WINDOW: &str = "FROM appointment WHERE DateTStamp >= ? AND DateTStamp < ?";
const AFTER: &str = "AND (DateTStamp > ? OR AptNum > ?)";

/// Bytes of every column's value; the row is otherwise dropped.
fn row_bytes(row: &MySqlRow, columns: usize) -> u64 {
    (0..columns)
        .map(|i| {
            row.try_get_unchecked::<Option<&[u8]>, _>(i)
                .ok()
                .flatten()
                .map_or(0, |b| b.len() as u64)
        })
        .sum()
}

/// A page statement as rowhook writes it: the window, the keyset clause
/// after the first page, `extra`, then the order and the limit.
fn statement(after: bool, extra: &str, order: &str) -> String {
    format!(
        "SELECT *, CAST(DateTStamp AS CHAR), AptNum {WINDOW} {}{extra} ORDER BY {order} LIMIT ?",
        if after { AFTER } else { "" }
    )
}

type Query<'q> = sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>;

/// Binds the window and, after the first page, the cursor; as rowhook
/// does, the window then starts at the cursor's stamp.
fn bind<'q>(
    query: Query<'q>,
    from: &'q str,
    to: &'q str,
    cursor: &'q Option<(String, i64)>,
) -> Query<'q> {
    match cursor {
        Some((stamp, key)) => query
            .bind(stamp.as_str())
            .bind(to)
            .bind(stamp.as_str())
            .bind(*key),
        None => query.bind(from).bind(to),
    }
}

/// (stamp, key, bytes of the row's values).
fn stamped(row: &MySqlRow) -> Result<(String, i64, u64), sqlx::Error> {
    let n = row.len() - 2;
    Ok((row.try_get(n)?, row.try_get(n + 1)?, row_bytes(row, n)))
}

/// rowhook's page where the stamp index does not carry the key (MyISAM):
/// the first PAGE + 1 rows in stamp order, which leaves the index to order
/// them; the rows before the last stamp are whole; the last stamp's rows are
/// read again in key order, as many as the page still needs.
async fn in_stamp_order(
    conn: &mut MySqlConnection,
    from: &str,
    to: &str,
    cursor: &Option<(String, i64)>,
) -> Result<(Vec<(String, i64, u64)>, u64), sqlx::Error> {
    let sql = statement(cursor.is_some(), "", "DateTStamp");
    let rows = bind(sqlx::query(&sql), from, to, cursor)
        .bind(PAGE + 1)
        .fetch_all(&mut *conn)
        .await?;
    let mut page = rows.iter().map(stamped).collect::<Result<Vec<_>, _>>()?;
    if (page.len() as i64) <= PAGE {
        page.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        return Ok((page, 1));
    }
    let last = page
        .iter()
        .map(|(s, _, _)| s.clone())
        .max()
        .unwrap_or_default();
    page.retain(|(s, _, _)| *s < last);
    page.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let sql = statement(cursor.is_some(), " AND DateTStamp = ?", "AptNum");
    let rest = bind(sqlx::query(&sql), from, to, cursor)
        .bind(&last)
        .bind(PAGE - page.len() as i64)
        .fetch_all(&mut *conn)
        .await?;
    for row in &rest {
        page.push(stamped(row)?);
    }
    Ok((page, 2))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, mode, from, to] = args.as_slice() else {
        return Err("usage: bench_read DATABASE_URL stream|pages FROM TO".into());
    };
    let mut conn = MySqlConnection::connect(url).await?;
    let started = Instant::now();
    let (mut rows, mut bytes, mut queries) = (0u64, 0u64, 0u64);
    match mode.as_str() {
        "stream" => {
            let sql = format!("SELECT * {WINDOW} ORDER BY DateTStamp, AptNum");
            // fetch_all over a map to (): each row is counted as it streams
            // in, and nothing is kept.
            let counted = sqlx::query(&sql)
                .bind(from)
                .bind(to)
                .map(|row: MySqlRow| bytes += row_bytes(&row, row.len()))
                .fetch_all(&mut conn)
                .await?;
            rows = counted.len() as u64;
            queries = 1;
        }
        "pages" => {
            let engine: Option<String> = sqlx::query_scalar(
                "SELECT CAST(ENGINE AS CHAR) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'appointment'",
            )
            .fetch_one(&mut conn)
            .await?;
            let index_holds_key = engine.is_some_and(|e| e.eq_ignore_ascii_case("innodb"));
            let mut cursor: Option<(String, i64)> = None;
            loop {
                let page = if index_holds_key {
                    let sql = statement(cursor.is_some(), "", "DateTStamp, AptNum");
                    let page = bind(sqlx::query(&sql), from, to, &cursor)
                        .bind(PAGE)
                        .fetch_all(&mut conn)
                        .await?;
                    queries += 1;
                    page.iter().map(stamped).collect::<Result<Vec<_>, _>>()?
                } else {
                    let (page, statements) = in_stamp_order(&mut conn, from, to, &cursor).await?;
                    queries += statements;
                    page
                };
                let Some((stamp, key, _)) = page.last() else {
                    break;
                };
                cursor = Some((stamp.clone(), *key));
                rows += page.len() as u64;
                bytes += page.iter().map(|(_, _, b)| b).sum::<u64>();
                if (page.len() as i64) < PAGE {
                    break;
                }
            }
        }
        other => return Err(format!("mode must be stream or pages, not {other}").into()),
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(r#"{{"rows":{rows},"bytes":{bytes},"queries":{queries},"seconds":{seconds:.3}}}"#);
    Ok(())
}
