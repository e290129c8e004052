//! The server's clock steps back by less than a second more than the
//! safety lag: rows written just after the step carry stamps below
//! `DateTimeStart`, and by the next tick the clock has caught up again, so
//! the stamps alone never show it (`rowhook::clock_watch`).
//!
//! The machine's clock cannot be stepped under the other tests, so this
//! test starts a MariaDB server of its own under libfaketime (Debian's
//! `faketime` package; `scripts/test` installs it), whose clock it moves through
//! libfaketime's offset file. Everything else is real: the server, its
//! `CURRENT_TIMESTAMP` stamps, HTTP on loopback.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::NaiveDateTime;
use rowhook::config::Settings;
use rowhook::domain::progress::Progress;
use rowhook::domain::progress::{Cursor, Resume};
use rowhook::domain::subscription::SubscriptionId;
use rowhook::receiver::Receiver;
use tokio::process::{Child, Command};

use crate::helpers::{eventually, keys, settings, Daemon, Sub, TestDb, BOTH, PATIENCE};

/// A private MariaDB whose clock follows an offset file.
struct SteppedServer {
    dir: PathBuf,
    port: u16,
    offset: Duration,
    _server: Child,
}

impl SteppedServer {
    async fn start() -> Self {
        let library = faketime_library();
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rowhook-faketime-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("offset"), "+0\n").unwrap();
        let installed = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .expect("mariadb-install-db runs (apt-get install mariadb-server; scripts/test does)");
        assert!(installed.success(), "mariadb-install-db failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let server = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--skip-name-resolve")
            .arg("--innodb-buffer-pool-size=32M")
            .env("LD_PRELOAD", &library)
            .env("FAKETIME_TIMESTAMP_FILE", dir.join("offset"))
            .env("FAKETIME_NO_CACHE", "1")
            .env("DONT_FAKE_MONOTONIC", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("mariadbd starts (apt-get install mariadb-server; scripts/test does)");
        let this = Self {
            dir,
            port,
            offset: Duration::ZERO,
            _server: server,
        };
        let url = this.url();
        let up = eventually(|| async {
            sqlx::MySqlPool::connect(&format!("{url}/mysql"))
                .await
                .is_ok()
        })
        .await;
        assert!(
            up,
            "the faketime MariaDB did not come up; see {}",
            this.dir.join("server.log").display()
        );
        this
    }

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// Steps the server's clock back by `by` (on top of earlier steps).
    fn step_back(&mut self, by: Duration) {
        self.offset += by;
        std::fs::write(
            self.dir.join("offset"),
            format!("-{:.3}\n", self.offset.as_secs_f64()),
        )
        .unwrap();
    }
}

impl Drop for SteppedServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn faketime_library() -> PathBuf {
    let mut candidates = vec![PathBuf::from("/usr/lib/faketime/libfaketimeMT.so.1")];
    if let Ok(dirs) = std::fs::read_dir("/usr/lib") {
        for dir in dirs.flatten() {
            candidates.push(dir.path().join("faketime/libfaketimeMT.so.1"));
        }
    }
    candidates
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("libfaketime is installed (apt-get install faketime; scripts/test does)")
}

/// Ticks a second apart, `PollingSeconds` 1: the clock steps back 1.5 s
/// just after a window ended and a row is written at once. Its stamp is
/// below `DateTimeStart`; the subscription is next due when the clock has
/// passed `DateTimeStart` again, so the stamps never show the step. The
/// row must still be sent (here the progress record moved back in the
/// database is what carries the rewind).
#[tokio::test]
async fn a_row_written_just_after_a_small_clock_step_back_is_sent() {
    row_written_after_a_step_is_sent(Duration::from_millis(1500), Duration::from_secs(1), 1).await;
}

/// Ticks two seconds apart, `PollingSeconds` 0: the subscription is due at
/// the very tick that notices a 600 ms step, and its window there already
/// ends a second past the row's stamp. The tick's own copy of the progress
/// record must be moved back too, or that window passes the row.
#[tokio::test]
async fn a_window_due_at_the_tick_that_notices_a_step_reads_from_before_it() {
    row_written_after_a_step_is_sent(Duration::from_millis(600), Duration::from_secs(2), 0).await;
}

