//! The test fixture: a database of its own for each test, and the
//! receiver its subscriptions post to, removed when the test ends (passed
//! or failed), in the manner of zero2prod's `spawn_app`.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::NaiveDateTime;
use rowhook::config::Settings;
use rowhook::daemon::Summary;
use rowhook::db::Database;
use rowhook::receiver::Receiver;
use sqlx::Row;

use crate::helpers::{run_once, Daemon, Sub};

/// A fresh database and a receiver on loopback: what most tests start from.
pub struct TestApp {
    pub db: TestDb,
    pub rx: Receiver,
}

impl TestApp {
    pub async fn new(backend: Backend) -> Self {
        let db = TestDb::new(backend).await;
        let rx = Receiver::start().await.expect("the receiver starts");
        Self { db, rx }
    }

    pub async fn mysql() -> Self {
        Self::new(Backend::MySql).await
    }

    /// Subscribes the receiver's `path` with the defaults of [`Sub::new`].
    pub async fn subscribe_to(&self, path: &str) -> i64 {
        self.db.subscribe(Sub::new(&self.rx.url(path))).await
    }

    /// One pass over every due subscription, as `rowhook run --once`.
    pub async fn run_once(&self, settings: Settings) -> Summary {
        run_once(&self.db, settings).await
    }

    /// The daemon running in-process until stopped.
    pub fn daemon(&self, settings: Settings) -> Daemon {
        Daemon::start(&self.db, settings)
    }
}

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
    cleanup: Option<Cleanup>,
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

async fn drop_database(server: &str, name: &str) {
    if let Ok(admin) = admin(server).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}

/// Drops, once per test process, the databases of test processes that have
/// ended (their names carry the process id): a drop still pending when a
/// test binary exited.
async fn sweep_once(admin: &sqlx::MySqlPool) {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA \
                 WHERE SCHEMA_NAME LIKE 'rowhook\\_test\\_%'",
            )
            .fetch_all(admin)
            .await
            .unwrap_or_default();
            for name in names {
                let pid = name.split('_').nth(2).unwrap_or_default();
                if !std::path::Path::new("/proc").join(pid).exists() {
                    let sql = format!("DROP DATABASE IF EXISTS `{name}`");
                    let _ = sqlx::query(&sql).execute(admin).await;
                }
            }
        })
        .await;
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
        Self::mysql_with(server, include_str!("../../fixtures/mysql/schema.sql")).await
    }

    /// A fresh database with Open Dental 24.3's whole schema.
    pub async fn opendental_24_3() -> Self {
        let schema = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/opendental/schema-24.3.sql"),
        )
        .expect("fixtures/opendental/schema-24.3.sql");
        Self::mysql_with(mysql_server(), &schema).await
    }

    /// A fresh database on `server` with the tables of `schema`.
    pub async fn mysql_with(server: String, schema: &str) -> Self {
        let name = unique_name("rowhook_test");
        let admin = admin(&server).await.expect("MariaDB is reachable");
        sweep_once(&admin).await;
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
        sqlx::raw_sql(schema).execute(pool).await.unwrap();
        db.migrate().await.unwrap();
        Self {
            db,
            url,
            backend: Backend::MySql,
            cleanup: Some(Cleanup::MySql { server, name }),
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
            cleanup: Some(Cleanup::Sqlite(path)),
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
}

/// Every test database is removed when its test ends, passed or failed.
///
/// The `DROP DATABASE` goes from a thread of its own and is not waited for:
/// this runs inside the test's runtime, and a pool of that runtime (a
/// delivery log still committing, say) may hold a lock the drop must wait
/// for, which it could never release while the runtime is blocked. A drop
/// the process did not live to finish is swept by the next run
/// ([`sweep_once`]).
impl Drop for TestDb {
    fn drop(&mut self) {
        match self.cleanup.take() {
            Some(Cleanup::MySql { server, name }) => {
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    if let Ok(runtime) = runtime {
                        runtime.block_on(drop_database(&server, &name));
                    }
                });
            }
            Some(Cleanup::Sqlite(path)) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            None => {}
        }
    }
}
