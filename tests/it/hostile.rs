//! Hostile or broken data: subscription rows full of garbage, and watched
//! rows with every odd column type MariaDB has. Each case is a row of a
//! table with its expected outcome. Nothing may panic, a bad subscription
//! must not stop a good one, and every watched row must arrive.

use std::collections::HashMap;

use base64::Engine;
use rowhook::receiver::Receiver;
use rowhook::subscription::{Parsed, SubscriptionRow};
use serde_json::{json, Value};

use crate::helpers::{run_once, settings, Backend, Sub, TestDb, WORKSTATION};

/// What should become of a subscription row.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// It runs and its rows arrive.
    Delivers,
    /// It is refused; the reason contains this text.
    Refused(&'static str),
    /// It is valid but does not run now (other workstation, not due yet).
    Quiet,
}

/// One garbage subscription: which column gets which value.
struct Case {
    name: &'static str,
    url: Option<String>,
    table: String,
    workstation: String,
    key: &'static str,
    polling: i64,
    start: Option<&'static str>,
    stop: &'static str,
    expect: Expect,
}

fn case(name: &'static str, expect: Expect) -> Case {
    Case {
        name,
        url: None,
        table: "Appointment".to_owned(),
        workstation: WORKSTATION.to_owned(),
        key: "",
        polling: 1,
        start: None,
        stop: "0001-01-01 00:00:00",
        expect,
    }
}

/// Cases that fit Open Dental's `varchar(255)` columns (both backends).
fn subscription_cases() -> Vec<Case> {
    use Expect::*;
    let url = |u: &str| Some(u.to_owned());
    vec![
        Case {
            polling: -1,
            ..case("negative PollingSeconds", Refused("negative"))
        },
        Case {
            polling: 0,
            ..case("zero PollingSeconds: every tick", Delivers)
        },
        Case {
            polling: 2_147_483_647,
            ..case("enormous PollingSeconds: not due for 68 years", Quiet)
        },
        Case {
            url: url(""),
            ..case("empty URL", Refused("not a valid URL"))
        },
        Case {
            url: url("ftp://example.com/x"),
            ..case("ftp scheme", Refused("not http or https"))
        },
        Case {
            url: url("file:///etc/passwd"),
            ..case("file scheme", Refused("not http or https"))
        },
        Case {
            url: url("javascript:alert(1)"),
            ..case("javascript scheme", Refused("not http or https"))
        },
        Case {
            url: url("http://exa mple.com/"),
            ..case("space in the host", Refused("not a valid URL"))
        },
        Case {
            url: url("not a url at all"),
            ..case("no scheme", Refused("not a valid URL"))
        },
        Case {
            url: url("http://"),
            ..case("no host", Refused("not a valid URL"))
        },
        Case {
            url: url("mailto:x@example.com"),
            ..case("mailto scheme", Refused("not http or https"))
        },
        Case {
            table: "NoSuchTable".into(),
            ..case("unknown table", Refused("does not exist"))
        },
        Case {
            table: "appointment; DROP TABLE patient".into(),
            ..case("injection with ;", Refused("not a table name"))
        },
        Case {
            table: "`appointment`".into(),
            ..case("backticks", Refused("not a table name"))
        },
        Case {
            table: "appointment' OR '1'='1".into(),
            ..case("quotes", Refused("not a table name"))
        },
        Case {
            table: "information_schema.tables".into(),
            ..case("another schema", Refused("not a table name"))
        },
        Case {
            table: "Аppointment".into(),
            ..case("Cyrillic lookalike A", Refused("not a table name"))
        },
        Case {
            table: "appointment\0".into(),
            ..case("NUL byte", Refused("not a table name"))
        },
        Case {
            table: "  Appointment  ".into(),
            ..case("spaces around an Open Dental name", Delivers)
        },
        Case {
            table: "APPOINTMENT".into(),
            ..case("Open Dental name in capitals", Delivers)
        },
        Case {
            table: "patient".into(),
            ..case("a table by its own name", Delivers)
        },
        Case {
            workstation: "O'Brien-PC\" OR 1=1 --".into(),
            ..case("quotes in Workstation", Quiet)
        },
        Case {
            workstation: "TEST-WS\n".into(),
            ..case("newline after our own name", Delivers)
        },
        Case {
            workstation: "TEST\u{7}WS".into(),
            ..case("control character in Workstation", Quiet)
        },
        Case {
            start: Some("0000-00-00 00:00:00"),
            ..case("zero DateTimeStart", Delivers)
        },
        Case {
            start: Some("1000-01-01 00:00:00"),
            ..case("DateTimeStart in the year 1000", Delivers)
        },
        Case {
            start: Some("9999-12-31 23:59:59"),
            ..case("DateTimeStart at the end of time", Quiet)
        },
        Case {
            stop: "0000-00-00 00:00:00",
            ..case("zero DateTimeStop: never expires", Delivers)
        },
        Case {
            stop: "9999-12-31 23:59:59",
            ..case("DateTimeStop at the end of time", Delivers)
        },
        Case {
            stop: "2000-01-01 00:00:00",
            ..case("expired long ago", Quiet)
        },
        Case {
            key: "abc\r\nX-Injected: 1",
            ..case("header injection in CustomerKey", Refused("HTTP header"))
        },
        Case {
            key: "k\u{7f}",
            ..case("DEL in CustomerKey", Refused("HTTP header"))
        },
        Case {
            table: "".into(),
            ..case("blank WatchTable: a UI event", Refused("UI-event"))
        },
    ]
}