async fn row_written_after_a_step_is_sent(step: Duration, tick: Duration, polling: i64) {
    let mut server = SteppedServer::start().await;
    let db = TestDb::mysql_on(server.url()).await;
    let rx = Receiver::start().await.unwrap();
    let url = rx.url("/");
    let id = db
        .subscribe(Sub {
            polling,
            ..Sub::new(&url)
        })
        .await;
    let daemon = Daemon::start(&db, Settings { tick, ..settings() });

    // A few ticks first, so the daemon knows the clock's offset.
    let first = db.watermark(id).await;
    assert!(eventually(|| async { db.watermark(id).await != first }).await);
    let mut behind = None;
    for attempt in 0..5 {
        // Just after a window ends, step back and write.
        let before = db.watermark(id).await;
        assert!(eventually(|| async { db.watermark(id).await != before }).await);
        server.step_back(step);
        db.exec(
            "INSERT INTO appointment (PatNum, Note) VALUES (1, 'after the step')",
            &[],
        )
        .await;
        let key: i64 = db
            .text("SELECT CAST(MAX(AptNum) AS CHAR) FROM appointment", &[])
            .await
            .and_then(|k| k.parse().ok())
            .expect("the row's key");
        let below = db
            .text(
                "SELECT CAST(a.DateTStamp < s.DateTimeStart AS CHAR) FROM appointment a, apisubscription s \
                 WHERE a.AptNum = ? AND s.ApiSubscriptionNum = ?",
                &[&key.to_string(), &id.to_string()],
            )
            .await;
        if below.as_deref() == Some("1") {
            behind = Some(key);
            break;
        }
        println!("attempt {attempt}: the row was not stamped below DateTimeStart; again");
    }
    let key = behind.expect("a row stamped below DateTimeStart (the case under test)");

    let sent = rx
        .wait_until(PATIENCE, |r| keys(r, "AptNum").contains(&key))
        .await;
    daemon.stop().await;
    assert!(sent, "the row written after the step was never sent");
}

/// After a step, the progress records move back in one statement, so that
/// the rewind holds for a subscription not due for a while and across a
/// restart: a position past the rewind moves to it, a partly delivered
/// window acknowledged past it is dropped, and one still before it stays.
#[tokio::test]
async fn rewinding_progress_moves_back_only_what_is_past_the_rewind() {
    let at = |s: &str| NaiveDateTime::parse_from_str(s, rowhook::DATETIME_FORMAT).unwrap();
    for backend in BOTH {
        let db = TestDb::new(backend).await;
        let record = |watermark: &str, window: Option<(&str, &str)>| Progress {
            date_time_start: "2026-12-01 10:00:00".into(),
            watermark: at(watermark),
            window: window.map(|(stop, cursor)| Resume {
                stop: at(stop),
                after: Cursor {
                    stamp: at(cursor),
                    key: 7,
                },
            }),
        };
        let past = record("2026-12-01 10:00:05", None);
        let acknowledged_past = record(
            "2026-12-01 10:00:01",
            Some(("2026-12-01 10:00:09", "2026-12-01 10:00:04")),
        );
        let before = record(
            "2026-12-01 10:00:01",
            Some(("2026-12-01 10:00:09", "2026-12-01 10:00:02")),
        );
        let mut ids = Vec::new();
        for progress in [&past, &acknowledged_past, &before] {
            let id = SubscriptionId(db.subscribe(Sub::new("http://127.0.0.1:9/")).await);
            db.db.save_progress(id, progress, None).await.unwrap();
            ids.push(id);
        }

        let moved = db
            .db
            .rewind_progress(at("2026-12-01 10:00:03"))
            .await
            .unwrap();

        let snapshot = db.db.snapshot().await.unwrap();
        let stored = |i: usize| snapshot.progress.get(&ids[i]).cloned();
        assert_eq!(moved, 2, "{backend:?}");
        assert_eq!(
            stored(0),
            Some(record("2026-12-01 10:00:03", None)),
            "{backend:?}"
        );
        assert_eq!(
            stored(1),
            Some(record("2026-12-01 10:00:01", None)),
            "{backend:?}"
        );
        assert_eq!(stored(2), Some(before), "{backend:?}");
    }
}
