//! The operator's commands, run as the real binary: `check`, `migrate`,
//! `status`, `deliveries`, `subscriptions`, `demo`, and what each says
//! without a database.

use crate::app::TestApp;
use crate::helpers::{run, Sub, TestDb, WORKSTATION};
use rowhook::domain::subscription::SubscriptionId;
use rowhook::receiver::Behaviour;
use serde_json::Value;

#[tokio::test]
async fn check_prints_a_line_per_subscription_and_fails_when_one_is_wrong() {
    let db = TestDb::mysql().await;
    let good = db
        .subscribe(Sub::new("https://crm.example/hooks?x=1"))
        .await;
    let (code, out, _) = run(Some(&db.url), &["check"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "ok   subscription {good}: Appointment -> appointment.DateTStamp (indexed)"
        )),
        "{out}"
    );

    let bad = db
        .subscribe(Sub {
            table: "NoSuchTable",
            ..Sub::new("https://crm.example/")
        })
        .await;
    let (code, out, _) = run(Some(&db.url), &["check"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "FAIL subscription {bad}: WatchTable \"NoSuchTable\""
        )),
        "{out}"
    );
}

#[tokio::test]
async fn migrate_creates_apisubscription_once_and_keeps_existing_rows() {
    let db = TestDb::mysql().await; // already migrated by the harness
    db.subscribe(Sub::new("https://crm.example/")).await;

    let (code, out, err) = run(Some(&db.url), &["migrate"]).await;

    assert_eq!(code, 0, "{err}");
    assert!(out.contains("up to date"), "{out}");
    let count = db
        .text("SELECT CAST(COUNT(*) AS CHAR) FROM apisubscription", &[])
        .await;
    assert_eq!(count.as_deref(), Some("1"));
}

#[tokio::test]
async fn migrate_on_an_empty_database_creates_open_dentals_table() {
    let path = std::env::temp_dir().join(format!("rowhook_migrate_{}.sqlite", std::process::id()));
    let url = format!("sqlite://{}", path.display());

    let (code, out, err) = run(Some(&url), &["migrate"]).await;
    let (again, out2, _) = run(Some(&url), &["migrate"]).await;
    let _ = std::fs::remove_file(&path);

    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Applied 0001_apisubscription."), "{out}");
    assert_eq!(again, 0);
    assert!(out2.contains("up to date"), "{out2}");
}

