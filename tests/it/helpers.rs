//! Test harness: a fresh database per test, subscriptions, rows, and a way
//! to run the daemon in-process.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::NaiveDateTime;
use rowhook::config::Settings;
use rowhook::daemon::{self, Summary};
use rowhook::db::Database;
use rowhook::window::Context;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

pub const WORKSTATION: &str = "TEST-WS";
/// The real binary, built by cargo for the tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_rowhook");
/// Long enough for a loaded CI machine; every wait ends as soon as its
/// condition holds.
pub const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    MySql,
    Sqlite,
}

pub const BOTH: [Backend; 2] = [Backend::MySql, Backend::Sqlite];

/// A database of its own, with Open Dental-shaped tables and `migrate` run.
pub struct TestDb {
    pub db: Database,
    pub url: String,
    pub backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    MySql { server: String, name: String },
    Sqlite(std::path::PathBuf),
}

fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn mysql_server() -> String {
    std::env::var("ROWHOOK_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// Where test databases are created and dropped from. A connection with a
/// database of its own, because rowhook waits for write statements of
/// connections without one (they may name its tables across databases),
/// and a `DROP DATABASE` can run for a second on a busy machine: every
/// other test's windows would wait for it.
async fn admin(server: &str) -> Result<sqlx::MySqlPool, sqlx::Error> {
    sqlx::MySqlPool::connect(&format!("{server}/mysql")).await
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::MySql => Self::mysql().await,
            Backend::Sqlite => Self::sqlite().await,
        }
    }

    pub async fn mysql() -> Self {
        Self::mysql_on(mysql_server()).await
    }

    /// A fresh database on the MariaDB server at `server`.
    pub async fn mysql_on(server: String) -> Self {
        let name = unique_name("rowhook_test");
        let admin = admin(&server).await.expect("MariaDB is reachable");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let url = format!("{server}/{name}");
        let db = Database::connect(&url, 8).await.unwrap();
        let Database::MySql { pool, .. } = &db else {
            unreachable!()
        };
        sqlx::raw_sql(include_str!("../../fixtures/mysql/schema.sql"))
            .execute(pool)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        Self {
            db,
            url,
            backend: Backend::MySql,
            cleanup: Cleanup::MySql { server, name },
        }
    }

    pub async fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("{}.sqlite", unique_name("rowhook_test")));
        let url = format!("sqlite://{}", path.display());
        let db = Database::connect(&url, 8).await.unwrap();
        let Database::Sqlite(pool) = &db else {
            unreachable!()
        };
        sqlx::raw_sql(include_str!("../../fixtures/sqlite/schema.sql"))
            .execute(pool)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        Self {
            db,
            url,
            backend: Backend::Sqlite,
            cleanup: Cleanup::Sqlite(path),
        }
    }

    /// Runs one statement with text binds.
    pub async fn exec(&self, sql: &str, binds: &[&str]) -> u64 {
        match &self.db {
            Database::MySql { pool, .. } => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.execute(pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .rows_affected()
            }
            Database::Sqlite(pool) => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.execute(pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .rows_affected()
            }
        }
    }

    /// Runs several statements on one connection (so a `SET SESSION`
    /// applies to the statements after it).
    pub async fn script(&self, sql: &str) {
        let result = match &self.db {
            Database::MySql { pool, .. } => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
            Database::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
        };
        result.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// A single text value (`CAST(... AS CHAR)` on MySQL is the caller's job).
    pub async fn text(&self, sql: &str, binds: &[&str]) -> Option<String> {
        match &self.db {
            Database::MySql { pool, .. } => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.fetch_optional(pool)
                    .await
                    .unwrap()
                    .map(|r| r.get::<String, _>(0))
            }
            Database::Sqlite(pool) => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.fetch_optional(pool)
                    .await
                    .unwrap()
                    .map(|r| r.get::<String, _>(0))
            }
        }
    }

    pub async fn now(&self) -> NaiveDateTime {
        self.db.now().await.unwrap()
    }

    /// The server's time `secs` ago (negative: ahead), as a literal.
    pub async fn ago(&self, secs: i64) -> String {
        let t = self.now().await - chrono::Duration::seconds(secs);
        t.format(rowhook::DATETIME_FORMAT).to_string()
    }

    /// Inserts a subscription and returns its number.
    pub async fn subscribe(&self, sub: Sub<'_>) -> i64 {
        let start = match sub.start {
            Some(s) => s.to_owned(),
            None => self.ago(60).await,
        };
        let polling = sub.polling.to_string();
        self.exec(
            "INSERT INTO apisubscription (EndPointUrl, Workstation, CustomerKey, WatchTable, \
             PollingSeconds, UiEventType, DateTimeStart, DateTimeStop, Note) \
             VALUES (?, ?, ?, ?, ?, '', ?, ?, '')",
            &[
                sub.url,
                sub.workstation,
                sub.key,
                sub.table,
                &polling,
                &start,
                sub.stop,
            ],
        )
        .await;
        let id = self
            .text(
                "SELECT CAST(MAX(ApiSubscriptionNum) AS CHAR) FROM apisubscription",
                &[],
            )
            .await;
        id.and_then(|s| s.parse().ok())
            .expect("a subscription number")
    }

    /// `DateTimeStart` of subscription `id`, as text.
    pub async fn watermark(&self, id: i64) -> String {
        let sql = match self.backend {
            Backend::MySql => "SELECT CAST(DateTimeStart AS CHAR) FROM apisubscription WHERE ApiSubscriptionNum = ?",
            Backend::Sqlite => "SELECT DateTimeStart FROM apisubscription WHERE ApiSubscriptionNum = ?",
        };
        self.text(sql, &[&id.to_string()])
            .await
            .expect("subscription exists")
    }

    /// Inserts `n` appointments stamped `stamp`, in chunks; returns nothing,
    /// keys are 1..=n on a fresh table.
    pub async fn insert_appointments(&self, n: usize, stamp: &str) {
        for chunk_start in (0..n).step_by(500) {
            let count = (n - chunk_start).min(500);
            let values = vec![format!("(1, 1, 'note', '{stamp}')"); count].join(", ");
            self.exec(
                &format!(
                    "INSERT INTO appointment (PatNum, AptStatus, Note, DateTStamp) VALUES {values}"
                ),
                &[],
            )
            .await;
        }
    }

    pub async fn drop(self) {
        self.db.close().await;
        match self.cleanup {
            Cleanup::MySql { server, name } => {
                if let Ok(admin) = admin(&server).await {
                    let _ = sqlx::query(&format!("DROP DATABASE {name}"))
                        .execute(&admin)
                        .await;
                    admin.close().await;
                }
            }
            Cleanup::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
        }
    }
}

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
        .env_remove("DATABASE_URL");
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
