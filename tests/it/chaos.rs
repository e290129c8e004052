//! The proof for issue 3: concurrent writers (some holding transactions
//! open for seconds), a receiver that fails at random behind a proxy that
//! drops connections, the real binary SIGKILLed and restarted at random,
//! and MariaDB's connections cut once. At the end every row's final
//! version must have been accepted; duplicates are counted and bounded.
//!
//! Bounded: writers run for `WRITE_FOR`, then chaos stops and the daemon
//! gets `PATIENCE` to converge. Loopback only.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rowhook::db::Database;
use rowhook::receiver::{Behaviour, Receiver, Request};
use serde_json::Value;
use sqlx::MySqlPool;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Sub, TestDb, PATIENCE};

const WRITE_FOR: Duration = Duration::from_secs(15);
const BATCH: usize = 20;

#[tokio::test]
async fn chaos_loses_no_row_version_and_bounds_duplicates() {
    let seed: u64 = rand::random();
    println!("chaos seed {seed}");
    let db = TestDb::mysql().await;
    // Appointments and their history in InnoDB (transactions); patients stay
    // MyISAM, as in many Open Dental installs.
    db.exec("ALTER TABLE appointment ENGINE=InnoDB", &[]).await;
    db.exec("ALTER TABLE histappointment ENGINE=InnoDB", &[])
        .await;
    let Database::MySql { pool, .. } = &db.db else {
        unreachable!()
    };
    // Held-open transactions each keep a connection: give writers plenty.
    let writers_pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(32)
        .connect_with(db.url.parse::<sqlx::mysql::MySqlConnectOptions>().unwrap())
        .await
        .unwrap();

    let rx = Receiver::start().await.unwrap();
    let proxy = DropProxy::start(rx.url(""), seed).await;
    let start = db.ago(5).await;
    for (table, path) in [
        ("Appointment", "/a"),
        ("Patient", "/p"),
        ("AppointmentDeleted", "/d"),
    ] {
        let url = proxy.url(path);
        db.subscribe(Sub {
            table,
            polling: 0,
            start: Some(&start),
            ..Sub::new(&url)
        })
        .await;
    }
    let daemon_url = daemon_user(&db).await;

    let stop_writing = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            tokio::spawn(write(
                writers_pool.clone(),
                seed + w,
                Arc::clone(&stop_writing),
            ))
        })
        .collect();
    let flapper = tokio::spawn(flap(rx.setter(), seed, Arc::clone(&stop_writing)));

    // Rows are told apart by columns Open Dental's deleted-appointment
    // element does not carry (`HistApptNum`), so the raw-column body.
    let args = [
        "run",
        "--body",
        "columns",
        "--batch-size",
        "20",
        "--request-timeout",
        "1s",
    ];
    let mut daemon = Daemon::start(&daemon_url, &args);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut kills, mut cut) = (0, false);
    let began = tokio::time::Instant::now();
    while began.elapsed() < WRITE_FOR {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1500..4000))).await;
        if !cut && began.elapsed() > WRITE_FOR / 2 {
            cut = cut_connections(pool, &daemon_url).await > 0;
        } else {
            daemon.kill().await;
            kills += 1;
            daemon = Daemon::start(&daemon_url, &args);
        }
    }
    stop_writing.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    flapper.await.unwrap();
    rx.set(Behaviour::Accept);
    proxy.calm();

    // Converge: every row's final version accepted.
    let expected = final_versions(pool).await;
    let converged = rx
        .wait_until(PATIENCE, |r| missing(&expected, r).is_empty())
        .await;
    daemon.kill().await;

    let accepted = rx.accepted();
    let lost = missing(&expected, &rx.requests());
    let total: usize = accepted.iter().map(|r| r.rows().len()).sum();
    let unique: HashSet<(String, String)> = accepted.iter().flat_map(versions).collect();
    let duplicates = total - unique.len();
    let failures = rx.requests().len() - accepted.len() + proxy.dropped();
    let disorder = order_breaks(&accepted);
    println!(
        "chaos: {} row versions expected, {} accepted rows, {} unique, {} duplicates, {} missing; \
         {kills} kills, connection cut: {cut}, {failures} failed requests, {} requests, {disorder} order resets",
        expected.len(), total, unique.len(), duplicates, lost.len(), rx.requests().len()
    );
    assert!(
        converged && lost.is_empty(),
        "missing row versions: {lost:?}"
    );
    assert!(cut, "the daemon's database connections were cut once");
    let interruptions = kills + failures + 1;
    assert!(
        duplicates <= interruptions * BATCH,
        "{duplicates} duplicates for {interruptions} interruptions of at most {BATCH} rows"
    );
    assert!(
        disorder <= interruptions,
        "order broke {disorder} times without a failure"
    );
}

