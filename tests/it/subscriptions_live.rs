//! Subscriptions change while the daemon runs: picked up on the next tick,
//! never overwritten with a stale watermark.

use std::time::Duration;

use chrono::NaiveDateTime;
use rowhook::domain::progress::Progress;
use rowhook::domain::progress::{Cursor, Resume};
use rowhook::domain::subscription::SubscriptionId;
use rowhook::receiver::{Behaviour, Receiver};

use crate::app::TestApp;
use crate::helpers::{eventually, keys, settings, Daemon, Sub, TestDb, BOTH, PATIENCE};

#[tokio::test]
async fn subscriptions_inserted_edited_and_deleted_while_running_take_effect() {
    let db = TestDb::mysql().await;
    let first = Receiver::start().await.unwrap();
    let second = Receiver::start().await.unwrap();
    let daemon = Daemon::start(&db, settings());
    db.insert_appointments(1, &db.ago(30).await).await;

    // Inserted: starts delivering without a restart.
    let url = first.url("/");
    let id = db
        .subscribe(Sub {
            polling: 0,
            ..Sub::new(&url)
        })
        .await;
    assert!(
        first
            .wait_until(PATIENCE, |r| keys(r, "AptNum") == [1])
            .await
    );

    // Edited: the next change goes to the new URL.
    let moved = second.url("/moved");
    db.exec(
        "UPDATE apisubscription SET EndPointUrl = ? WHERE ApiSubscriptionNum = ?",
        &[&moved, &id.to_string()],
    )
    .await;
    // The edit is visible to the next tick; a change made after that tick
    // must go to the new URL.
    let marker = db.watermark(id).await;
    assert!(crate::helpers::eventually(|| async { db.watermark(id).await > marker }).await);
    db.exec(
        "UPDATE appointment SET Note = 'edited' WHERE AptNum = 1",
        &[],
    )
    .await;
    assert!(
        second
            .wait_until(PATIENCE, |r| keys(r, "AptNum") == [1])
            .await
    );

    // Deleted: nothing more is sent for it.
    db.exec(
        "DELETE FROM apisubscription WHERE ApiSubscriptionNum = ?",
        &[&id.to_string()],
    )
    .await;
    let witness_url = first.url("/witness");
    db.subscribe(Sub {
        polling: 0,
        ..Sub::new(&witness_url)
    })
    .await;
    db.exec(
        "UPDATE appointment SET Note = 'after delete' WHERE AptNum = 1",
        &[],
    )
    .await;
    // The witness subscription seeing the change proves a tick ran after it.
    let witnessed = first
        .wait_until(PATIENCE, |r| {
            r.iter()
                .any(|q| q.target == "/witness" && q.body.windows(12).any(|w| w == b"after delete"))
        })
        .await;
    daemon.stop().await;
    assert!(witnessed);
    assert_eq!(
        second.accepted().len(),
        1,
        "the deleted subscription sent nothing more"
    );
}

/// An operator rewinds `DateTimeStart` while a window is in flight: the
/// compare-and-set sees the change and leaves the operator's value, so the
/// replay happens.
#[tokio::test]
async fn an_operator_rewind_during_a_window_is_not_overwritten() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(3, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db
        .subscribe(Sub {
            polling: 3600,
            start: Some(&db.ago(4000).await),
            ..Sub::new(&url)
        })
        .await;
    rx.set(Behaviour::Slow(Duration::from_millis(500)));
    let daemon = app.daemon(settings());
    assert!(rx.wait_until(PATIENCE, |r| !r.is_empty()).await);

    let rewound = db.ago(7200).await;
    db.exec(
        "UPDATE apisubscription SET DateTimeStart = ? WHERE ApiSubscriptionNum = ?",
        &[&rewound, &id.to_string()],
    )
    .await;
    // The rewound subscription is due again at once and replays the rows.
    let replayed = rx
        .wait_until(PATIENCE, |r| keys(r, "AptNum") == [1, 2, 3, 1, 2, 3])
        .await;
    let advanced = eventually(|| async { db.watermark(id).await > rewound }).await;
    daemon.stop().await;

    assert!(replayed, "rows replayed from the rewound DateTimeStart");
    assert!(
        advanced,
        "the replayed window completed past the operator's value"
    );
}

