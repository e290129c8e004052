//! The delivery log (`rowhook_delivery`): every attempt recorded with its
//! batch id, class and status, the id stable across retries, written in
//! groups, and pruned by age.

use crate::app::TestApp;
use crate::health::with_retry;
use crate::helpers::{eventually, keys, settings, Sub, TestDb, BOTH};
use chrono::NaiveDateTime;
use rowhook::config::Settings;
use rowhook::domain::attempt::{DeliveryStatus, FailureClass};
use rowhook::domain::subscription::SubscriptionId;
use rowhook::receiver::Behaviour;
use std::time::Duration;

#[tokio::test]
async fn the_batch_id_is_stable_across_retries_and_the_log_records_every_attempt() {
    for backend in BOTH {
        let app = TestApp::new(backend).await;
        let (db, rx) = (&app.db, &app.rx);
        rx.set(Behaviour::Status(500));
        db.insert_appointments(3, &db.ago(30).await).await;
        let id = app.subscribe_to("/").await;
        let settings = Settings {
            batch_size: 2,
            ..with_retry(Duration::ZERO, 50)
        };

        app.run_once(settings.clone()).await;
        app.run_once(settings.clone()).await;
        rx.set(Behaviour::Accept);
        app.run_once(settings.clone()).await;

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
    }
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_logged_with_their_class() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
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

    app.run_once(quick).await;

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
}
