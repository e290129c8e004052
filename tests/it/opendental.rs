//! Open Dental's own bodies (issue 16), against Open Dental 24.3's whole
//! schema: each WatchTable's element key for key and value for value as
//! Open Dental sends it (the golden files in `fixtures/opendental/`), every
//! table with a change stamp watchable by name, and the choice between
//! Open Dental's body and every column.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rowhook::config::Settings;
use rowhook::domain::body::BodyKind;
use rowhook::receiver::Receiver;
use serde_json::Value;

use crate::app::{TestApp, TestDb};
use crate::helpers::{eventually, run, run_once, settings, Sub};

/// Open Dental's WatchTables, with the lower-cased name of their fixture.
const WATCH_TABLES: [&str; 8] = [
    "Appointment",
    "AppointmentDeleted",
    "Patient",
    "PatField",
    "Operatory",
    "Provider",
    "Schedule",
    "ToothInitial",
];

fn fixture(name: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/opendental")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loads the lookup rows and every WatchTable's rows, stamped `stamp` (in
/// the server's zone, as Open Dental writes it).
async fn load_fixtures(db: &TestDb, stamp: &str) {
    let mut sql = String::from("SET time_zone = @@global.time_zone;\n");
    sql.push_str(&fixture("lookups.sql"));
    sql.push_str(&fixture("provider.sql"));
    for table in WATCH_TABLES.iter().filter(|t| **t != "Provider") {
        sql.push_str(&fixture(&format!("{}.sql", table.to_lowercase())));
    }
    db.script(&sql.replace("{stamp}", stamp)).await;
}

#[tokio::test]
async fn every_watch_table_sends_open_dentals_own_element_key_for_key() {
    let db = TestDb::opendental_24_3().await;
    let rx = Receiver::start().await.unwrap();
    let stamp = db.ago(30).await;
    load_fixtures(&db, &stamp).await;
    let start = db.ago(120).await;
    for table in WATCH_TABLES {
        let url = rx.url(&format!("/{}", table.to_lowercase()));
        db.subscribe(Sub {
            table,
            start: Some(&start),
            ..Sub::new(&url)
        })
        .await;
    }
    let summary = run_once(&db, settings()).await;
    assert_eq!(summary.failed, 0);

    for table in WATCH_TABLES {
        let name = table.to_lowercase();
        let expected: Value =
            serde_json::from_str(&fixture(&format!("{name}.json")).replace("{stamp}", &stamp))
                .unwrap();
        let requests: Vec<_> = rx
            .accepted()
            .into_iter()
            .filter(|r| r.target == format!("/{name}"))
            .collect();
        assert_eq!(requests.len(), 1, "{table}: one request");
        // Byte for byte: keys, their order, and each value's spelling.
        let sent = String::from_utf8_lossy(&requests[0].body).into_owned();
        let want = serde_json::to_string(&expected).unwrap();
        assert_eq!(sent, want, "{table}");
    }
}

/// The 66 tables of Open Dental 24.3 with a change stamp, each watched by
/// its table name; a row written to each arrives. `taskhist` also has a
/// plain `DateTStamp` copied from its task, which never moves; its real
/// stamp is `SecDateTEdit`, the one the server sets.
#[tokio::test]
async fn every_table_with_a_change_stamp_is_watchable_and_delivers_a_changed_row() {
    let db = TestDb::opendental_24_3().await;
    let rx = Receiver::start().await.unwrap();
    let tables: BTreeSet<String> = fixture("stamped_tables.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split('\t').next().map(str::to_owned))
        .collect();
    assert_eq!(tables.len(), 66);
    let start = db.ago(120).await;
    let mut writes = String::from("SET timestamp = UNIX_TIMESTAMP(NOW()) - 30;\n");
    for table in &tables {
        writes.push_str(&format!("INSERT INTO `{table}` () VALUES ();\n"));
        let url = rx.url(&format!("/{table}"));
        db.subscribe(Sub {
            table,
            start: Some(&start),
            ..Sub::new(&url)
        })
        .await;
    }
    writes.push_str("SET timestamp = DEFAULT;");
    db.script(&writes).await;

    let summary = run_once(&db, settings()).await;
    assert_eq!(summary.failed, 0);
    let reached: BTreeSet<String> = rx
        .accepted()
        .iter()
        .filter(|r| !r.rows().is_empty())
        .map(|r| r.target.trim_start_matches('/').to_owned())
        .collect();
    let missing: Vec<_> = tables.difference(&reached).collect();
    assert!(missing.is_empty(), "no row from {missing:?}");
}

/// A table whose change column the server does not keep is named by
/// `check`: its changed rows might never be sent.
#[tokio::test]
async fn check_warns_when_the_change_column_is_not_set_by_the_server() {
    let db = TestDb::mysql().await;
    db.script(
        "CREATE TABLE copylog (Num BIGINT AUTO_INCREMENT PRIMARY KEY, \
         DateTStamp DATETIME NOT NULL DEFAULT '0001-01-01 00:00:00', KEY (DateTStamp))",
    )
    .await;
    let copied = db
        .subscribe(Sub {
            table: "copylog",
            ..Sub::new("http://127.0.0.1:9/")
        })
        .await;
    let kept = db.subscribe(Sub::new("http://127.0.0.1:9/")).await;
    let (code, out, _) = run(Some(&db.url), &["check"]).await;
    assert_eq!(code, 0, "{out}");
    let line = |id: i64| {
        out.lines()
            .find(|l| l.contains(&format!("subscription {id}:")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line(copied).contains("WARNING the server does not set this column"),
        "{out}"
    );
    assert!(
        !line(kept).is_empty(),
        "subscription {kept} is checked: {out}"
    );
    assert!(!line(kept).contains("does not set"), "{out}");
}

/// A subscription chooses its body in rowhook's own table; the daemon's
/// default covers the others; a table Open Dental has no event for always
/// gets its columns. `status`, `check` and `subscriptions list` say which.
#[tokio::test]
async fn each_subscription_gets_the_body_it_chose_or_the_daemons_default() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(1, &db.ago(30).await).await;
    let od = app.subscribe_to("/od").await;
    let cols = app.subscribe_to("/cols").await;
    let payments = db
        .subscribe(Sub {
            table: "payment",
            ..Sub::new(&rx.url("/pay"))
        })
        .await;
    // Stamped in the past, so the window that reads it is open now.
    db.script(
        "SET timestamp = UNIX_TIMESTAMP(NOW()) - 30; \
         INSERT INTO payment (PatNum, PayAmt) VALUES (1, 5); SET timestamp = DEFAULT;",
    )
    .await;
    let set = |id: i64, body: &'static str| {
        let id = id.to_string();
        async move {
            run(
                Some(&db.url),
                &["subscriptions", "set", &id, "--body", body],
            )
            .await
        }
    };
    let (code, out, err) = set(cols, "columns").await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(set(424_242, "columns").await.0, 2, "a missing subscription");
    assert_ne!(set(od, "xml").await.0, 0, "an unknown body");

    app.run_once(settings()).await;
    let first = |path: &str| -> Value {
        rx.accepted()
            .iter()
            .find(|r| r.target == path)
            .and_then(|r| r.rows().into_iter().next())
            .unwrap_or_else(|| panic!("nothing at {path}"))
    };
    assert_eq!(
        first("/od")["AptStatus"],
        "Scheduled",
        "Open Dental's enum name"
    );
    assert_eq!(first("/cols")["AptStatus"], 1, "the column as stored");
    assert!(first("/cols").get("SecurityHash").is_some());
    assert!(first("/od").get("SecurityHash").is_none());
    assert!(
        first("/pay").get("PayAmt").is_some(),
        "payment: its columns"
    );

    let (_, status, _) = run(Some(&db.url), &["status", "--json"]).await;
    let status: Vec<Value> = serde_json::from_str(&status).unwrap();
    let body_of = |id: i64| {
        status
            .iter()
            .find(|s| s["subscription"] == id)
            .map(|s| s["body"].clone())
    };
    assert_eq!(body_of(od), Some("opendental".into()));
    assert_eq!(body_of(cols), Some("columns".into()));
    assert_eq!(body_of(payments), Some("columns".into()));
    let (_, listed, _) = run(
        Some(&db.url),
        &["subscriptions", "list", "--json", "--body", "columns"],
    )
    .await;
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    let listed_body = |id: i64| {
        listed
            .iter()
            .find(|s| s["subscription"].as_str() == Some(id.to_string().as_str()))
            .map(|s| s["body"].clone())
    };
    assert_eq!(
        listed_body(od),
        Some("columns".into()),
        "the default changed"
    );
    assert_eq!(listed_body(cols), Some("columns".into()));
    let (_, checked, _) = run(Some(&db.url), &["check"]).await;
    assert!(checked.contains(", body opendental"), "{checked}");

    // The daemon's default: every column for those that did not choose.
    let all_columns = Settings {
        body: BodyKind::Columns,
        ..settings()
    };
    let before = rx.accepted().len();
    db.exec(
        "UPDATE appointment SET Note = 'again' WHERE AptNum = 1",
        &[],
    )
    .await;
    let od_again = || {
        rx.accepted()[before..]
            .iter()
            .find(|r| r.target == "/od")
            .and_then(|r| r.rows().into_iter().next())
    };
    // Until the edited row's second is safely past.
    assert!(
        eventually(|| async {
            app.run_once(all_columns.clone()).await;
            od_again().is_some()
        })
        .await
    );
    assert_eq!(od_again().map(|r| r["AptStatus"].clone()), Some(1.into()));
}
