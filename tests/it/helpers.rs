//! Test helpers: subscriptions, settings, the daemon in-process or as the
//! real binary, and waiting on a condition with a deadline.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rowhook::config::Settings;
use rowhook::daemon::{self, Summary};
use rowhook::window::Context;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

pub use crate::app::{mysql_server, Backend, TestDb, BOTH};

pub const WORKSTATION: &str = "TEST-WS";
/// The real binary, built by cargo for the tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_rowhook");
/// Long enough for a loaded CI machine; every wait ends as soon as its
/// condition holds.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// The lease of agents started as processes: the shortest rowhook takes.
pub const TEST_LEASE: &str = "2s";

/// A subscription row to insert; fields default to a due, never-expiring
/// Appointment subscription for [`WORKSTATION`].
#[derive(Debug, Clone, Copy)]
pub struct Sub<'a> {
    pub url: &'a str,
    pub table: &'a str,
    pub workstation: &'a str,
    pub key: &'a str,
    pub polling: i64,
    pub start: Option<&'a str>,
    pub stop: &'a str,
}

impl<'a> Sub<'a> {
    pub fn new(url: &'a str) -> Self {
        Self {
            url,
            table: "Appointment",
            workstation: WORKSTATION,
            key: "key123",
            polling: 1,
            start: None,
            stop: "0001-01-01 00:00:00",
        }
    }
}

/// Settings for tests of the spine's behaviour. Retries are not spaced out
/// (a failed subscription may run again on the next tick) so that a test of
/// "the rows come later" need not wait out a backoff; the tests of backoff
/// itself set a real [`RetryPolicy`](rowhook::domain::health::RetryPolicy).
pub fn settings() -> Settings {
    Settings {
        workstation: WORKSTATION.into(),
        request_timeout: Duration::from_secs(5),
        tick: Duration::from_millis(200),
        retry: rowhook::domain::health::RetryPolicy {
            base: Duration::ZERO,
            ..Default::default()
        },
        ..Settings::default()
    }
}

pub fn context(db: &TestDb, settings: Settings, shutdown: CancellationToken) -> Context {
    Context::new(db.db.clone(), settings, shutdown).expect("settings make an HTTP client")
}

/// How far apart passes of [`run_once`] start, across all tests.
///
/// Each pass reads `information_schema.INNODB_TRX`, and MariaDB serves that
/// table from a cache it refreshes only when nobody has read it for 100 ms.
/// Passes run back to back (a retry loop, fifty failures in a row) would
/// keep the cache from ever refreshing: every rowhook on the server,
/// other tests' included, would then go on seeing the transactions of the
/// moment the loop began — waiting for ones long finished, blind to new
/// ones. A daemon reads it once a second, as rowhook does in production.
const PASS_SPACING: Duration = Duration::from_millis(120);

/// Shared by every [`run_once`] pass, and held alone by the test that keeps
/// MariaDB's `INNODB_TRX` from refreshing: a pass made meanwhile would find
/// the list stale and fall back to `--fallback-lag`, which tests of exact
/// windows do not expect. (Daemons find it stale too; they wait where they
/// were, which tests that wait for a condition absorb.)
pub static TRX_VIEW: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// One pass over every due subscription, as `rowhook run --once`.
pub async fn run_once(db: &TestDb, settings: Settings) -> Summary {
    static LAST: tokio::sync::Mutex<Option<tokio::time::Instant>> =
        tokio::sync::Mutex::const_new(None);
    let mut last = LAST.lock().await;
    if let Some(at) = *last {
        tokio::time::sleep_until(at + PASS_SPACING).await;
    }
    *last = Some(tokio::time::Instant::now());
    drop(last);
    let _view = TRX_VIEW.read().await;
    daemon::run(context(db, settings, CancellationToken::new()), true).await
}

/// The daemon running in-process until the returned token is cancelled.
pub struct Daemon {
    pub stop: CancellationToken,
    handle: tokio::task::JoinHandle<Summary>,
}

impl Daemon {
    pub fn start(db: &TestDb, settings: Settings) -> Self {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(daemon::run(context(db, settings, stop.clone()), false));
        Self { stop, handle }
    }

    pub async fn stop(self) -> Summary {
        self.stop.cancel();
        self.handle.await.unwrap()
    }
}

/// The `AptNum`s (or other first key) in a list of requests, in order.
pub fn keys(requests: &[rowhook::receiver::Request], column: &str) -> Vec<i64> {
    requests
        .iter()
        .flat_map(|r| r.rows())
        .filter_map(|row| row.get(column).and_then(serde_json::Value::as_i64))
        .collect()
}

/// MariaDB's per-user and per-table counters (`userstat`) switched on for
/// one test. The setting is global, so the tests that count take turns,
/// and each puts the old value back when it is done.
pub struct Userstat {
    before: String,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Userstat {
    pub async fn on(db: &TestDb) -> Self {
        static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let turn = TURN.lock().await;
        let before = db
            .text("SELECT CAST(@@global.userstat AS CHAR)", &[])
            .await
            .unwrap_or_else(|| "0".into());
        db.script("SET GLOBAL userstat = 1").await;
        Self {
            before,
            _turn: turn,
        }
    }

    /// How many rows the server has read from `table` of this test's
    /// database since the counters were switched on.
    pub async fn rows_read(&self, db: &TestDb, table: &str) -> u64 {
        let name = db.url.rsplit('/').next().unwrap_or_default();
        db.text(
            "SELECT CAST(ROWS_READ AS CHAR) FROM information_schema.TABLE_STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            &[name, table],
        )
        .await
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
    }

    pub async fn off(self, db: &TestDb) {
        db.script(&format!("SET GLOBAL userstat = {}", self.before))
            .await;
    }
}

/// Waits, up to [`PATIENCE`], until `check` returns true.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Runs `rowhook ARGS` to completion; returns (exit code, stdout, stderr).
pub async fn run(db_url: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .env("ROWHOOK_WORKSTATION", WORKSTATION)
        .env_remove("DATABASE_URL")
        .env_remove("ROWHOOK_CONFIG");
    if let Some(url) = db_url {
        command.env("DATABASE_URL", url);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("rowhook finished in time")
        .expect("rowhook ran");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// A running `rowhook` whose stderr is collected.
pub struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    pub fn start(db: &TestDb, args: &[&str]) -> Self {
        Self::start_at(&db.url, &[("RUST_LOG", "info")], args)
    }

    /// `rowhook ARGS` on the database at `url`, with `env` set. Agents here
    /// are killed and started again, and a new one waits out its dead
    /// predecessor's lease before resuming; they run with the shortest
    /// lease ([`TEST_LEASE`]) so that wait is 2 s, not the default 10.
    pub fn start_at(url: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", url)
            .env_remove("ROWHOOK_CONFIG")
            .env("ROWHOOK_WORKSTATION", WORKSTATION)
            .env("ROWHOOK_LEASE", TEST_LEASE)
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

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub async fn signal(&mut self, signal: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    pub async fn exit_code(&mut self) -> Option<i32> {
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .ok()?
            .ok()?
            .code()
    }
}
