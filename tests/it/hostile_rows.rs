//! Broken subscription rows: garbage in every column of `apisubscription`
//! is refused with a reason that names the column, logged once with the
//! subscription's number, and skipped; the good subscriptions keep running,
//! and nothing panics. Each case is a row with its expected outcome.

use crate::app::TestApp;
use crate::helpers::{
    eventually, run, run_once, settings, Backend, Process, Sub, TestDb, WORKSTATION,
};
use rowhook::config::Settings;
use rowhook::receiver::{Receiver, Request};
use serde_json::Value;

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
}

#[tokio::test]
async fn a_malformed_subscription_is_logged_once_with_its_number_and_reason() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    let (bad_url, missing_url, good_url) = (
        "ftp://files.example/x".to_string(),
        rx.url("/missing"),
        rx.url("/good"),
    );
    let bad = db
        .subscribe(Sub {
            polling: 0,
            ..Sub::new(&bad_url)
        })
        .await;
    let missing = db
        .subscribe(Sub {
            polling: 0,
            table: "NoSuchTable",
            ..Sub::new(&missing_url)
        })
        .await;
    let good = db
        .subscribe(Sub {
            polling: 0,
            ..Sub::new(&good_url)
        })
        .await;

    let mut daemon = Process::start(db, &["run"]);
    // Several ticks: the good subscription's watermark moves three times.
    for _ in 0..3 {
        let mark = db.watermark(good).await;
        assert!(eventually(|| async { db.watermark(good).await > mark }).await);
    }
    daemon.signal("-TERM").await;
    let _ = daemon.exit_code().await;

    let log = daemon.log();
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(lines(&format!("subscription={bad} ")), 1, "{log}");
    assert!(log.contains("scheme \"ftp\" is not http or https"), "{log}");
    assert_eq!(lines(&format!("subscription={missing} ")), 1, "{log}");
    assert!(log.contains("NoSuchTable"), "{log}");
}