/// Cases only SQLite can hold: Open Dental's MySQL columns are varchar(255).
fn long_cases() -> Vec<Case> {
    vec![
        Case {
            url: Some(format!("http://127.0.0.1:9/{}", "a".repeat(10_000))),
            ..case(
                "10 KB URL to a closed port: tried, fails, nothing else stops",
                Expect::Quiet,
            )
        },
        Case {
            workstation: "W".repeat(10_000),
            ..case("10 KB Workstation", Expect::Quiet)
        },
        Case {
            table: "t".repeat(10_000),
            ..case("10 KB WatchTable", Expect::Refused("not a table name"))
        },
    ]
}

/// Why the daemon would not run this row, read back from the database.
async fn refusal(db: &TestDb, row: &SubscriptionRow) -> Option<String> {
    match row.parse() {
        Err(error) => Some(error.to_string()),
        Ok(Parsed::UiEvent { .. }) => Some("UI-event".to_owned()),
        Ok(Parsed::Database(s)) => db.db.resolve(&s.target).await.err().map(|e| e.to_string()),
    }
}

async fn run_subscription_cases(backend: Backend, cases: Vec<Case>) -> usize {
    let db = TestDb::new(backend).await;
    let rx = Receiver::start().await.unwrap();
    db.insert_appointments(2, &db.ago(30).await).await;
    db.exec(
        "INSERT INTO patient (LName, FName, DateTStamp) VALUES ('Doe', 'Jane', ?)",
        &[&db.ago(30).await],
    )
    .await;
    let good_url = rx.url("/good");
    let good = db.subscribe(Sub::new(&good_url)).await;
    let mut ids = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let url = c
            .url
            .clone()
            .unwrap_or_else(|| rx.url(&format!("/case/{n}")));
        let id = db
            .subscribe(Sub {
                url: &url,
                table: &c.table,
                workstation: &c.workstation,
                key: c.key,
                polling: c.polling,
                start: c.start,
                stop: c.stop,
            })
            .await;
        ids.push(id);
    }

    run_once(&db, settings()).await;
    // A second pass sends nothing again: every delivered window advanced
    // (a zero DateTimeStart included).
    run_once(&db, settings()).await;
    let paths: Vec<String> = rx.accepted().iter().map(|r| r.target.clone()).collect();
    let mut unique = paths.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        paths.len(),
        unique.len(),
        "{backend:?}: no window was sent twice: {paths:?}"
    );

    let snapshot = db.db.snapshot().await.unwrap();
    let rows: HashMap<i64, &SubscriptionRow> =
        snapshot.subscriptions.iter().map(|r| (r.num, r)).collect();
    let arrived = |path: &str| rx.accepted().iter().any(|r| r.target == path);
    assert!(
        arrived("/good"),
        "{backend:?}: the good subscription ran amid the garbage"
    );
    assert!(db.watermark(good).await.as_str() > "2000", "{backend:?}");
    for (n, (c, id)) in cases.iter().zip(&ids).enumerate() {
        let reason = refusal(&db, rows[id]).await;
        let sent = arrived(&format!("/case/{n}"));
        match c.expect {
            Expect::Delivers => {
                assert_eq!(reason, None, "{backend:?} {}", c.name);
                assert!(sent, "{backend:?} {}: delivered", c.name);
            }
            Expect::Refused(why) => {
                let reason = reason.unwrap_or_else(|| panic!("{backend:?} {}: refused", c.name));
                assert!(reason.contains(why), "{backend:?} {}: {reason}", c.name);
                assert!(!sent, "{backend:?} {}", c.name);
            }
            Expect::Quiet => {
                assert_eq!(reason, None, "{backend:?} {}", c.name);
                assert!(!sent, "{backend:?} {}: not run now", c.name);
            }
        }
    }
    db.drop().await;
    cases.len()
}

