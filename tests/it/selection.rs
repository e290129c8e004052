//! Which subscriptions run: workstation, expiry, due time, UI events, bad rows.

use rowhook::receiver::Receiver;

use crate::app::TestApp;
use crate::helpers::{keys, settings, Sub, BOTH};

fn targets(rx: &Receiver) -> Vec<String> {
    rx.accepted().into_iter().map(|r| r.target).collect()
}

#[tokio::test]
async fn workstation_blank_or_same_name_in_any_case_runs_other_names_do_not() {
    for backend in BOTH {
        let app = TestApp::new(backend).await;
        let (db, rx) = (&app.db, &app.rx);
        db.insert_appointments(3, &db.ago(30).await).await;
        let (blank, same, other) = (rx.url("/blank"), rx.url("/same"), rx.url("/other"));
        db.subscribe(Sub {
            workstation: "",
            ..Sub::new(&blank)
        })
        .await;
        db.subscribe(Sub {
            workstation: "test-ws",
            ..Sub::new(&same)
        })
        .await;
        let other_id = db
            .subscribe(Sub {
                workstation: "FRONT-DESK",
                ..Sub::new(&other)
            })
            .await;
        let before = db.watermark(other_id).await;

        app.run_once(settings()).await;

        let mut got = targets(rx);
        got.sort();
        assert_eq!(got, ["/blank", "/same"], "{backend:?}");
        assert_eq!(keys(&rx.accepted(), "AptNum").len(), 6, "{backend:?}");
        assert_eq!(db.watermark(other_id).await, before, "{backend:?}");
    }
}

#[tokio::test]
async fn expired_subscriptions_are_skipped_and_never_expiring_ones_run() {
    for backend in BOTH {
        let app = TestApp::new(backend).await;
        let (db, rx) = (&app.db, &app.rx);
        db.insert_appointments(1, &db.ago(30).await).await;
        let (past, future) = (db.ago(10).await, db.ago(-3600).await);
        let cases = [
            ("/expired", past.as_str(), false),
            ("/until-later", future.as_str(), true),
            ("/never", "0001-01-01 00:00:00", true),
            ("/never-1800", "1800-01-01 00:00:00", true),
        ];
        for (path, stop, _) in cases {
            db.subscribe(Sub {
                stop,
                ..Sub::new(&rx.url(path))
            })
            .await;
        }

        app.run_once(settings()).await;

        let got = targets(rx);
        for (path, _, runs) in cases {
            assert_eq!(got.iter().any(|t| t == path), runs, "{backend:?} {path}");
        }
    }
}

#[tokio::test]
async fn a_subscription_runs_only_once_start_plus_polling_seconds_has_passed() {
    for backend in BOTH {
        let app = TestApp::new(backend).await;
        let (db, rx) = (&app.db, &app.rx);
        db.insert_appointments(2, &db.ago(30).await).await;
        let recent = db.ago(40).await;
        let waiting = db
            .subscribe(Sub {
                polling: 3600,
                start: Some(&recent),
                ..Sub::new(&rx.url("/later"))
            })
            .await;
        db.subscribe(Sub {
            polling: 5,
            start: Some(&recent),
            ..Sub::new(&rx.url("/now"))
        })
        .await;

        app.run_once(settings()).await;

        assert_eq!(targets(rx), ["/now"], "{backend:?}");
        assert_eq!(db.watermark(waiting).await, recent, "{backend:?}");
    }
}

#[tokio::test]
async fn an_empty_window_sends_nothing_and_still_advances() {
    for backend in BOTH {
        let app = TestApp::new(backend).await;
        let (db, rx) = (&app.db, &app.rx);
        let start = db.ago(60).await;
        let id = db
            .subscribe(Sub {
                start: Some(&start),
                ..Sub::new(&rx.url("/"))
            })
            .await;

        let summary = app.run_once(settings()).await;

        assert!(rx.requests().is_empty(), "{backend:?}");
        assert_eq!(summary.failed, 0);
        assert!(
            db.watermark(id).await > start,
            "{backend:?}: DateTimeStart did not advance"
        );
    }
}

#[tokio::test]
async fn unknown_and_injected_watch_tables_are_skipped_and_others_keep_running() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(2, &db.ago(30).await).await;
    let bad_urls = [rx.url("/missing"), rx.url("/injection"), rx.url("/ui")];
    let missing = db
        .subscribe(Sub {
            table: "NoSuchTable",
            ..Sub::new(&bad_urls[0])
        })
        .await;
    let injected = db
        .subscribe(Sub {
            table: "appointment; DROP TABLE patient",
            ..Sub::new(&bad_urls[1])
        })
        .await;
    let ui = db
        .subscribe(Sub {
            table: "",
            ..Sub::new(&bad_urls[2])
        })
        .await;
    let good_url = rx.url("/good");
    db.subscribe(Sub::new(&good_url)).await;
    let marks = [
        db.watermark(missing).await,
        db.watermark(injected).await,
        db.watermark(ui).await,
    ];

    app.run_once(settings()).await;

    assert_eq!(targets(rx), ["/good"]);
    assert_eq!(
        [
            db.watermark(missing).await,
            db.watermark(injected).await,
            db.watermark(ui).await
        ],
        marks
    );
    let patient = db
        .text("SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'patient'", &[])
        .await;
    assert_eq!(
        patient.as_deref(),
        Some("1"),
        "the injection must not have run"
    );
}