/// Switches the receiver between accepting, 500 and hanging past the
/// daemon's 1 s timeout, until writing stops.
async fn flap(set: impl Fn(Behaviour), seed: u64, stop: Arc<AtomicBool>) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xF1A9);
    while !stop.load(Ordering::Relaxed) {
        set(match rng.gen_range(0..10) {
            0..=5 => Behaviour::Accept,
            6..=7 => Behaviour::Status(500),
            _ => Behaviour::Hang(Duration::from_secs(2)),
        });
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..600))).await;
    }
}

/// One writer: inserts and updates appointments and patients, deletes
/// appointments through histappointment, sometimes inside a transaction
/// held open for seconds.
async fn write(pool: MySqlPool, seed: u64, stop: Arc<AtomicBool>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0u64;
    let mut held_open = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let note = format!("w{seed}-{n}");
        let result = match rng.gen_range(0..10) {
            0..=2 => insert_appointment(&pool, &note).await,
            3..=4 => sqlx::query("UPDATE appointment SET Note = ? WHERE AptNum = ?")
                .bind(&note)
                .bind(rng.gen_range(1..=n as i64 + 1))
                .execute(&pool)
                .await
                .map(drop),
            5 => {
                let (pool, hold) = (pool.clone(), rng.gen_range(2000..4000));
                held_open.spawn(async move { slow_insert(&pool, &note, hold).await });
                Ok(())
            }
            6 => delete_appointment(&pool, rng.gen_range(1..=n as i64 + 1)).await,
            7 => sqlx::query("INSERT INTO patient (LName, FName) VALUES ('Chaos', ?)")
                .bind(&note)
                .execute(&pool)
                .await
                .map(drop),
            _ => sqlx::query("UPDATE patient SET FName = ? WHERE PatNum = ?")
                .bind(&note)
                .bind(rng.gen_range(1..=n as i64 / 3 + 1))
                .execute(&pool)
                .await
                .map(drop),
        };
        if let Err(e) = result {
            // Deadlocks and lock waits are part of the chaos; the row simply
            // keeps its previous version.
            eprintln!("writer: {e}");
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(5..40))).await;
    }
    while let Some(done) = held_open.join_next().await {
        if let Ok(Err(e)) = done {
            eprintln!("writer: {e}");
        }
    }
}

async fn insert_appointment(pool: &MySqlPool, note: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO appointment (PatNum, Note) VALUES (1, ?)")
        .bind(note)
        .execute(pool)
        .await
        .map(drop)
}

async fn slow_insert(pool: &MySqlPool, note: &str, hold_ms: u64) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO appointment (PatNum, Note) VALUES (2, ?)")
        .bind(note)
        .execute(&mut *tx)
        .await?;
    tokio::time::sleep(Duration::from_millis(hold_ms)).await; // the scenario: a long transaction
    tx.commit().await
}