#[tokio::test]
async fn garbage_subscription_rows_are_refused_or_ignored_and_the_good_one_runs() {
    let mut total = 0;
    for backend in [Backend::MySql, Backend::Sqlite] {
        total += run_subscription_cases(backend, subscription_cases()).await;
    }
    total += run_subscription_cases(Backend::Sqlite, long_cases()).await;
    println!("{total} subscription cases");
}

/// One watched row: a column, the SQL value written to it, what the JSON
/// must hold.
struct Cell {
    column: &'static str,
    sql: String,
    expect: Value,
}

fn cell(column: &'static str, sql: &str, expect: Value) -> Cell {
    Cell {
        column,
        sql: sql.to_owned(),
        expect,
    }
}

fn b64(bytes: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

const ODDITY: &str = "CREATE TABLE oddity (
    Id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    DateTStamp timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    c_latin1 varchar(50) CHARACTER SET latin1 NULL,
    c_text mediumtext CHARACTER SET utf8mb4 NULL,
    c_blob longblob NULL,
    c_varbin varbinary(16) NULL,
    c_bin binary(4) NULL,
    c_dec decimal(20,2) NULL,
    c_bit1 bit(1) NULL,
    c_bit8 bit(8) NULL,
    c_enum enum('a','b') NULL,
    c_set set('x','y','z') NULL,
    c_json json NULL,
    c_year year NULL,
    c_time time NULL,
    c_double double NULL,
    c_float float NULL,
    c_ubig bigint unsigned NULL,
    c_tiny tinyint(1) NULL,
    c_date date NULL,
    c_dt datetime NULL,
    KEY DateTStamp (DateTStamp)
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4";

fn cells() -> Vec<Cell> {
    let big_text = "y".repeat(200_000);
    vec![
        cell("c_latin1", "_latin1 X'E9'", json!("é")),
        cell("c_latin1", "_latin1 X'80'", json!("€")),
        cell("c_text", "'日本語 😀'", json!("日本語 😀")),
        cell("c_text", "NULL", Value::Null),
        cell("c_text", &format!("'{big_text}'"), json!(big_text)),
        cell(
            "c_text",
            "'{\"not\": \"json\"'",
            json!("{\"not\": \"json\""),
        ),
        cell("c_blob", "X'00FF10'", b64(&[0, 255, 16])),
        cell("c_blob", "REPEAT('x', 1048576)", b64(&vec![b'x'; 1 << 20])),
        cell("c_blob", "NULL", Value::Null),
        cell("c_varbin", "X'DEADBEEF'", b64(&[0xDE, 0xAD, 0xBE, 0xEF])),
        cell("c_bin", "X'01'", b64(&[1, 0, 0, 0])),
        cell("c_dec", "12.50", json!(12.5)),
        cell("c_dec", "-0.01", json!(-0.01)),
        cell(
            "c_dec",
            "123456789012345678.99",
            json!("123456789012345678.99"),
        ),
        cell("c_bit1", "b'1'", json!(1)),
        cell("c_bit8", "b'10000001'", json!(129)),
        cell("c_enum", "'b'", json!("b")),
        cell("c_set", "'x,z'", json!("x,z")),
        cell("c_json", "'{\"a\": [1, 2]}'", json!("{\"a\": [1, 2]}")),
        cell("c_year", "2024", json!(2024)),
        cell("c_time", "'-12:30:00'", json!("-12:30:00")),
        cell("c_time", "'838:59:59'", json!("838:59:59")),
        cell("c_double", "1e300", json!(1e300)),
        cell("c_double", "0.1", json!(0.1)),
        cell("c_float", "1.5", json!(1.5)),
        cell("c_ubig", "18446744073709551615", json!(u64::MAX)),
        cell("c_tiny", "1", json!(1)),
        cell("c_date", "'0000-00-00'", json!("0001-01-01")),
        cell("c_date", "'2024-02-29'", json!("2024-02-29")),
        cell(
            "c_dt",
            "'0000-00-00 00:00:00'",
            json!("0001-01-01 00:00:00"),
        ),
        cell(
            "c_dt",
            "'1000-01-01 00:00:00'",
            json!("0001-01-01 00:00:00"),
        ),
        cell(
            "c_dt",
            "'9999-12-31 23:59:59'",
            json!("9999-12-31 23:59:59"),
        ),
        cell(
            "c_dt",
            "'2024-03-10 02:30:00.750'",
            json!("2024-03-10 02:30:00"),
        ),
    ]
}

#[tokio::test]
async fn every_odd_column_type_arrives_encoded_as_documented() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    db.script(ODDITY).await;
    let cells = cells();
    let stamp = db.ago(30).await;
    // Zero dates need a permissive mode, as old Open Dental databases have.
    let mut script = String::from("SET SESSION sql_mode = ''; ");
    for c in &cells {
        script.push_str(&format!(
            "INSERT INTO oddity ({}, DateTStamp) VALUES ({}, '{stamp}'); ",
            c.column, c.sql
        ));
    }
    db.script(&script).await;
    let url = rx.url("/");
    let id = db
        .subscribe(Sub {
            table: "oddity",
            ..Sub::new(&url)
        })
        .await;
    let before = db.watermark(id).await;

    let summary = run_once(&db, settings()).await;

    assert_eq!(summary.failed, 0);
    assert!(db.watermark(id).await > before);
    let rows: Vec<Value> = rx.accepted().iter().flat_map(|r| r.rows()).collect();
    assert_eq!(rows.len(), cells.len(), "every row arrived");
    for (row, c) in rows.iter().zip(&cells) {
        let shown = if c.sql.len() > 60 {
            &c.sql[..60]
        } else {
            &c.sql
        };
        assert_eq!(row[c.column], c.expect, "{} = {shown}", c.column);
    }
    println!("{} column cases", cells.len());
    db.drop().await;
}

/// SQLite keeps any bytes in a TEXT value; invalid UTF-8 arrives with
/// U+FFFD in place of the bad bytes, and the window still completes.
#[tokio::test]
async fn invalid_utf8_in_sqlite_text_is_replaced_not_fatal() {
    let db = TestDb::sqlite().await;
    let rx = Receiver::start().await.unwrap();
    let stamp = db.ago(30).await;
    db.exec(
        "INSERT INTO appointment (PatNum, AptStatus, Note, DateTStamp) VALUES (1, 1, CAST(X'C328E9' AS TEXT), ?)",
        &[&stamp],
    )
    .await;
    let url = rx.url("/");
    let id = db.subscribe(Sub::new(&url)).await;
    let before = db.watermark(id).await;

    run_once(&db, settings()).await;

    let rows: Vec<Value> = rx.accepted().iter().flat_map(|r| r.rows()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Note"], json!("\u{FFFD}(\u{FFFD}"));
    assert!(db.watermark(id).await > before);
    db.drop().await;
}