#[tokio::test]
async fn commands_without_a_database_say_so() {
    let (code, _, err) = run(None, &["check"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("--database-url"), "{err}");
}

#[tokio::test]
async fn the_demo_delivers_events_and_exits_zero() {
    let (code, out, err) = run(None, &["demo", "--seconds", "5"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let deliveries = out.lines().filter(|l| l.starts_with("delivery")).count();
    assert!(deliveries >= 3, "{out}");
    assert!(out.contains("WatchTable: Appointment"), "{out}");
    assert!(out.contains("WatchTable: Patient"), "{out}");
}

/// `status`, `deliveries` and the daemon's own log lines, from the real
/// binary: what an operator sees after a subscription fails until it is
/// deactivated.
#[tokio::test]
async fn status_deliveries_and_logs_show_what_the_tables_hold() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    rx.set(Behaviour::Status(500));
    db.insert_appointments(2, &db.ago(30).await).await;
    let secret_url = rx.url("/hook").replace("http://", "http://user:hunter2@");
    let failing = db.subscribe(Sub::new(&secret_url)).await;
    let other_url = rx.url("/other");
    let elsewhere = db
        .subscribe(Sub {
            workstation: "FRONT-DESK",
            ..Sub::new(&other_url)
        })
        .await;
    let daemon = ["run", "--once", "--retry-base", "0", "--max-failures", "2"];

    let (_, _, first) = run(Some(&db.url), &daemon).await;
    let (_, _, second) = run(Some(&db.url), &daemon).await;
    assert!(
        first.contains("WARN") && first.contains("next_retry") && first.contains("500"),
        "one WARN with the reason and the next retry:\n{first}"
    );
    assert!(
        second.contains("ERROR") && second.contains("reactivate"),
        "one ERROR on deactivation:\n{second}"
    );
    assert!(!first.contains("hunter2") && !second.contains("hunter2"));

    let (code, table, _) = run(Some(&db.url), &["status"]).await;
    assert_eq!(code, 0);
    println!("{table}");
    let line = |id: i64| line_of(&table, id);
    assert!(
        line(failing).contains("deactivated") && line(failing).contains("HTTP 500"),
        "{table}"
    );
    assert!(line(elsewhere).contains("other-workstation"), "{table}");
    assert!(!table.contains("hunter2"), "credentials redacted");

    let (_, json, _) = run(Some(&db.url), &["status", "--json"]).await;
    let status: Vec<Value> = serde_json::from_str(&json).unwrap();
    let mine = status
        .iter()
        .find(|s| s["subscription"] == failing)
        .unwrap();
    assert_eq!(mine["consecutive_failures"], 2);
    assert_eq!(mine["state"], "deactivated");
    assert_eq!(mine["workstation"], WORKSTATION);

    let (_, json, _) = run(
        Some(&db.url),
        &[
            "deliveries",
            "--subscription",
            &failing.to_string(),
            "--json",
        ],
    )
    .await;
    let attempts: Vec<Value> = serde_json::from_str(&json).unwrap();
    let stored = db
        .db
        .deliveries(Some(SubscriptionId(failing)), false, 10)
        .await
        .unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(stored.len(), 2, "every printed attempt is stored");
    for (printed, row) in attempts.iter().zip(&stored) {
        assert_eq!(printed["batch_id"], row.batch_id.as_str());
        assert_eq!(printed["attempt"], row.attempt);
        assert_eq!(printed["status"], "FAILED");
        assert_eq!(printed["http_status"], 500);
    }
    assert_eq!(attempts[0]["attempt"], 2, "newest first");

    let (_, text, _) = run(Some(&db.url), &["deliveries", "--failed", "--limit", "1"]).await;
    println!("{text}");
    assert_eq!(text.lines().filter(|l| l.contains("FAILED")).count(), 1);
    assert!(text.contains(&stored[0].batch_id));

    let (code, _, _) = run(
        Some(&db.url),
        &["subscriptions", "reactivate", &failing.to_string()],
    )
    .await;
    assert_eq!(code, 0);
    let (_, table, _) = run(Some(&db.url), &["status"]).await;
    assert!(line_of(&table, failing).contains("active"));
    assert!(!line_of(&table, failing).contains("deactivated"));
}

fn line_of(table: &str, id: i64) -> String {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
        .unwrap_or_default()
        .to_owned()
}

/// The convenience commands write ordinary Open Dental rows.
#[tokio::test]
async fn subscriptions_add_stop_replay_and_remove_write_open_dental_rows() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    let url = rx.url("/added?x=1");
    let (code, out, err) = run(
        Some(&db.url),
        &[
            "subscriptions",
            "add",
            "--url",
            &url,
            "--table",
            "Patient",
            "--polling",
            "2",
            "--workstation",
            WORKSTATION,
            "--key",
            "k-1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let id: i64 = db
        .text(
            "SELECT CAST(MAX(ApiSubscriptionNum) AS CHAR) FROM apisubscription",
            &[],
        )
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        out.contains(&id.to_string()),
        "add prints the number: {out}"
    );
    let row = db
        .text(
            "SELECT CONCAT_WS('|', EndPointUrl, WatchTable, PollingSeconds, Workstation, CustomerKey, \
             CAST(DateTimeStop AS CHAR)) FROM apisubscription WHERE ApiSubscriptionNum = ?",
            &[&id.to_string()],
        )
        .await
        .unwrap();
    assert_eq!(
        row,
        format!("{url}|Patient|2|{WORKSTATION}|k-1|0001-01-01 00:00:00")
    );

    let (_, list, _) = run(Some(&db.url), &["subscriptions", "list"]).await;
    assert!(line_of(&list, id).contains("Patient"), "{list}");
    assert!(!list.contains("k-1"), "the key is not printed");

    let since = "2024-01-02 03:04:05";
    let (code, _, _) = run(
        Some(&db.url),
        &["replay", &id.to_string(), "--since", since],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(db.watermark(id).await, since);
    let (code, _, err) = run(
        Some(&db.url),
        &["replay", &id.to_string(), "--since", "yesterday"],
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("YYYY-MM-DD"), "{err}");

    let (code, _, _) = run(Some(&db.url), &["subscriptions", "stop", &id.to_string()]).await;
    assert_eq!(code, 0);
    let stop = db
        .text(
            "SELECT CAST(DateTimeStop AS CHAR) FROM apisubscription WHERE ApiSubscriptionNum = ?",
            &[&id.to_string()],
        )
        .await
        .unwrap();
    assert!(stop.as_str() > "2020", "DateTimeStop set to now: {stop}");

    let (code, _, _) = run(Some(&db.url), &["subscriptions", "remove", &id.to_string()]).await;
    assert_eq!(code, 0);
    let count = db
        .text("SELECT CAST(COUNT(*) AS CHAR) FROM apisubscription", &[])
        .await;
    assert_eq!(count.as_deref(), Some("0"));
    let (code, _, err) = run(Some(&db.url), &["subscriptions", "remove", &id.to_string()]).await;
    assert_ne!(code, 0, "removing a missing subscription is an error");
    assert!(err.contains(&id.to_string()), "{err}");
}

/// `--version` names the commit the binary was built from, so a problem
/// report can say exactly which build runs.
#[tokio::test]
async fn version_names_the_commit_it_was_built_from() {
    let (code, out, _) = run(None, &["--version"]).await;
    assert_eq!(code, 0);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let commit = std::env::var("ROWHOOK_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or(head)
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        out.trim(),
        format!("rowhook {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

/// `rowhook status | head`, `rowhook demo | head`, or `less` quit early:
/// standard output is gone before the command writes. It ends at once,
/// with success and no panic (`println!` panics on a closed pipe).
#[tokio::test]
async fn output_whose_reader_went_away_ends_quietly() {
    let db = TestDb::mysql().await;
    db.subscribe(Sub::new("https://crm.example/hooks")).await;
    for (url, args) in [
        (Some(db.url.as_str()), &["status"][..]),
        (Some(db.url.as_str()), &["subscriptions", "list"][..]),
        (None, &["demo", "--seconds", "3"][..]),
    ] {
        let mut command = tokio::process::Command::new(crate::helpers::BIN);
        command
            .args(args)
            .env_remove("DATABASE_URL")
            .env("ROWHOOK_WORKSTATION", WORKSTATION)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(url) = url {
            command.env("DATABASE_URL", url);
        }
        let mut child = command.spawn().expect("rowhook starts");
        // The reader goes away before the command has written anything.
        drop(child.stdout.take());
        let out = tokio::time::timeout(crate::helpers::PATIENCE, child.wait_with_output())
            .await
            .expect("it ends")
            .expect("it ran");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
