//! Hostile or broken data: subscription rows full of garbage, and watched
//! rows with every odd column type MariaDB (and SQLite) can hold. Each case
//! is a row of a table with its expected outcome. Nothing may panic, a bad
//! subscription must not stop a good one, a refused one must say why, and
//! every watched row must arrive, encoded as `src/db/encode.rs` documents.
//!
//! The subscription cases run the real binary (`rowhook --log-format json
//! run --once`), so the reasons checked are the ones an operator reads and
//! a panic would show as a line that is not JSON.

use base64::Engine;
use rowhook::config::Settings;
use rowhook::receiver::{Receiver, Request};
use serde_json::{json, Value};

use crate::helpers::{run, run_once, settings, Backend, Sub, TestDb, WORKSTATION};

// ---------------------------------------------------------------------------
// Subscription rows
// ---------------------------------------------------------------------------

/// What should become of a subscription row.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// It runs: every row of its table arrives at its URL, `DateTimeStart`
    /// advances, and no ERROR names it.
    Delivers,
    /// Refused: an ERROR names the subscription with a reason containing
    /// this text; nothing is sent and `DateTimeStart` stays.
    Refused(&'static str),
    /// Valid, not run, and said at INFO with this text (UI event, expired).
    Ignored(&'static str),
    /// Valid, not run now, nothing to say (not due, another workstation).
    Quiet,
}

/// Which backends a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    Both,
    MySql,
    Sqlite,
}

/// The stored `EndPointUrl`, made from the receiver's URL for the case.
type UrlOf = fn(&str) -> String;

/// One garbage subscription: which column gets which value.
struct Case {
    name: &'static str,
    on: On,
    url: UrlOf,
    table: String,
    workstation: String,
    key: String,
    polling: i64,
    start: Option<&'static str>,
    stop: &'static str,
    /// SQL run after the insert, for values a text bind cannot carry;
    /// `{id}` is the subscription's number, `{url}` the receiver's URL.
    fixup: Option<&'static str>,
    expect: Expect,
}

fn case(name: &'static str, expect: Expect) -> Case {
    Case {
        name,
        on: On::Both,
        url: |u| u.to_owned(),
        table: "Appointment".to_owned(),
        workstation: WORKSTATION.to_owned(),
        key: String::new(),
        polling: 1,
        start: None,
        stop: "0001-01-01 00:00:00",
        fixup: None,
        expect,
    }
}

