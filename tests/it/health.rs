//! A failing receiver: backoff that grows and resets, deactivation after
//! the fiftieth consecutive failure, reactivation in place, and a hanging
//! receiver that delays no one else.
//!
//! Backoff is tested without waiting it out: each tick reads
//! `rowhook_health.next_retry_at`, so a test moves that time into the past
//! to make a subscription due.

use crate::app::TestApp;
use crate::helpers::{
    eventually, keys, run, run_once, settings, Daemon, Sub, TestDb, BOTH, PATIENCE,
};
use chrono::NaiveDateTime;
use rowhook::config::Settings;
use rowhook::domain::health::RetryPolicy;
use rowhook::receiver::{Behaviour, Receiver};
use std::time::{Duration, Instant};

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

pub fn with_retry(base: Duration, max_failures: u32) -> Settings {
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
        let app = TestApp::new(backend).await;
        let (db, rx) = (&app.db, &app.rx);
        rx.set(Behaviour::Status(500));
        db.insert_appointments(3, &db.ago(30).await).await;
        let id = app.subscribe_to("/").await;
        let settings = with_retry(Duration::from_secs(60), 50);

        let mut delays = Vec::new();
        for attempt in 1..=3 {
            app.run_once(settings.clone()).await;
            assert_eq!(rx.requests().len(), attempt, "{backend:?}");
            let h = health(db, id).await;
            assert_eq!(h.failures as usize, attempt, "{backend:?}");
            assert!(h.reason.contains("500"), "{backend:?}: {h:?}");
            delays.push(h.delay());

            let early = app.run_once(settings.clone()).await;
            assert_eq!(
                early.processed, 0,
                "{backend:?}: not attempted while backing off"
            );
            assert_eq!(rx.requests().len(), attempt, "{backend:?}");
            make_due(db, id).await;
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
        app.run_once(settings.clone()).await;
        assert_eq!(keys(&rx.accepted(), "AptNum"), [1, 2, 3], "{backend:?}");
        let h = health(db, id).await;
        assert_eq!(h.failures, 0, "{backend:?}");
        assert_eq!(h.next_retry, None, "{backend:?}");

        // The next failure starts the schedule again from the base delay.
        rx.set(Behaviour::Status(500));
        db.exec(
            "INSERT INTO appointment (PatNum, AptStatus, Note) VALUES (1, 1, 'x')",
            &[],
        )
        .await;
        until_requests(db, rx, &settings, 5).await;
        let h = health(db, id).await;
        assert_eq!(h.failures, 1, "{backend:?}");
        assert!((48.0..=72.0).contains(&h.delay()), "{backend:?}: {h:?}");
    }
}

#[tokio::test]
async fn the_fiftieth_consecutive_failure_deactivates_and_reactivation_resumes_in_place() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    rx.set(Behaviour::Status(503));
    db.insert_appointments(3, &db.ago(30).await).await;
    let id = app.subscribe_to("/").await;
    let before = db.watermark(id).await;
    let settings = with_retry(Duration::ZERO, 50);

    for attempt in 1..=49 {
        assert_eq!(app.run_once(settings.clone()).await.failed, 1);
        let h = health(db, id).await;
        assert_eq!(h.failures, attempt);
        assert!(!h.deactivated, "deactivated after {attempt}");
    }
    app.run_once(settings.clone()).await;
    let h = health(db, id).await;
    assert_eq!(h.failures, 50);
    assert!(h.deactivated, "deactivated at the 50th");
    assert_eq!(h.next_retry, None);

    let after = app.run_once(settings.clone()).await;
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
    let h = health(db, id).await;
    assert_eq!((h.failures, h.deactivated), (0, false));
    assert_eq!(db.watermark(id).await, before);

    rx.set(Behaviour::Accept);
    app.run_once(settings).await;
    assert_eq!(
        keys(&rx.accepted(), "AptNum"),
        [1, 2, 3],
        "resumed from the same DateTimeStart"
    );
    assert!(db.watermark(id).await > before);
}

#[tokio::test]
async fn a_success_between_failures_resets_the_count() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(1, &db.ago(30).await).await;
    let id = app.subscribe_to("/").await;
    let settings = with_retry(Duration::ZERO, 3);

    rx.set(Behaviour::Status(500));
    app.run_once(settings.clone()).await;
    app.run_once(settings.clone()).await;
    assert_eq!(health(db, id).await.failures, 2);
    rx.set(Behaviour::Accept);
    app.run_once(settings.clone()).await;
    assert_eq!(health(db, id).await.failures, 0);

    rx.set(Behaviour::Status(500));
    db.exec(
        "INSERT INTO appointment (PatNum, AptStatus, Note) VALUES (1, 1, 'x')",
        &[],
    )
    .await;
    until_requests(db, rx, &settings, 4).await;
    app.run_once(settings.clone()).await;
    let h = health(db, id).await;
    assert_eq!(
        (h.failures, h.deactivated),
        (2, false),
        "counted from the success"
    );
    app.run_once(settings).await;
    assert!(
        health(db, id).await.deactivated,
        "the third in a row deactivates"
    );
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
}
