//! What an operator relies on: backoff, deactivation and reactivation, the
//! delivery log and its pruning, and the `status` / `deliveries` /
//! `subscriptions` commands of the real binary.
//!
//! Backoff is tested without waiting it out: the scheduler reads
//! `rowhook_health.next_retry_at` every tick, so a test moves that time into
//! the past to stand for the delay having passed, and reads the delay the
//! daemon chose from the same row.

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use rowhook::config::Settings;
use rowhook::domain::attempt::{DeliveryStatus, FailureClass};
use rowhook::domain::health::RetryPolicy;
use rowhook::domain::subscription::SubscriptionId;
use rowhook::receiver::{Behaviour, Receiver};
use serde_json::Value;

use crate::helpers::{
    eventually, keys, run, run_once, settings, Daemon, Sub, TestDb, BOTH, PATIENCE, WORKSTATION,
};

/// `rowhook_health` for one subscription, as the daemon left it.
#[derive(Debug)]
struct HealthRow {
    failures: u32,
    last_failure: Option<NaiveDateTime>,
    next_retry: Option<NaiveDateTime>,
    deactivated: bool,
    reason: String,
}

impl HealthRow {
    /// The backoff the daemon chose after the last failure.
    fn delay(&self) -> f64 {
        let (Some(failed), Some(next)) = (self.last_failure, self.next_retry) else {
            panic!("no retry scheduled: {self:?}");
        };
        (next - failed).num_milliseconds() as f64 / 1000.0
    }
}

async fn health(db: &TestDb, id: i64) -> HealthRow {
    let id = id.to_string();
    let mut values = Vec::new();
    for column in [
        "consecutive_failures",
        "last_failure_at",
        "next_retry_at",
        "deactivated_at",
        "last_failure_reason",
    ] {
        let sql = format!(
            "SELECT COALESCE(CAST({column} AS CHAR), '') FROM rowhook_health WHERE subscription_num = ?"
        );
        values.push(db.text(&sql, &[&id]).await.unwrap_or_default());
    }
    let time = |s: &str| NaiveDateTime::parse_from_str(s, rowhook::DATETIME_FORMAT).ok();
    HealthRow {
        failures: values[0].parse().unwrap_or(0),
        last_failure: time(&values[1]),
        next_retry: time(&values[2]),
        deactivated: !values[3].is_empty(),
        reason: values[4].clone(),
    }
}

/// Stands for the backoff delay having passed.
async fn make_due(db: &TestDb, id: i64) {
    db.exec(
        "UPDATE rowhook_health SET next_retry_at = '2000-01-01 00:00:00' WHERE subscription_num = ?",
        &[&id.to_string()],
    )
    .await;
}

fn with_retry(base: Duration, max_failures: u32) -> Settings {
    Settings {
        retry: RetryPolicy {
            base,
            cap: Duration::from_secs(3600),
            max_failures,
        },
        ..settings()
    }
}

/// Runs ticks until the receiver has seen `count` requests (a new row is
/// in a window only once it is older than the safety lag).
async fn until_requests(db: &TestDb, rx: &Receiver, settings: &Settings, count: usize) {
    let reached = eventually(|| async {
        run_once(db, settings.clone()).await;
        rx.requests().len() >= count
    })
    .await;
    assert!(reached, "request {count} arrived");
}