/// Cases that fit Open Dental's `varchar(255)` columns.
fn subscription_cases() -> Vec<Case> {
    use Expect::*;
    let table = |t: &str| t.to_owned();
    vec![
        // PollingSeconds
        Case {
            polling: -1,
            ..case("negative PollingSeconds", Refused("negative"))
        },
        Case {
            polling: i64::from(i32::MIN),
            ..case("PollingSeconds at int's minimum", Refused("negative"))
        },
        Case {
            polling: 0,
            ..case("zero PollingSeconds: due every tick", Delivers)
        },
        Case {
            polling: i64::from(i32::MAX),
            ..case("PollingSeconds at int's maximum: due in 68 years", Quiet)
        },
        Case {
            on: On::Sqlite,
            polling: i64::MAX,
            ..case("PollingSeconds at i64's maximum: never due", Quiet)
        },
        Case {
            on: On::Sqlite,
            polling: i64::MIN,
            ..case("PollingSeconds at i64's minimum", Refused("negative"))
        },
        // EndPointUrl
        Case {
            url: |_| String::new(),
            ..case("empty URL", Refused("not a valid URL"))
        },
        Case {
            url: |_| "ftp://example.com/x".into(),
            ..case("ftp scheme", Refused("scheme \"ftp\" is not http or https"))
        },
        Case {
            url: |_| "file:///etc/passwd".into(),
            ..case("file scheme", Refused("scheme \"file\" is not http or https"))
        },
        Case {
            url: |_| "javascript:alert(1)".into(),
            ..case("javascript scheme", Refused("not http or https"))
        },
        Case {
            url: |_| "mailto:x@example.com".into(),
            ..case("mailto scheme", Refused("not http or https"))
        },
        Case {
            url: |_| "data:text/plain,hello".into(),
            ..case("data scheme", Refused("not http or https"))
        },
        Case {
            url: |_| "http://exa mple.com/".into(),
            ..case("space in the host", Refused("not a valid URL"))
        },
        Case {
            url: |_| "not a url at all".into(),
            ..case("no scheme", Refused("not a valid URL"))
        },
        Case {
            url: |_| "http://".into(),
            ..case("no host", Refused("not a valid URL"))
        },
        Case {
            url: |u| format!("  {u}\t "),
            ..case("spaces around the URL", Delivers)
        },
        Case {
            url: |u| format!("{u}/with space"),
            ..case("space in the path: sent percent-encoded", Delivers)
        },
        Case {
            url: |u| u.replacen("http", "HTTP", 1),
            ..case("scheme in capitals", Delivers)
        },
        Case {
            url: |u| format!("{u}\r\nX-Injected: 1"),
            ..case("CR LF in the URL: dropped, no header injected", Delivers)
        },
        // CustomerKey
        Case {
            key: "abc\r\nX-Injected: 1".into(),
            ..case("header injection in CustomerKey", Refused("HTTP header"))
        },
        Case {
            key: "abc\nX-Injected: 1".into(),
            ..case("bare newline in CustomerKey", Refused("HTTP header"))
        },
        Case {
            key: "k\u{7f}".into(),
            ..case("DEL in CustomerKey", Refused("HTTP header"))
        },
        Case {
            key: "k\0".into(),
            ..case("NUL in CustomerKey", Refused("HTTP header"))
        },
        Case {
            key: "clé-ключ".into(),
            ..case("non-ASCII CustomerKey: sent byte for byte", Delivers)
        },
        // WatchTable
        Case {
            table: table("NoSuchTable"),
            ..case("unknown table", Refused("does not exist"))
        },
        Case {
            table: table("appointment; DROP TABLE patient"),
            ..case("injection with ;", Refused("not a table name"))
        },
        Case {
            table: table("`appointment`"),
            ..case("backticks", Refused("not a table name"))
        },
        Case {
            table: table("appointment` WHERE 1=1 -- "),
            ..case("backtick breaking out of quoting", Refused("not a table name"))
        },
        Case {
            table: table("appointment' OR '1'='1"),
            ..case("single quotes", Refused("not a table name"))
        },
        Case {
            table: table("\"appointment\""),
            ..case("double quotes", Refused("not a table name"))
        },
        Case {
            table: table("information_schema.tables"),
            ..case("another schema", Refused("not a table name"))
        },
        Case {
            table: table("Аppointment"),
            ..case("Cyrillic lookalike A", Refused("not a table name"))
        },
        Case {
            table: table("ａｐｐｏｉｎｔｍｅｎｔ"),
            ..case("fullwidth lookalike", Refused("not a table name"))
        },
        Case {
            table: table("appoint\u{200B}ment"),
            ..case("zero-width space inside", Refused("not a table name"))
        },
        Case {
            table: table("appointment\0"),
            ..case("NUL byte", Refused("not a table name"))
        },
        Case {
            table: table("appoint_ent"),
            ..case("LIKE wildcard is not a wildcard", Refused("does not exist"))
        },
        Case {
            table: table("rowhook_secret"),
            ..case("rowhook's signing secrets", Refused("never watched"))
        },
        Case {
            table: table("ApiSubscription"),
            ..case("every integrator's CustomerKey", Refused("never watched"))
        },
        Case {
            table: table("nostamp"),
            ..case("a table without DateTStamp", Refused("no change column"))
        },
        Case {
            table: table("textkey"),
            ..case("a table without an integer key", Refused("integer primary key"))
        },
        Case {
            table: table("  Appointment  "),
            ..case("spaces around an Open Dental name", Delivers)
        },
        Case {
            table: table("APPOINTMENT"),
            ..case("Open Dental name in capitals", Delivers)
        },
        Case {
            table: table("patient\t"),
            ..case("trailing tab", Delivers)
        },
        Case {
            table: table("payment"),
            ..case("a table by its own name", Delivers)
        },
        Case {
            table: table(" PAYMENT "),
            ..case("a table by its own name, other case, spaces", Delivers)
        },
        Case {
            table: table(""),
            ..case("blank WatchTable: a UI event", Ignored("UI-event"))
        },
        Case {
            table: table(" \t "),
            ..case("whitespace WatchTable: a UI event", Ignored("UI-event"))
        },
        // Workstation
        Case {
            workstation: "O'Brien-PC\" OR 1=1 --".into(),
            ..case("quotes in Workstation", Quiet)
        },
        Case {
            workstation: "TEST-WS'; DROP TABLE patient; --".into(),
            ..case("our name, then an injection", Quiet)
        },
        Case {
            workstation: "TEST_WS".into(),
            ..case("LIKE wildcard in Workstation", Quiet)
        },
        Case {
            workstation: "TEST\u{7}WS".into(),
            ..case("control character in Workstation", Quiet)
        },
        Case {
            workstation: "TEST-WS\0".into(),
            ..case("NUL after our name", Quiet)
        },
        Case {
            workstation: "TEST-WS\r\n".into(),
            ..case("CR LF after our own name", Delivers)
        },
        Case {
            workstation: "test-ws".into(),
            ..case("our name in lower case", Delivers)
        },
        Case {
            workstation: "   ".into(),
            ..case("blank Workstation: every agent", Delivers)
        },
        // DateTimeStart, DateTimeStop
        Case {
            start: Some("0000-00-00 00:00:00"),
            ..case("zero DateTimeStart: from the beginning", Delivers)
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
            stop: "1000-01-01 00:00:00",
            ..case("DateTimeStop in the year 1000: never expires", Delivers)
        },
        Case {
            stop: "9999-12-31 23:59:59",
            ..case("DateTimeStop at the end of time", Delivers)
        },
        Case {
            stop: "2000-01-01 00:00:00",
            ..case("expired long ago", Ignored("expired"))
        },
        Case {
            on: On::MySql,
            fixup: Some(
                "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'; \
                 UPDATE apisubscription SET DateTimeStart = '2024-02-30 10:00:00' \
                 WHERE ApiSubscriptionNum = {id}; SET SESSION sql_mode = DEFAULT;",
            ),
            ..case("DateTimeStart on 30 February", Refused("DateTimeStart"))
        },
        Case {
            on: On::MySql,
            fixup: Some(
                "UPDATE apisubscription SET DateTimeStop = '2024-00-00 00:00:00' \
                 WHERE ApiSubscriptionNum = {id};",
            ),
            ..case("DateTimeStop with month and day zero", Refused("DateTimeStop"))
        },
        Case {
            on: On::Sqlite,
            start: Some("yesterday"),
            ..case("DateTimeStart that is not a date", Refused("DateTimeStart"))
        },
        Case {
            on: On::Sqlite,
            start: Some("2024-03-01T10:00:00"),
            ..case("DateTimeStart with a T", Refused("DateTimeStart"))
        },
        Case {
            on: On::Sqlite,
            stop: "",
            ..case("empty DateTimeStop", Refused("DateTimeStop"))
        },
        // Bytes that are not text (SQLite keeps whatever it is given).
        Case {
            on: On::Sqlite,
            fixup: Some(
                "UPDATE apisubscription SET EndPointUrl = CAST(X'687474703A2F2F3132372E302E302E312F' || X'FF' AS TEXT) \
                 WHERE ApiSubscriptionNum = {id};",
            ),
            ..case("invalid UTF-8 in EndPointUrl", Refused("EndPointUrl holds bytes that are not UTF-8"))
        },
        Case {
            on: On::Sqlite,
            fixup: Some(
                "UPDATE apisubscription SET EndPointUrl = CAST('{url}' AS BLOB) \
                 WHERE ApiSubscriptionNum = {id};",
            ),
            ..case("EndPointUrl stored as a BLOB", Delivers)
        },
        Case {
            on: On::Sqlite,
            fixup: Some(
                "UPDATE apisubscription SET CustomerKey = CAST(X'6B6579E9' AS TEXT) \
                 WHERE ApiSubscriptionNum = {id};",
            ),
            ..case("invalid UTF-8 in CustomerKey", Refused("CustomerKey holds bytes that are not UTF-8"))
        },
        Case {
            on: On::Sqlite,
            fixup: Some(
                "UPDATE apisubscription SET WatchTable = CAST(X'6170706F696E746D656E74FF' AS TEXT) \
                 WHERE ApiSubscriptionNum = {id};",
            ),
            ..case("invalid UTF-8 in WatchTable", Refused("not a table name"))
        },
        Case {
            on: On::Sqlite,
            fixup: Some(
                "UPDATE apisubscription SET Workstation = CAST(X'544553542D5753FF' AS TEXT) \
                 WHERE ApiSubscriptionNum = {id};",
            ),
            ..case("invalid UTF-8 in Workstation", Quiet)
        },
    ]
}