async fn delete_appointment(pool: &MySqlPool, apt: i64) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let victim: Option<i64> =
        sqlx::query_scalar("SELECT AptNum FROM appointment WHERE AptNum = ? FOR UPDATE")
            .bind(apt)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(apt) = victim {
        sqlx::query(
            "INSERT INTO histappointment (HistApptAction, AptNum, PatNum, Note) \
             SELECT 4, AptNum, PatNum, Note FROM appointment WHERE AptNum = ?",
        )
        .bind(apt)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM appointment WHERE AptNum = ?")
            .bind(apt)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// (subscription path, key, note) of every row version that must have been
/// accepted: each row's final state, and each deletion.
async fn final_versions(pool: &MySqlPool) -> HashSet<(String, String)> {
    let mut all = HashSet::new();
    for (path, sql) in [
        ("/a", "SELECT CONCAT(AptNum, '|', IFNULL(Note, '')) FROM appointment"),
        ("/p", "SELECT CONCAT(PatNum, '|', IFNULL(FName, '')) FROM patient"),
        ("/d", "SELECT CONCAT(HistApptNum, '|', IFNULL(Note, '')) FROM histappointment WHERE HistApptAction = 4"),
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
        all.extend(rows.into_iter().map(|r| (path.to_owned(), r)));
    }
    all
}

/// The versions carried by one request: (path, "key|note").
fn versions(request: &Request) -> Vec<(String, String)> {
    let path = request.target.clone();
    let (key, text) = match path.as_str() {
        "/a" => ("AptNum", "Note"),
        "/p" => ("PatNum", "FName"),
        _ => ("HistApptNum", "Note"),
    };
    let show = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_default();
    request
        .rows()
        .iter()
        .map(|row| (path.clone(), format!("{}|{}", row[key], show(&row[text]))))
        .collect()
}

fn missing(expected: &HashSet<(String, String)>, requests: &[Request]) -> Vec<(String, String)> {
    let got: HashSet<(String, String)> = requests
        .iter()
        .filter(|r| r.accepted())
        .flat_map(versions)
        .collect();
    let mut lost: Vec<_> = expected.difference(&got).cloned().collect();
    lost.sort();
    lost
}

/// Within each request rows are in (stamp, key) order; across a
/// subscription's accepted requests the order may restart only where a
/// window was re-sent. Returns how many times it restarted.
fn order_breaks(accepted: &[Request]) -> usize {
    let mut last: HashMap<String, (String, i64)> = HashMap::new();
    let mut breaks = 0;
    for request in accepted {
        let (stamp_col, key_col) = match request.target.as_str() {
            "/p" => ("DateTStamp", "PatNum"),
            "/a" => ("DateTStamp", "AptNum"),
            _ => ("DateTStamp", "HistApptNum"),
        };
        let order: Vec<(String, i64)> = request
            .rows()
            .iter()
            .map(|r| {
                (
                    r[stamp_col].as_str().unwrap_or_default().to_owned(),
                    r[key_col].as_i64().unwrap_or_default(),
                )
            })
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "rows out of order inside one request"
        );
        if let (Some(prev), Some(first)) = (last.get(&request.target), order.first()) {
            if first <= prev {
                breaks += 1;
            }
        }
        if let Some(l) = order.last() {
            last.insert(request.target.clone(), l.clone());
        }
    }
    breaks
}

/// A database user of its own for the daemon, so its connections can be
/// told apart and cut. Returns its URL.
async fn daemon_user(db: &TestDb) -> String {
    let schema = db.text("SELECT DATABASE()", &[]).await.unwrap();
    let user = format!("rh_chaos_{}", std::process::id());
    db.exec(&format!("DROP USER IF EXISTS '{user}'@'%'"), &[])
        .await;
    db.exec(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"), &[])
        .await;
    db.exec(&format!("GRANT ALL ON `{schema}`.* TO '{user}'@'%'"), &[])
        .await;
    db.exec(&format!("GRANT PROCESS ON *.* TO '{user}'@'%'"), &[])
        .await;
    crate::helpers::mysql_server().replace("root@", &format!("{user}:pw@")) + "/" + &schema
}

/// Kills every server connection of the daemon's user; returns how many.
async fn cut_connections(pool: &MySqlPool, daemon_url: &str) -> usize {
    let user = daemon_url
        .trim_start_matches("mysql://")
        .split(':')
        .next()
        .unwrap_or_default();
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST WHERE USER = ?",
    )
    .bind(user)
    .fetch_all(pool)
    .await
    .unwrap();
    for id in &ids {
        let _ = sqlx::query(&format!("KILL CONNECTION {id}"))
            .execute(pool)
            .await;
    }
    ids.len()
}

/// The real binary, started and SIGKILLed.
struct Daemon(tokio::process::Child);

impl Daemon {
    fn start(url: &str, args: &[&str]) -> Self {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rowhook"))
            .args(args)
            .env("DATABASE_URL", url)
            .env("ROWHOOK_WORKSTATION", crate::helpers::WORKSTATION)
            .env("ROWHOOK_LEASE", crate::helpers::TEST_LEASE)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("rowhook starts");
        Self(child)
    }

    async fn kill(&mut self) {
        let _ = self.0.start_kill();
        let _ = self.0.wait().await;
    }
}

/// A loopback TCP proxy in front of the receiver that, at random, reads the
/// start of a request and closes the connection without an answer.
struct DropProxy {
    port: u16,
    calm: Arc<AtomicBool>,
    dropped: Arc<AtomicUsize>,
}

impl DropProxy {
    async fn start(target: String, seed: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = target.trim_start_matches("http://").to_owned();
        let calm = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (c, d) = (Arc::clone(&calm), Arc::clone(&dropped));
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ 0xD20F);
            while let Ok((mut client, _)) = listener.accept().await {
                if !c.load(Ordering::Relaxed) && rng.gen_range(0..6) == 0 {
                    d.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        let mut buf = [0u8; 64];
                        let _ = client.read(&mut buf).await;
                    });
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self {
            port,
            calm,
            dropped,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn calm(&self) {
        self.calm.store(true, Ordering::Relaxed);
    }

    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }
}
