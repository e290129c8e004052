//! The request as a subscriber sees it, and what counts as delivered.

use std::time::Duration;

use rowhook::domain::attempt::DeliveryStatus;
use rowhook::receiver::{Behaviour, Receiver};

use crate::app::TestApp;
use crate::helpers::{keys, run_once, settings, Sub, TestDb, BOTH, WORKSTATION};

#[tokio::test]
async fn requests_carry_open_dentals_headers_and_the_url_exactly_as_stored() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(2, &db.ago(30).await).await;
    let url = rx.url("/hooks/od?type=appt&x=1");
    db.subscribe(Sub {
        key: "key123",
        ..Sub::new(&url)
    })
    .await;
    let no_key_url = rx.url("/nokey");
    db.subscribe(Sub {
        key: "",
        ..Sub::new(&no_key_url)
    })
    .await;

    app.run_once(settings()).await;

    let requests = rx.accepted();
    let with_key = requests
        .iter()
        .find(|r| r.target == "/hooks/od?type=appt&x=1")
        .unwrap();
    assert_eq!(with_key.header("content-type"), Some("application/json"));
    assert_eq!(with_key.header("authorization"), Some("key123"));
    assert_eq!(with_key.header("workstation"), Some(WORKSTATION));
    assert_eq!(
        with_key.header("event-type"),
        Some("WatchTable: Appointment")
    );
    assert_eq!(keys(std::slice::from_ref(with_key), "AptNum"), [1, 2]);
    let without = requests.iter().find(|r| r.target == "/nokey").unwrap();
    assert_eq!(without.header("authorization"), None);
}

/// Each kind of failure leaves `DateTimeStart` alone, and the same rows
/// arrive once the receiver accepts.
#[tokio::test]
async fn every_failure_kind_keeps_the_watermark_and_the_rows_come_later() {
    let failures = [
        ("201", Behaviour::Status(201)),
        ("302", Behaviour::Status(302)),
        ("404", Behaviour::Status(404)),
        ("500", Behaviour::Status(500)),
        ("timeout", Behaviour::Hang(Duration::from_secs(5))),
    ];
    for backend in BOTH {
        for (name, behaviour) in failures {
            let app = TestApp::new(backend).await;
            let (db, rx) = (&app.db, &app.rx);
            db.insert_appointments(3, &db.ago(30).await).await;
            let id = app.subscribe_to("/hook").await;
            let before = db.watermark(id).await;
            rx.set(behaviour);
            let quick = rowhook::config::Settings {
                request_timeout: Duration::from_millis(500),
                ..settings()
            };

            let failed = app.run_once(quick.clone()).await;

            assert_eq!(failed.failed, 1, "{backend:?} {name}");
            assert_eq!(
                rx.requests().len(),
                1,
                "{backend:?} {name}: one attempt, no redirect followed"
            );
            assert_eq!(db.watermark(id).await, before, "{backend:?} {name}");

            rx.set(Behaviour::Accept);
            let retried = app.run_once(quick).await;

            assert_eq!(retried.failed, 0, "{backend:?} {name}");
            assert_eq!(
                keys(&rx.accepted(), "AptNum"),
                [1, 2, 3],
                "{backend:?} {name}"
            );
            assert!(db.watermark(id).await > before, "{backend:?} {name}");
        }
    }
}

#[tokio::test]
async fn a_refused_connection_keeps_the_watermark_and_the_rows_come_when_it_listens() {
    let db = TestDb::mysql().await;
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    db.insert_appointments(2, &db.ago(30).await).await;
    let id = db.subscribe(Sub::new(&url)).await;
    let before = db.watermark(id).await;

    assert_eq!(run_once(&db, settings()).await.failed, 1);
    assert_eq!(db.watermark(id).await, before);

    let rx = Receiver::start_on(port).await.unwrap();
    assert_eq!(run_once(&db, settings()).await.failed, 0);
    assert_eq!(keys(&rx.accepted(), "AptNum"), [1, 2]);
    assert!(db.watermark(id).await > before);
}

/// Open Dental stops a failing subscription for the tick and tries it again
/// after the others; the others are not held back.
#[tokio::test]
async fn a_failing_subscription_does_not_stop_the_others() {
    let db = TestDb::mysql().await;
    let bad = Receiver::start().await.unwrap();
    let good = Receiver::start().await.unwrap();
    bad.set(Behaviour::Status(500));
    db.insert_appointments(2, &db.ago(30).await).await;
    let (bad_url, good_url) = (bad.url("/"), good.url("/"));
    db.subscribe(Sub::new(&bad_url)).await;
    db.subscribe(Sub::new(&good_url)).await;

    let summary = run_once(&db, settings()).await;

    assert_eq!(summary.failed, 1);
    assert_eq!(keys(&good.accepted(), "AptNum"), [1, 2]);
}

/// A page bigger than `--max-request-bytes` is cut into batches in order; a
/// single row bigger than the limit is skipped, logged with its key, and the
/// rest of the window still goes.
#[tokio::test]
async fn large_rows_are_cut_into_batches_and_a_row_too_large_alone_is_skipped() {
    for backend in BOTH {
        let app = TestApp::new(backend).await;
        let (db, rx) = (&app.db, &app.rx);
        let stamp = db.ago(30).await;
        for size in [1000, 1000, 20_000, 1000] {
            db.exec(
                "INSERT INTO appointment (PatNum, AptStatus, Note, DateTStamp) VALUES (1, 1, ?, ?)",
                &[&"n".repeat(size), &stamp],
            )
            .await;
        }
        let id = app.subscribe_to("/").await;
        let before = db.watermark(id).await;
        let small = rowhook::config::Settings {
            max_request_bytes: 4096,
            ..settings()
        };

        let summary = app.run_once(small).await;

        assert_eq!(summary.failed, 0, "{backend:?}");
        let bodies: Vec<Vec<i64>> = rx
            .accepted()
            .iter()
            .map(|r| keys(std::slice::from_ref(r), "AptNum"))
            .collect();
        assert_eq!(bodies, [vec![1, 2], vec![4]], "{backend:?}");
        assert!(rx.requests().iter().all(|r| r.body.len() <= 4096));
        assert!(
            db.watermark(id).await > before,
            "{backend:?}: the window completed"
        );
        let log = db
            .db
            .deliveries(
                Some(rowhook::domain::subscription::SubscriptionId(id)),
                false,
                10,
            )
            .await
            .unwrap();
        let skipped: Vec<_> = log
            .iter()
            .filter(|r| r.status == DeliveryStatus::Skipped)
            .collect();
        assert_eq!(skipped.len(), 1, "{backend:?}");
        assert_eq!(skipped[0].first_key, Some(3));
        assert!(skipped[0].error.contains("max-request-bytes"));
    }
}
