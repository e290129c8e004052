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
//! * `pages`: the same rows in keyset pages of 1000 on (DateTStamp, AptNum),
//!   with the statements rowhook sends (src/db/mysql.rs, `*` for its cast
//!   select list): after the first page, an index walk for the stamp of the
//!   1000th row after the cursor, then the page bounded by it. What reading
//!   in batches costs the database and the driver.
//!
//! FROM and TO are datetimes in the server's zone. Each value's raw bytes
//! are counted, not converted. Prints one line of JSON:
//! `{"rows":N,"bytes":N,"queries":N,"seconds":S}`.

use std::error::Error;
use std::time::Instant;

use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::{Connection as _, Row as _};

const PAGE: i64 = 1000;
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
            let first = format!(
                "SELECT *, CAST(DateTStamp AS CHAR), AptNum {WINDOW} \
                 ORDER BY DateTStamp, AptNum LIMIT ?"
            );
            let walk = format!(
                "SELECT CAST(DateTStamp AS CHAR) {WINDOW} {AFTER} \
                 ORDER BY DateTStamp LIMIT 1 OFFSET ?"
            );
            let next = |bounded: bool| {
                format!(
                    "SELECT *, CAST(DateTStamp AS CHAR), AptNum {WINDOW} {AFTER}{} \
                     ORDER BY DateTStamp, AptNum LIMIT ?",
                    if bounded { " AND DateTStamp <= ?" } else { "" }
                )
            };
            let (bounded, unbounded) = (next(true), next(false));
            let mut cursor: Option<(String, i64)> = None;
            loop {
                let page = match &cursor {
                    None => sqlx::query(&first).bind(from).bind(to).bind(PAGE),
                    // The keyset clause, and the window starting at the
                    // cursor's stamp, as rowhook writes it.
                    Some((stamp, key)) => {
                        let bound: Option<String> = sqlx::query_scalar(&walk)
                            .bind(stamp)
                            .bind(to)
                            .bind(stamp)
                            .bind(key)
                            .bind(PAGE - 1)
                            .fetch_optional(&mut conn)
                            .await?;
                        queries += 1;
                        let sql = if bound.is_some() {
                            &bounded
                        } else {
                            &unbounded
                        };
                        let page = sqlx::query(sql).bind(stamp).bind(to).bind(stamp).bind(key);
                        match bound {
                            Some(bound) => page.bind(bound).bind(PAGE),
                            None => page.bind(PAGE),
                        }
                    }
                };
                let page = page.fetch_all(&mut conn).await?;
                queries += 1;
                let Some(last) = page.last() else { break };
                let n = last.len() - 2;
                cursor = Some((last.try_get(n)?, last.try_get(n + 1)?));
                rows += page.len() as u64;
                bytes += page.iter().map(|row| row_bytes(row, n)).sum::<u64>();
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