/// Values too long for Open Dental's `varchar(255)`: SQLite holds them; on
/// MariaDB they run against a hand-altered `apisubscription` (TEXT columns
/// in a binary collation, which sqlx will not read as `String`).
fn long_cases() -> Vec<Case> {
    use Expect::*;
    vec![
        Case {
            url: |u| format!("{u}?pad={}", "a".repeat(10_000)),
            ..case("10 KB URL", Delivers)
        },
        Case {
            key: "k".repeat(10_000),
            ..case("10 KB CustomerKey", Delivers)
        },
        Case {
            workstation: "W".repeat(10_000),
            ..case("10 KB Workstation", Quiet)
        },
        Case {
            workstation: format!("{WORKSTATION}{}", "\u{1}".repeat(10_000)),
            ..case("our name, then 10 KB of control characters", Quiet)
        },
        Case {
            table: "t".repeat(10_000),
            ..case("10 KB WatchTable", Refused("not a table name"))
        },
        Case {
            table: "📅".into(),
            ..case("emoji WatchTable", Refused("not a table name"))
        },
    ]
}

/// The one-line JSON events the binary logged.
fn log_events(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line:?}"))
        })
        .collect()
}

/// Requests that reached `/case/{n}` (with anything after it but a digit).
fn requests_for(rx: &Receiver, n: usize) -> Vec<Request> {
    let prefix = format!("/case/{n}");
    rx.requests()
        .into_iter()
        .filter(|r| {
            r.target
                .strip_prefix(&prefix)
                .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect()
}

/// The key column and row count the fixture gives each watched table.
fn rows_of(table: &str) -> (&'static str, usize) {
    match table.trim().to_ascii_lowercase().as_str() {
        "patient" => ("PatNum", 1),
        "payment" => ("PayNum", 1),
        _ => ("AptNum", 2),
    }
}

/// Runs `cases` (those for `backend`) beside one good subscription through
/// the real binary, twice; checks each case's outcome and returns how many
/// ran. `alter` is run on the fresh database first.
async fn run_subscription_cases(backend: Backend, cases: Vec<Case>, alter: Option<&str>) -> usize {
    let db = TestDb::new(backend).await;
    db.script(
        "CREATE TABLE nostamp (Id bigint NOT NULL PRIMARY KEY, Note text NULL); \
         CREATE TABLE textkey (Code varchar(10) NOT NULL PRIMARY KEY, DateTStamp timestamp NULL);",
    )
    .await;
    if let Some(sql) = alter {
        db.script(sql).await;
    }
    let rx = Receiver::start().await.unwrap();
    let stamp = db.ago(30).await;
    db.insert_appointments(2, &stamp).await;
    db.exec(
        "INSERT INTO patient (LName, FName, DateTStamp) VALUES ('Doe', 'Jane', ?)",
        &[&stamp],
    )
    .await;
    db.exec(
        "INSERT INTO payment (PayAmt, PayNote, SecDateTEdit) VALUES (12.5, 'check', ?)",
        &[&stamp],
    )
    .await;
    let good_url = rx.url("/good");
    let good = db.subscribe(Sub::new(&good_url)).await;
    let good_before = db.watermark(good).await;

    let wanted = |c: &Case| {
        matches!(
            (c.on, backend),
            (On::Both, _) | (On::MySql, Backend::MySql) | (On::Sqlite, Backend::Sqlite)
        )
    };
    let cases: Vec<Case> = cases.into_iter().filter(wanted).collect();
    let mut ids = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let receiver_url = rx.url(&format!("/case/{n}"));
        let url = (c.url)(&receiver_url);
        let id = db
            .subscribe(Sub {
                url: &url,
                table: &c.table,
                workstation: &c.workstation,
                key: &c.key,
                polling: c.polling,
                start: c.start,
                stop: c.stop,
            })
            .await;
        if let Some(fixup) = c.fixup {
            let sql = fixup
                .replace("{id}", &id.to_string())
                .replace("{url}", &receiver_url);
            db.script(&sql).await;
        }
        ids.push(id);
    }
    let mut before = Vec::new();
    for id in &ids {
        before.push(db.watermark(*id).await);
    }
    let (code, _, stderr) = run(Some(&db.url), &["--log-format", "json", "run", "--once"]).await;

    assert_eq!(code, 0, "{backend:?}: no delivery failed\n{stderr}");
    assert!(!stderr.contains("panicked"), "{backend:?}: {stderr}");
    let events = log_events(&stderr);
    let about = |id: i64| -> Vec<&Value> {
        let id = id.to_string();
        events
            .iter()
            .filter(|e| e["subscription"].as_str() == Some(id.as_str()))
            .filter(|e| e["level"] != "DEBUG" && e["level"] != "TRACE")
            .collect()
    };

    let good_rows: usize = rx
        .accepted()
        .iter()
        .filter(|r| r.target == "/good")
        .map(|r| r.rows().len())
        .sum();
    assert_eq!(
        good_rows, 2,
        "{backend:?}: the good subscription ran amid the garbage"
    );
    assert!(db.watermark(good).await > good_before, "{backend:?}");
    assert!(
        rx.requests()
            .iter()
            .all(|r| !r.headers.contains_key("x-injected")),
        "{backend:?}: no header was injected"
    );

    for (n, (c, id)) in cases.iter().zip(&ids).enumerate() {
        let label = format!("{backend:?} case {n} ({}), subscription {id}", c.name);
        let sent = requests_for(&rx, n);
        let logged = about(*id);
        let errors: Vec<&&Value> = logged.iter().filter(|e| e["level"] == "ERROR").collect();
        let after = db.watermark(*id).await;
        match c.expect {
            Expect::Delivers => {
                assert!(errors.is_empty(), "{label}: {errors:?}");
                let (key_column, count) = rows_of(&c.table);
                let keys: Vec<i64> = sent
                    .iter()
                    .flat_map(Request::rows)
                    .filter_map(|row| row[key_column].as_i64())
                    .collect();
                assert_eq!(keys.len(), count, "{label}: every row arrived: {sent:?}");
                assert!(sent.iter().all(Request::accepted), "{label}");
                let auth: Vec<Option<&[u8]>> = sent
                    .iter()
                    .map(|r| r.headers.get("authorization").map(|v| v.as_bytes()))
                    .collect();
                let want = (!c.key.is_empty()).then_some(c.key.as_bytes());
                assert!(
                    auth.iter().all(|a| *a == want),
                    "{label}: CustomerKey sent as stored"
                );
                assert!(
                    after > before[n],
                    "{label}: DateTimeStart advanced from {:?}",
                    before[n]
                );
            }
            Expect::Refused(why) => {
                assert!(
                    errors
                        .iter()
                        .any(|e| e["reason"].as_str().is_some_and(|r| r.contains(why))),
                    "{label}: an ERROR saying {why:?}; logged {logged:?}"
                );
                assert!(sent.is_empty(), "{label}: nothing sent");
                assert_eq!(after, before[n], "{label}");
            }
            Expect::Ignored(why) => {
                assert!(errors.is_empty(), "{label}: {errors:?}");
                assert!(
                    logged.iter().any(|e| e["level"] == "INFO"
                        && e["reason"].as_str().is_some_and(|r| r.contains(why))),
                    "{label}: an INFO saying {why:?}; logged {logged:?}"
                );
                assert!(sent.is_empty(), "{label}: nothing sent");
                assert_eq!(after, before[n], "{label}");
            }
            Expect::Quiet => {
                assert!(logged.is_empty(), "{label}: {logged:?}");
                assert!(sent.is_empty(), "{label}: nothing sent");
                assert_eq!(after, before[n], "{label}");
            }
        }
    }

    // A second pass sends nothing: every delivered window advanced (zero
    // and year-1000 starts included), and nothing refused was retried into
    // a delivery.
    let sent = rx.requests().len();
    let (code, _, stderr) = run(Some(&db.url), &["--log-format", "json", "run", "--once"]).await;
    assert_eq!(code, 0, "{backend:?}: {stderr}");
    log_events(&stderr);
    assert_eq!(
        rx.requests().len(),
        sent,
        "{backend:?}: no window was sent twice"
    );
    db.drop().await;
    cases.len()
}

#[tokio::test]
async fn garbage_subscription_rows_are_refused_with_a_reason_and_the_good_one_runs() {
    let mut total = 0;
    for backend in [Backend::MySql, Backend::Sqlite] {
        total += run_subscription_cases(backend, subscription_cases(), None).await;
    }
    println!("{total} subscription cases");
}

#[tokio::test]
async fn ten_kilobyte_values_and_a_binary_collation_are_handled() {
    let widened = "ALTER TABLE apisubscription \
        MODIFY EndPointUrl text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
        MODIFY Workstation text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
        MODIFY CustomerKey text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
        MODIFY WatchTable text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL";
    let mut total = run_subscription_cases(Backend::MySql, long_cases(), Some(widened)).await;
    total += run_subscription_cases(Backend::Sqlite, long_cases(), None).await;
    println!("{total} long-value cases");
}

// ---------------------------------------------------------------------------
// Watched rows
// ---------------------------------------------------------------------------

/// One watched row: the column written (`*` for none: every column NULL),
/// the SQL value written to it, what the JSON must hold. Every other
/// column of the row is NULL and must arrive as `null`.
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

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A table with a column of each odd type, MyISAM like most of Open
/// Dental's.
const ODDITY: &str = "CREATE TABLE oddity (
    Id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    DateTStamp timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    c_latin1 varchar(50) CHARACTER SET latin1 NULL,
    c_utf8mb3 varchar(50) CHARACTER SET utf8mb3 NULL,
    c_ucs2 varchar(10) CHARACTER SET ucs2 NULL,
    c_char char(10) NULL,
    c_text mediumtext CHARACTER SET utf8mb4 NULL,
    c_blob longblob NULL,
    c_varbin varbinary(16) NULL,
    c_bin binary(4) NULL,
    c_tinybin tinytext CHARACTER SET binary NULL,
    c_dec decimal(20,2) NULL,
    c_dec65 decimal(65,30) NULL,
    c_bit1 bit(1) NULL,
    c_bit8 bit(8) NULL,
    c_bit64 bit(64) NULL,
    c_enum enum('a','b') NULL,
    c_set set('x','y','z') NULL,
    c_json json NULL,
    c_year year NULL,
    c_time time NULL,
    c_time6 time(6) NULL,
    c_double double NULL,
    c_float float NULL,
    c_ubig bigint unsigned NULL,
    c_big bigint NULL,
    c_tiny tinyint(1) NULL,
    c_date date NULL,
    c_dt datetime NULL,
    c_ts timestamp NULL DEFAULT NULL,
    c_point point NULL,
    c_geom geometry NULL,
    c_inet6 inet6 NULL,
    c_uuid uuid NULL,
    KEY DateTStamp (DateTStamp)
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4";

fn mysql_cells() -> Vec<Cell> {
    let mb = "é".repeat(1 << 19);
    // MariaDB's geometry: SRID (4 bytes LE), then WKB.
    let point = unhex("000000000101000000000000000000F03F0000000000000040");
    let mut line = vec![0, 0, 0, 0, 1, 2, 0, 0, 0, 2, 0, 0, 0];
    for x in [0f64, 0.0, 1.0, 1.0] {
        line.extend(x.to_le_bytes());
    }
    vec![
        cell("*", "", Value::Null),
        // Text in other character sets: the server converts it.
        cell("c_latin1", "_latin1 X'E9'", json!("é")),
        cell("c_latin1", "_latin1 X'80'", json!("€")),
        cell("c_latin1", "_latin1 X'81'", json!("\u{81}")),
        cell("c_ucs2", "'Ω'", json!("Ω")),
        cell("c_char", "'ab  '", json!("ab")),
        // MariaDB will not store invalid UTF-8: outside strict mode it
        // keeps '?' for each bad sequence; the row arrives as stored.
        cell("c_text", "X'C328E9'", json!("?(?")),
        cell("c_utf8mb3", "'a😀b'", json!("a?b")),
        cell("c_text", "'日本語 😀'", json!("日本語 😀")),
        cell("c_text", "X'6100621B7F'", json!("a\u{0}b\u{1b}\u{7f}")),
        cell("c_text", "''", json!("")),
        cell("c_text", "REPEAT('é', 524288)", json!(mb)),
        cell(
            "c_text",
            "'{\"not\": \"json\"'",
            json!("{\"not\": \"json\""),
        ),
        // Binary: base64.
        cell("c_blob", "X'00FF10'", b64(&[0, 255, 16])),
        cell("c_blob", "REPEAT('x', 1048576)", b64(&vec![b'x'; 1 << 20])),
        cell("c_varbin", "X'DEADBEEF'", b64(&[0xDE, 0xAD, 0xBE, 0xEF])),
        cell("c_varbin", "''", json!("")),
        cell("c_bin", "X'01'", b64(&[1, 0, 0, 0])),
        cell("c_tinybin", "X'E9'", b64(&[0xE9])),
        cell("c_point", "POINT(1, 2)", b64(&point)),
        cell(
            "c_geom",
            "ST_GeomFromText('LINESTRING(0 0,1 1)')",
            b64(&line),
        ),
        // DECIMAL: a number when that is the same value, else exact text.
        cell("c_dec", "12.50", json!(12.5)),
        cell("c_dec", "-0.01", json!(-0.01)),
        cell("c_dec", "0.00", json!(0.0)),
        cell(
            "c_dec",
            "123456789012345678.99",
            json!("123456789012345678.99"),
        ),
        cell(
            "c_dec65",
            "12345678901234567890123456789012345.123456789012345678901234567890",
            json!("12345678901234567890123456789012345.123456789012345678901234567890"),
        ),
        // BIT: its unsigned value.
        cell("c_bit1", "b'1'", json!(1)),
        cell("c_bit1", "b'0'", json!(0)),
        cell("c_bit8", "b'10000001'", json!(129)),
        cell(
            "c_bit64",
            &format!("b'{}'", "1".repeat(64)),
            json!(u64::MAX),
        ),
        // ENUM, SET, JSON: text as the server prints it.
        cell("c_enum", "'b'", json!("b")),
        cell("c_enum", "'zzz'", json!("")),
        cell("c_set", "'z,x'", json!("x,z")),
        cell("c_set", "''", json!("")),
        cell("c_json", "'{\"a\": [1, 2]}'", json!("{\"a\": [1, 2]}")),
        cell("c_json", "'\"\\\\u00e9\"'", json!("\"\\u00e9\"")),
        cell("c_year", "2024", json!(2024)),
        cell("c_year", "0", json!(0)),
        // TIME: text, including negative and past 24 hours.
        cell("c_time", "'-12:30:00'", json!("-12:30:00")),
        cell("c_time", "'838:59:59'", json!("838:59:59")),
        cell("c_time", "'-838:59:59'", json!("-838:59:59")),
        cell("c_time6", "'12:00:00.5'", json!("12:00:00.500000")),
        // Floating point: the same double.
        cell("c_double", "1e300", json!(1e300)),
        cell("c_double", "0.1", json!(0.1)),
        cell("c_double", "1.7976931348623157e308", json!(f64::MAX)),
        cell("c_double", "5e-324", json!(5e-324)),
        cell("c_double", "-0e0", json!(0)),
        cell("c_float", "1.5", json!(1.5)),
        cell("c_float", "3.4e38", json!(3.4e38)),
        // Integers: exact.
        cell("c_ubig", "18446744073709551615", json!(u64::MAX)),
        cell("c_big", "-9223372036854775808", json!(i64::MIN)),
        cell("c_tiny", "1", json!(1)),
        cell("c_tiny", "-128", json!(-128)),
        // Dates: Open Dental's formats; zero, invalid and pre-1880 as its
        // minimum.
        cell("c_date", "'0000-00-00'", json!("0001-01-01")),
        cell("c_date", "'2024-00-00'", json!("0001-01-01")),
        cell("c_date", "'2024-02-29'", json!("2024-02-29")),
        cell("c_date", "'9999-12-31'", json!("9999-12-31")),
        cell(
            "c_dt",
            "'0000-00-00 00:00:00'",
            json!("0001-01-01 00:00:00"),
        ),
        cell(
            "c_dt",
            "'2024-02-30 10:00:00'",
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
        cell("c_ts", "0", json!("0001-01-01 00:00:00")),
        // MariaDB's own types: text.
        cell("c_inet6", "'::1'", json!("::1")),
        cell(
            "c_uuid",
            "'123e4567-e89b-12d3-a456-426655440000'",
            json!("123e4567-e89b-12d3-a456-426655440000"),
        ),
    ]
}

/// Runs one subscription over `table`, into which `cells` were written one
/// row each (in key order), and checks every row: its cell as expected,
/// every other column `null`, the run error-free, `DateTimeStart` moved.
async fn check_cells(db: &TestDb, table: &str, cells: &[Cell], key: &str, stamp: &str) -> usize {
    let rx = Receiver::start().await.unwrap();
    let url = rx.url("/");
    let id = db
        .subscribe(Sub {
            table,
            ..Sub::new(&url)
        })
        .await;
    let before = db.watermark(id).await;

    // The test receiver takes bodies up to axum's default 2 MB: one huge
    // row per request.
    let one_huge_row_each = Settings {
        max_request_bytes: 1_500_000,
        ..settings()
    };
    let summary = run_once(db, one_huge_row_each).await;

    assert_eq!(summary.failed, 0, "{:?}: the window completed", db.backend);
    assert!(
        db.watermark(id).await > before,
        "{:?}: DateTimeStart moved",
        db.backend
    );
    let rows: Vec<Value> = rx.accepted().iter().flat_map(|r| r.rows()).collect();
    assert_eq!(
        rows.len(),
        cells.len(),
        "{:?}: every row arrived",
        db.backend
    );
    for (n, (row, c)) in rows.iter().zip(cells).enumerate() {
        assert_eq!(row[key], json!(n + 1), "rows arrive in key order");
        let shown: String = c.sql.chars().take(60).collect();
        let object = row.as_object().unwrap();
        for (column, value) in object {
            if column == key || column == "DateTStamp" {
                continue;
            }
            let want = if column == c.column {
                &c.expect
            } else {
                &Value::Null
            };
            assert_eq!(
                value, want,
                "{:?} {column} in the row for {} = {shown}",
                db.backend, c.column
            );
        }
        assert_eq!(row["DateTStamp"], json!(stamp));
        if c.column != "*" {
            assert!(object.contains_key(c.column), "{}", c.column);
        }
    }
    cells.len()
}

#[tokio::test]
async fn every_odd_mariadb_column_type_arrives_encoded_as_documented() {
    let db = TestDb::mysql().await;
    db.script(ODDITY).await;
    let cells = mysql_cells();
    let stamp = db.ago(30).await;
    // Zero and invalid dates, truncated enums and unconvertible text need a
    // permissive mode, as old Open Dental databases have.
    let mut script = String::from("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'; ");
    for c in &cells {
        if c.column == "*" {
            script.push_str(&format!(
                "INSERT INTO oddity (DateTStamp) VALUES ('{stamp}'); "
            ));
        } else {
            script.push_str(&format!(
                "INSERT INTO oddity ({}, DateTStamp) VALUES ({}, '{stamp}'); ",
                c.column, c.sql
            ));
        }
    }
    script.push_str("SET SESSION sql_mode = DEFAULT;");
    db.script(&script).await;

    let n = check_cells(&db, "oddity", &cells, "Id", &stamp).await;
    println!("{n} MariaDB column cases");
    db.drop().await;
}

fn sqlite_cells() -> Vec<Cell> {
    vec![
        cell("*", "", Value::Null),
        // TEXT holds any bytes: invalid UTF-8 becomes U+FFFD.
        cell(
            "c_text",
            "CAST(X'C328E9' AS TEXT)",
            json!("\u{FFFD}(\u{FFFD}"),
        ),
        cell("c_text", "CAST(X'610062' AS TEXT)", json!("a\u{0}b")),
        cell("c_text", "X'00FF'", b64(&[0, 255])),
        cell(
            "c_text",
            "replace(hex(zeroblob(524288)), '00', 'é')",
            json!("é".repeat(1 << 19)),
        ),
        // Values keep their own storage class, whatever the column says.
        cell("c_int", "9223372036854775807", json!(i64::MAX)),
        cell("c_int", "(-9223372036854775807 - 1)", json!(i64::MIN)),
        cell("c_int", "'abc'", json!("abc")),
        cell("c_int", "3.5", json!(3.5)),
        cell("c_real", "0.1", json!(0.1)),
        cell("c_real", "1e300", json!(1e300)),
        cell("c_real", "5", json!(5)),
        // JSON has no infinity: the text SQLite's double prints as.
        cell("c_real", "9e999", json!("inf")),
        cell("c_real", "-9e999", json!("-inf")),
        cell("c_blob", "X''", json!("")),
        cell("c_blob", "zeroblob(3)", b64(&[0, 0, 0])),
        cell("c_date", "'yesterday'", json!("0001-01-01")),
        cell("c_date", "'2024-02-29'", json!("2024-02-29")),
        cell("c_date", "20240229", json!(20_240_229)),
        cell(
            "c_dt",
            "'2024-03-01 10:00:00.123'",
            json!("2024-03-01 10:00:00"),
        ),
        cell(
            "c_dt",
            "'0000-00-00 00:00:00'",
            json!("0001-01-01 00:00:00"),
        ),
        cell("c_num", "'12.50'", json!(12.5)),
    ]
}

#[tokio::test]
async fn odd_sqlite_values_arrive_and_invalid_utf8_is_replaced_not_fatal() {
    let db = TestDb::sqlite().await;
    db.script(
        "CREATE TABLE oddity (Id INTEGER PRIMARY KEY, DateTStamp TIMESTAMP NOT NULL, \
         c_text TEXT, c_int INTEGER, c_real REAL, c_blob BLOB, c_date DATE, \
         c_dt DATETIME, c_num NUMERIC); \
         CREATE INDEX oddity_stamp ON oddity (DateTStamp);",
    )
    .await;
    let cells = sqlite_cells();
    let stamp = db.ago(30).await;
    let mut script = String::new();
    for c in &cells {
        if c.column == "*" {
            script.push_str(&format!(
                "INSERT INTO oddity (DateTStamp) VALUES ('{stamp}'); "
            ));
        } else {
            script.push_str(&format!(
                "INSERT INTO oddity ({}, DateTStamp) VALUES ({}, '{stamp}'); ",
                c.column, c.sql
            ));
        }
    }
    db.script(&script).await;

    let n = check_cells(&db, "oddity", &cells, "Id", &stamp).await;
    println!("{n} SQLite value cases");
    db.drop().await;
}

/// A zero `TIMESTAMP` (what MariaDB stores for an invalid one outside strict
/// mode) is before every window, as in Open Dental: that row is not sent
/// until it is next changed, and it stops nothing else.
#[tokio::test]
async fn zero_change_stamps_stop_nothing() {
    let db = TestDb::mysql().await;
    let stamp = db.ago(30).await;
    db.script(&format!(
        "SET SESSION sql_mode = ''; \
         INSERT INTO appointment (AptNum, PatNum, AptStatus, Note, DateTStamp) VALUES \
           (1, 1, 1, 'zero', 0), (2, 1, 1, 'invalid', '2024-02-30 10:00:00'), \
           (3, 1, 1, 'fine', '{stamp}'); \
         SET SESSION sql_mode = DEFAULT;"
    ))
    .await;
    let rx = Receiver::start().await.unwrap();
    let url = rx.url("/");
    let mut ids = Vec::new();
    for start in ["0000-00-00 00:00:00", "1000-01-01 00:00:00"] {
        ids.push(
            db.subscribe(Sub {
                start: Some(start),
                ..Sub::new(&url)
            })
            .await,
        );
    }

    let summary = run_once(
        &db,
        Settings {
            max_lookback: None,
            ..settings()
        },
    )
    .await;

    assert_eq!(summary.failed, 0);
    let rows: Vec<Value> = rx.accepted().iter().flat_map(|r| r.rows()).collect();
    let notes: Vec<&str> = rows.iter().filter_map(|r| r["Note"].as_str()).collect();
    assert_eq!(
        notes,
        ["fine", "fine"],
        "each subscription got the dated row"
    );
    for id in ids {
        assert!(
            db.watermark(id).await.as_str() > "2000",
            "DateTimeStart moved"
        );
    }
    db.drop().await;
}
