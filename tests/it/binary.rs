//! The real `rowhook` binary: killed, restarted, stopped, and read.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rowhook::receiver::{Behaviour, Receiver};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::helpers::{eventually, keys, run, Sub, TestDb, BIN, PATIENCE, WORKSTATION};

/// A running `rowhook` whose stderr is collected.
pub(crate) struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    fn start(db: &TestDb, args: &[&str]) -> Self {
        Self::start_at(&db.url, &[("RUST_LOG", "info")], args)
    }

    /// `rowhook ARGS` on the database at `url`, with `env` set.
    pub(crate) fn start_at(url: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", url)
            .env("ROWHOOK_WORKSTATION", WORKSTATION)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the rowhook binary starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self { child, stderr }
    }

    pub(crate) fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub(crate) async fn signal(&mut self, signal: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    pub(crate) async fn exit_code(&mut self) -> Option<i32> {
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .ok()?
            .ok()?
            .code()
    }
}

#[tokio::test]
async fn a_sigkilled_daemon_restarted_later_delivers_every_row() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
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

    let mut daemon = Process::start(&db, &["run", "--batch-size", "100"]);
    assert!(
        rx.wait_until(PATIENCE, |r| r.len() >= 3).await,
        "the daemon keeps retrying"
    );
    daemon.signal("-KILL").await;
    let _ = daemon.exit_code().await;
    assert_eq!(db.watermark(id).await, before, "nothing was acknowledged");

    rx.set(Behaviour::Accept);
    let mut restarted = Process::start(&db, &["run", "--batch-size", "100"]);
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
    db.drop().await;
}

/// Killed after several acknowledged batches, the restarted daemon resumes
/// after the last one it recorded: only the batch in flight (and one whose
/// 200 arrived as the process died) can be sent twice: not the whole
/// window, nor the batches before it in its page (three are read at once;
/// the kill comes after the second of the third page).
#[tokio::test]
async fn a_sigkill_mid_window_resumes_after_the_last_acknowledged_batch() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
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

    let mut daemon = Process::start(&db, &["run", "--batch-size", "50"]);
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
    let mut restarted = Process::start(&db, &["run", "--batch-size", "50"]);
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
    db.drop().await;
}

#[tokio::test]
async fn sigterm_mid_request_stops_promptly_without_moving_the_watermark() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    rx.set(Behaviour::Hang(Duration::from_secs(60)));
    db.insert_appointments(5, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db.subscribe(Sub::new(&url)).await;
    let before = db.watermark(id).await;

    let mut daemon = Process::start(&db, &["run"]);
    assert!(rx.wait_until(PATIENCE, |r| !r.is_empty()).await);
    daemon.signal("-TERM").await;

    assert_eq!(daemon.exit_code().await, Some(0));
    assert_eq!(db.watermark(id).await, before);
    assert!(
        daemon.log().contains("Shutdown requested"),
        "{}",
        daemon.log()
    );
    db.drop().await;
}

#[tokio::test]
async fn a_malformed_subscription_is_logged_once_with_its_number_and_reason() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
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

    let mut daemon = Process::start(&db, &["run"]);
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
    db.drop().await;
}

#[tokio::test]
async fn the_lookback_cut_is_logged_with_how_much_was_skipped() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    db.insert_appointments(2, &db.ago(5 * 86_400).await).await;
    let url = rx.url("/");
    let old = db.ago(6 * 86_400).await;
    db.subscribe(Sub {
        start: Some(&old),
        ..Sub::new(&url)
    })
    .await;

    // A whole-second lag, so that the window ends a second before `old` was
    // read, whatever the fraction of the second the run starts in.
    let (code, _, stderr) = run(Some(&db.url), &["run", "--once", "--safety-lag", "1s"]).await;

    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("rows_skipped=2"), "{stderr}");
    // Three days, less the safety lag and the test's own few milliseconds.
    assert!(stderr.contains("skipped=2days 23h 59m"), "{stderr}");
    db.drop().await;
}

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
    db.drop().await;
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
    db.drop().await;
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

/// Without the PROCESS grant rowhook cannot see open transactions: it says
/// so once and keeps delivering with the longer fallback lag.
#[tokio::test]
async fn without_the_process_grant_the_fallback_lag_is_used_and_said_once() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    db.insert_appointments(2, &db.ago(30).await).await;
    let url = rx.url("/");
    db.subscribe(Sub::new(&url)).await;
    let schema = db.text("SELECT DATABASE()", &[]).await.unwrap();
    let user = format!("rh_np_{}", std::process::id());
    db.exec(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"), &[])
        .await;
    db.exec(&format!("GRANT ALL ON `{schema}`.* TO '{user}'@'%'"), &[])
        .await;
    let url_np = format!("mysql://{user}:pw@127.0.0.1:3306/{schema}");

    let (code, _, stderr) = run(Some(&url_np), &["run", "--once"]).await;

    db.exec(&format!("DROP USER '{user}'@'%'"), &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr.matches("Cannot see open transactions").count(),
        1,
        "{stderr}"
    );
    assert_eq!(keys(&rx.accepted(), "AptNum"), [1, 2]);
    db.drop().await;
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