/// An operator edit while a window is being paged ends the window at the
/// next batch: moved forward, stopped, or deleted.
#[tokio::test]
async fn operator_edits_mid_window_stop_it_at_the_next_batch() {
    let edits = [
        ("forward", "UPDATE apisubscription SET DateTimeStart = NOW() WHERE ApiSubscriptionNum = ?"),
        ("stop", "UPDATE apisubscription SET DateTimeStop = NOW() - INTERVAL 1 SECOND WHERE ApiSubscriptionNum = ?"),
        ("delete", "DELETE FROM apisubscription WHERE ApiSubscriptionNum = ?"),
    ];
    for (name, edit) in edits {
        let app = TestApp::mysql().await;
        let (db, rx) = (&app.db, &app.rx);
        db.insert_appointments(300, &db.ago(30).await).await;
        let url = rx.url("/");
        let id = db
            .subscribe(Sub {
                polling: 3600,
                start: Some(&db.ago(4000).await),
                ..Sub::new(&url)
            })
            .await;
        rx.set(Behaviour::Slow(Duration::from_millis(300)));
        let settings = rowhook::config::Settings {
            batch_size: 50,
            ..settings()
        };
        let daemon = app.daemon(settings);
        assert!(rx.wait_until(PATIENCE, |r| !r.is_empty()).await, "{name}");

        db.exec(edit, &[&id.to_string()]).await;
        let before_edit_seen = rx.requests().len();
        // The window ends at the next batch boundary: at most the batch in
        // flight and the one after the check arrive.
        let quiet = crate::helpers::eventually(|| async {
            let n = rx.requests().len();
            tokio::time::sleep(Duration::from_millis(800)).await;
            rx.requests().len() == n
        })
        .await;
        daemon.stop().await;

        assert!(quiet, "{name}: deliveries stopped");
        let sent = keys(&rx.requests(), "AptNum").len();
        assert!(
            sent <= (before_edit_seen + 2) * 50 && sent < 300,
            "{name}: {sent} rows sent after the edit"
        );
        if name == "forward" {
            let now = db.text("SELECT CAST(NOW() AS CHAR)", &[]).await.unwrap();
            assert!(
                db.watermark(id).await <= now,
                "{name}: the operator's value stands"
            );
        }
    }
}

/// A delivered window's end moves `DateTimeStart` and the progress record
/// together — on MariaDB in one statement once a record exists — and only
/// from the value the window read: after an operator's edit, neither moves.
#[tokio::test]
async fn a_window_closes_only_from_the_value_it_read() {
    for backend in BOTH {
        let db = TestDb::new(backend).await;
        let id = db
            .subscribe(Sub {
                start: Some("2024-01-01 10:00:00"),
                ..Sub::new("http://127.0.0.1:9/")
            })
            .await;
        let sub = SubscriptionId(id);
        let at = |s: &str| NaiveDateTime::parse_from_str(s, rowhook::DATETIME_FORMAT).unwrap();
        let done = |s: &str| Progress {
            date_time_start: s.into(),
            watermark: at(s),
            window: None,
        };
        // Ends a window read at `read`; what it returned, then
        // `DateTimeStart` and the progress record as stored.
        let close = async |read: &str, done: &Progress| {
            let closed = db
                .db
                .close_window(sub, &read.into(), done, None)
                .await
                .unwrap();
            let snapshot = db.db.snapshot().await.unwrap();
            (
                closed,
                db.watermark(id).await,
                snapshot.progress.get(&sub).cloned(),
            )
        };

        // No progress record yet.
        let first = done("2024-01-01 10:00:05");
        assert_eq!(
            close("2024-01-01 10:00:00", &first).await,
            (true, "2024-01-01 10:00:05".into(), Some(first.clone())),
            "{backend:?}"
        );

        // A record with a window partly delivered: the end clears it.
        let partly = Progress {
            window: Some(Resume {
                stop: at("2024-01-01 10:00:09"),
                after: Cursor {
                    stamp: at("2024-01-01 10:00:06"),
                    key: 7,
                },
            }),
            ..first
        };
        db.db.save_progress(sub, &partly, None).await.unwrap();
        let second = done("2024-01-01 10:00:09");
        assert_eq!(
            close("2024-01-01 10:00:05", &second).await,
            (true, "2024-01-01 10:00:09".into(), Some(second.clone())),
            "{backend:?}"
        );

        // An operator's edit: the window's end changes nothing.
        let operator = "2020-02-02 02:02:02";
        db.exec(
            "UPDATE apisubscription SET DateTimeStart = ? WHERE ApiSubscriptionNum = ?",
            &[operator, &id.to_string()],
        )
        .await;
        assert_eq!(
            close("2024-01-01 10:00:09", &done("2024-01-01 10:00:12")).await,
            (false, operator.into(), Some(second)),
            "{backend:?}"
        );
    }
}