#[tokio::test]
async fn backoff_delays_grow_with_each_failure_and_a_success_resets_them() {
    for backend in BOTH {
        let db = TestDb::new(backend).await;
        let rx = Receiver::start().await.unwrap();
        rx.set(Behaviour::Status(500));
        db.insert_appointments(3, &db.ago(30).await).await;
        let url = rx.url("/");
        let id = db.subscribe(Sub::new(&url)).await;
        let settings = with_retry(Duration::from_secs(60), 50);

        let mut delays = Vec::new();
        for attempt in 1..=3 {
            run_once(&db, settings.clone()).await;
            assert_eq!(rx.requests().len(), attempt, "{backend:?}");
            let h = health(&db, id).await;
            assert_eq!(h.failures as usize, attempt, "{backend:?}");
            assert!(h.reason.contains("500"), "{backend:?}: {h:?}");
            delays.push(h.delay());

            let early = run_once(&db, settings.clone()).await;
            assert_eq!(
                early.processed, 0,
                "{backend:?}: not attempted while backing off"
            );
            assert_eq!(rx.requests().len(), attempt, "{backend:?}");
            make_due(&db, id).await;
        }
        println!("{backend:?} backoff delays (s): {delays:?}");
        for (i, nominal) in [60.0, 120.0, 240.0].into_iter().enumerate() {
            let d = delays[i];
            assert!(
                (nominal * 0.8..=nominal * 1.2).contains(&d),
                "{backend:?}: delay {i} was {d}"
            );
        }

        rx.set(Behaviour::Accept);
        run_once(&db, settings.clone()).await;
        assert_eq!(keys(&rx.accepted(), "AptNum"), [1, 2, 3], "{backend:?}");
        let h = health(&db, id).await;
        assert_eq!(h.failures, 0, "{backend:?}");
        assert_eq!(h.next_retry, None, "{backend:?}");

        // The next failure starts the schedule again from the base delay.
        rx.set(Behaviour::Status(500));
        db.exec(
            "INSERT INTO appointment (PatNum, AptStatus, Note) VALUES (1, 1, 'x')",
            &[],
        )
        .await;
        until_requests(&db, &rx, &settings, 5).await;
        let h = health(&db, id).await;
        assert_eq!(h.failures, 1, "{backend:?}");
        assert!((48.0..=72.0).contains(&h.delay()), "{backend:?}: {h:?}");
        db.drop().await;
    }
}

