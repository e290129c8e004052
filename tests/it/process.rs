//! The process dies or is stopped: a SIGKILL at any moment loses nothing
//! and re-sends at most the batch in flight; a SIGTERM mid-request stops
//! promptly without moving the watermark. The real binary, really killed.

use crate::app::TestApp;
use crate::helpers::{eventually, keys, Process, Sub, PATIENCE};
use rowhook::receiver::Behaviour;
use std::time::Duration;

#[tokio::test]
async fn a_sigkilled_daemon_restarted_later_delivers_every_row() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    rx.set(Behaviour::Status(500));
    db.insert_appointments(250, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db
        .subscribe(Sub {
            polling: 0,
            ..Sub::new(&url)
        })
        .await;
    let before = db.watermark(id).await;

    let mut daemon = Process::start(db, &["run", "--batch-size", "100"]);
    assert!(
        rx.wait_until(PATIENCE, |r| r.len() >= 3).await,
        "the daemon keeps retrying"
    );
    daemon.signal("-KILL").await;
    let _ = daemon.exit_code().await;
    assert_eq!(db.watermark(id).await, before, "nothing was acknowledged");

    rx.set(Behaviour::Accept);
    let mut restarted = Process::start(db, &["run", "--batch-size", "100"]);
    let all = rx.wait_until(PATIENCE, |r| {
        let mut got = keys(
            &r.iter()
                .filter(|q| q.accepted())
                .cloned()
                .collect::<Vec<_>>(),
            "AptNum",
        );
        got.sort_unstable();
        got.dedup();
        got.len() == 250
    });
    let delivered = all.await;
    assert!(eventually(|| async { db.watermark(id).await > before }).await);
    restarted.signal("-TERM").await;
    assert_eq!(
        restarted.exit_code().await,
        Some(0),
        "SIGTERM is a clean stop"
    );
    assert!(delivered, "every row delivered after the restart");
}

/// Killed after several acknowledged batches, the restarted daemon resumes
/// after the last one it recorded: only the batch in flight (and one whose
/// 200 arrived as the process died) can be sent twice: not the whole
/// window, nor the batches before it in its page (three are read at once;
/// the kill comes after the second of the third page).
#[tokio::test]
async fn a_sigkill_mid_window_resumes_after_the_last_acknowledged_batch() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    rx.set(Behaviour::Slow(Duration::from_millis(200)));
    db.insert_appointments(500, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db
        .subscribe(Sub {
            polling: 0,
            ..Sub::new(&url)
        })
        .await;
    let before = db.watermark(id).await;

    let mut daemon = Process::start(db, &["run", "--batch-size", "50"]);
    assert!(rx.wait_until(PATIENCE, |r| r.len() >= 8).await);
    daemon.signal("-KILL").await;
    let _ = daemon.exit_code().await;
    let sent_before_kill = rx.accepted().len();
    // Rows share one stamp, so keys 1..=500 go in order, 50 a batch.
    let recorded: i64 = db
        .text(
            "SELECT CAST(cursor_key AS CHAR) FROM rowhook_progress WHERE subscription_num = ?",
            &[&id.to_string()],
        )
        .await
        .and_then(|k| k.parse().ok())
        .unwrap_or(0);
    assert!(
        recorded >= 50 * (sent_before_kill as i64 - 1),
        "the position after each acknowledged batch is recorded: {recorded} after {sent_before_kill} batches"
    );
    assert_eq!(
        db.watermark(id).await,
        before,
        "a window cut short does not move DateTimeStart"
    );

    rx.set(Behaviour::Accept);
    let mut restarted = Process::start(db, &["run", "--batch-size", "50"]);
    let all = rx
        .wait_until(PATIENCE, |r| {
            let mut got = keys(r, "AptNum");
            got.sort_unstable();
            got.dedup();
            got.len() == 500
        })
        .await;
    assert!(eventually(|| async { db.watermark(id).await > before }).await);
    restarted.signal("-TERM").await;
    let _ = restarted.exit_code().await;
    assert!(all, "every row delivered");
    let received = keys(&rx.accepted(), "AptNum").len();
    let duplicates = received - 500;
    println!("killed after {sent_before_kill} batches; {duplicates} duplicate rows");
    assert!(
        duplicates <= 100,
        "at most two batches of 50 again, got {duplicates}"
    );
}

#[tokio::test]
async fn sigterm_mid_request_stops_promptly_without_moving_the_watermark() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    rx.set(Behaviour::Hang(Duration::from_secs(60)));
    db.insert_appointments(5, &db.ago(30).await).await;
    let id = app.subscribe_to("/").await;
    let before = db.watermark(id).await;

    let mut daemon = Process::start(db, &["run"]);
    assert!(rx.wait_until(PATIENCE, |r| !r.is_empty()).await);
    daemon.signal("-TERM").await;

    assert_eq!(daemon.exit_code().await, Some(0));
    assert_eq!(db.watermark(id).await, before);
    assert!(
        daemon.log().contains("Shutdown requested"),
        "{}",
        daemon.log()
    );
}