#[tokio::test]
async fn the_fiftieth_consecutive_failure_deactivates_and_reactivation_resumes_in_place() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    rx.set(Behaviour::Status(503));
    db.insert_appointments(3, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db.subscribe(Sub::new(&url)).await;
    let before = db.watermark(id).await;
    let settings = with_retry(Duration::ZERO, 50);

    for attempt in 1..=49 {
        assert_eq!(run_once(&db, settings.clone()).await.failed, 1);
        let h = health(&db, id).await;
        assert_eq!(h.failures, attempt);
        assert!(!h.deactivated, "deactivated after {attempt}");
    }
    run_once(&db, settings.clone()).await;
    let h = health(&db, id).await;
    assert_eq!(h.failures, 50);
    assert!(h.deactivated, "deactivated at the 50th");
    assert_eq!(h.next_retry, None);

    let after = run_once(&db, settings.clone()).await;
    assert_eq!(
        after.processed, 0,
        "a deactivated subscription is not attempted"
    );
    assert_eq!(rx.requests().len(), 50);
    assert_eq!(
        db.watermark(id).await,
        before,
        "Open Dental's columns untouched"
    );

    let (code, out, err) = run(
        Some(&db.url),
        &["subscriptions", "reactivate", &id.to_string()],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let h = health(&db, id).await;
    assert_eq!((h.failures, h.deactivated), (0, false));
    assert_eq!(db.watermark(id).await, before);

    rx.set(Behaviour::Accept);
    run_once(&db, settings).await;
    assert_eq!(
        keys(&rx.accepted(), "AptNum"),
        [1, 2, 3],
        "resumed from the same DateTimeStart"
    );
    assert!(db.watermark(id).await > before);
    db.drop().await;
}

#[tokio::test]
async fn a_success_between_failures_resets_the_count() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    db.insert_appointments(1, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db.subscribe(Sub::new(&url)).await;
    let settings = with_retry(Duration::ZERO, 3);

    rx.set(Behaviour::Status(500));
    run_once(&db, settings.clone()).await;
    run_once(&db, settings.clone()).await;
    assert_eq!(health(&db, id).await.failures, 2);
    rx.set(Behaviour::Accept);
    run_once(&db, settings.clone()).await;
    assert_eq!(health(&db, id).await.failures, 0);

    rx.set(Behaviour::Status(500));
    db.exec(
        "INSERT INTO appointment (PatNum, AptStatus, Note) VALUES (1, 1, 'x')",
        &[],
    )
    .await;
    until_requests(&db, &rx, &settings, 4).await;
    run_once(&db, settings.clone()).await;
    let h = health(&db, id).await;
    assert_eq!(
        (h.failures, h.deactivated),
        (2, false),
        "counted from the success"
    );
    run_once(&db, settings).await;
    assert!(
        health(&db, id).await.deactivated,
        "the third in a row deactivates"
    );
    db.drop().await;
}

#[tokio::test]
async fn the_batch_id_is_stable_across_retries_and_the_log_records_every_attempt() {
    for backend in BOTH {
        let db = TestDb::new(backend).await;
        let rx = Receiver::start().await.unwrap();
        rx.set(Behaviour::Status(500));
        db.insert_appointments(3, &db.ago(30).await).await;
        let url = rx.url("/");
        let id = db.subscribe(Sub::new(&url)).await;
        let settings = Settings {
            batch_size: 2,
            ..with_retry(Duration::ZERO, 50)
        };

        run_once(&db, settings.clone()).await;
        run_once(&db, settings.clone()).await;
        rx.set(Behaviour::Accept);
        run_once(&db, settings.clone()).await;

        let requests = rx.requests();
        let ids: Vec<&str> = requests
            .iter()
            .map(|r| r.header("Rowhook-Batch-Id").expect("a batch id header"))
            .collect();
        assert_eq!(ids.len(), 4, "{backend:?}");
        assert_eq!(ids[0], ids[1], "{backend:?}: a retry keeps the id");
        assert_eq!(ids[1], ids[2], "{backend:?}: a retry keeps the id");
        assert_ne!(ids[2], ids[3], "{backend:?}: other rows, other id");
        assert_eq!(keys(&rx.accepted(), "AptNum"), [1, 2, 3], "{backend:?}");

        let log = db
            .db
            .deliveries(Some(SubscriptionId(id)), false, 10)
            .await
            .unwrap();
        let summary: Vec<_> = log
            .iter()
            .map(|r| {
                (
                    r.status.as_str(),
                    r.http_status,
                    r.error_class.map(FailureClass::as_str),
                    r.attempt,
                    r.rows,
                    r.first_key,
                    r.last_key,
                    r.batch_id.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("SENT", Some(200), None, 1, 1, Some(3), Some(3), ids[3]),
                ("SENT", Some(200), None, 3, 2, Some(1), Some(2), ids[2]),
                (
                    "FAILED",
                    Some(500),
                    Some("non-200"),
                    2,
                    2,
                    Some(1),
                    Some(2),
                    ids[1]
                ),
                (
                    "FAILED",
                    Some(500),
                    Some("non-200"),
                    1,
                    2,
                    Some(1),
                    Some(2),
                    ids[0]
                ),
            ],
            "{backend:?}: newest first"
        );
        assert!(log.iter().all(|r| r.window_start < r.window_stop));
        db.drop().await;
    }
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_logged_with_their_class() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    rx.set(Behaviour::Hang(Duration::from_secs(5)));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    db.insert_appointments(1, &db.ago(30).await).await;
    let hang_url = rx.url("/");
    let refused_url = format!("http://127.0.0.1:{port}/");
    let hanging = db.subscribe(Sub::new(&hang_url)).await;
    let refused = db.subscribe(Sub::new(&refused_url)).await;
    let quick = Settings {
        request_timeout: Duration::from_millis(300),
        ..settings()
    };

    run_once(&db, quick).await;

    for (id, class) in [(hanging, "timeout"), (refused, "refused")] {
        let log = db
            .db
            .deliveries(Some(SubscriptionId(id)), true, 10)
            .await
            .unwrap();
        assert_eq!(log.len(), 1, "{class}");
        assert_eq!(
            (
                log[0].error_class.map(FailureClass::as_str),
                log[0].http_status
            ),
            (Some(class), None)
        );
        assert!(!log[0].error.is_empty(), "{class}: a reason");
    }
    db.drop().await;
}

#[tokio::test]
async fn pruning_removes_only_attempts_older_than_the_retention() {
    let db = TestDb::mysql().await;
    let now = db.now().await;
    let records: Vec<_> = [(1, 40), (2, 31), (3, 29), (4, 1)]
        .into_iter()
        .map(|(key, days)| {
            attempt(
                &format!("batch-{key}"),
                key,
                now - chrono::Duration::days(days),
            )
        })
        .collect();
    db.db.record_deliveries(&records).await.unwrap();
    let kept = || async {
        let log = db.db.deliveries(None, false, 100).await.unwrap();
        log.iter().filter_map(|r| r.first_key).collect::<Vec<_>>()
    };

    let journal = rowhook::delivery::journal::Journal::start(db.db.clone(), None);
    journal.flush().await;
    assert_eq!(kept().await, [4, 3, 2, 1], "no retention keeps everything");

    let _journal = rowhook::delivery::journal::Journal::start(
        db.db.clone(),
        Some(Duration::from_secs(30 * 24 * 3600)),
    );
    assert!(eventually(|| async { kept().await.len() < 4 }).await);
    assert_eq!(
        kept().await,
        [4, 3],
        "only the attempts older than 30 days went"
    );
    db.drop().await;
}

/// One acknowledged attempt of `batch` at `at`, for writing to the log directly.
fn attempt(batch: &str, key: i64, at: NaiveDateTime) -> rowhook::domain::attempt::DeliveryRecord {
    rowhook::domain::attempt::DeliveryRecord {
        subscription: SubscriptionId(1),
        batch_id: batch.into(),
        watch_table: "Appointment".into(),
        window_start: at,
        window_stop: at,
        first_key: Some(key),
        last_key: Some(key),
        rows: 1,
        attempt: 0,
        status: DeliveryStatus::Sent,
        http_status: Some(200),
        error_class: None,
        error: String::new(),
        elapsed_ms: 3,
        attempted_at: at,
    }
}

/// Attempts queued together are written in one transaction, numbered in
/// order; a record the server refuses costs only itself, and an error too
/// long for its column is cut, not refused.
#[tokio::test]
async fn the_log_writes_attempts_together_and_a_refused_one_costs_only_itself() {
    let db = TestDb::mysql().await;
    let now = db.now().await;
    let journal = rowhook::delivery::journal::Journal::start(db.db.clone(), None);
    // The writer runs on this test's one thread, so all five are queued
    // before it takes any: they are written as one group.
    for key in 1..=3 {
        journal.record(attempt("retried", key, now));
    }
    journal.record(rowhook::domain::attempt::DeliveryRecord {
        watch_table: "x".repeat(300),
        ..attempt("refused", 4, now)
    });
    journal.record(rowhook::domain::attempt::DeliveryRecord {
        status: DeliveryStatus::Failed,
        http_status: None,
        error: "é".repeat(400),
        ..attempt("long-error", 5, now)
    });
    journal.flush().await;

    let mut log = db.db.deliveries(None, false, 100).await.unwrap();
    log.reverse();
    let written: Vec<_> = log
        .iter()
        .map(|r| (r.batch_id.as_str(), r.attempt, r.first_key))
        .collect();
    assert_eq!(
        written,
        [
            ("retried", 1, Some(1)),
            ("retried", 2, Some(2)),
            ("retried", 3, Some(3)),
            ("long-error", 1, Some(5)),
        ]
    );
    assert_eq!(log[3].error, "é".repeat(255));
    db.drop().await;
}

/// A subscription whose receiver hangs does not hold up another one: while
/// its one request is open, the healthy subscription delivers row after row.
#[tokio::test]
async fn a_hanging_receiver_does_not_delay_a_healthy_subscription() {
    let db = TestDb::mysql().await;
    let stuck = Receiver::start().await.unwrap();
    let healthy = Receiver::start().await.unwrap();
    stuck.set(Behaviour::Hang(Duration::from_secs(120)));
    let (stuck_url, healthy_url) = (stuck.url("/"), healthy.url("/"));
    db.subscribe(Sub::new(&stuck_url)).await;
    db.subscribe(Sub::new(&healthy_url)).await;
    db.insert_appointments(1, &db.ago(30).await).await;
    let patient = Settings {
        request_timeout: Duration::from_secs(120),
        ..settings()
    };
    let daemon = Daemon::start(&db, patient);
    assert!(stuck.wait_until(PATIENCE, |r| !r.is_empty()).await);

    let mut lags = Vec::new();
    for n in 2..=6 {
        let inserted = Instant::now();
        db.exec(
            "INSERT INTO appointment (PatNum, AptStatus, Note) VALUES (1, 1, 'x')",
            &[],
        )
        .await;
        let arrived = healthy
            .wait_until(PATIENCE, |r| keys(r, "AptNum").contains(&n))
            .await;
        assert!(arrived, "row {n} reached the healthy receiver");
        lags.push(inserted.elapsed().as_millis());
    }
    let stuck_requests = stuck.requests().len();
    daemon.stop().await;

    println!("healthy subscription's lag per row while the other hangs (ms): {lags:?}");
    assert_eq!(
        stuck_requests, 1,
        "the stuck subscription's one request was still open"
    );
    assert_eq!(keys(&healthy.accepted(), "AptNum"), [1, 2, 3, 4, 5, 6]);
    db.drop().await;
}

/// `status`, `deliveries` and the daemon's own log lines, from the real
/// binary: what an operator sees after a subscription fails until it is
/// deactivated.
#[tokio::test]
async fn status_deliveries_and_logs_show_what_the_tables_hold() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
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
    db.drop().await;
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
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
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
    db.drop().await;
}
