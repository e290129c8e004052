//! Exactly the changed rows: late commits, clocks and DST (issue 3).

use std::time::Duration;

use rowhook::db::{Database, OpenWrites};
use rowhook::domain::progress::Clock;
use rowhook::domain::subscription::Parsed;
use rowhook::receiver::Receiver;
use rowhook::window::{self, Job, Outcome, TickTimes};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    context, eventually, keys, run_once, settings, Daemon, Sub, TestDb, PATIENCE, TRX_VIEW,
};

/// The server's clock is at least `t` (waits, up to [`PATIENCE`]).
async fn clock_passes(db: &TestDb, t: chrono::NaiveDateTime) {
    assert!(
        eventually(|| async { db.now().await >= t }).await,
        "the server's clock reached {t}"
    );
}

/// A test database whose `appointment` is InnoDB (transactions, row locks),
/// with one subscription on it due every tick, and that subscription's
/// receiver.
async fn innodb_subscribed() -> (TestDb, Receiver) {
    let db = TestDb::mysql().await;
    db.exec("ALTER TABLE appointment ENGINE=InnoDB", &[]).await;
    let rx = Receiver::start().await.unwrap();
    db.subscribe(Sub {
        polling: 0,
        ..Sub::new(&rx.url("/"))
    })
    .await;
    (db, rx)
}

/// The MariaDB pool behind a test database.
fn pool(db: &TestDb) -> &sqlx::MySqlPool {
    let Database::MySql { pool, .. } = &db.db else {
        unreachable!("a MariaDB test database")
    };
    pool
}

/// Windows wait for open transactions of rowhook's own database only: a
/// long transaction of another database on the same server (another
/// application, another practice) holds nothing back, while one in the
/// watched database still does.
#[tokio::test]
async fn only_transactions_in_the_watched_database_hold_windows_back() {
    let db = TestDb::mysql().await;
    let elsewhere = TestDb::mysql().await;
    for d in [&db, &elsewhere] {
        d.exec("ALTER TABLE appointment ENGINE=InnoDB", &[]).await;
    }
    let rx = Receiver::start().await.unwrap();
    db.subscribe(Sub {
        polling: 0,
        ..Sub::new(&rx.url("/"))
    })
    .await;
    let second = chrono::Duration::seconds(1);
    let text = |t: chrono::NaiveDateTime| t.format(rowhook::DATETIME_FORMAT).to_string();

    // Each round: a transaction that has written, open since `t0`; a row
    // stamped a second later, committed; the clock past the safety lag.
    // Waiting for the transaction would end the window at `t0 - 1 s`,
    // before the row.
    for (round, (holder, apt)) in [(&elsewhere, 1), (&db, 2)].into_iter().enumerate() {
        let t0 = db.now().await;
        let mut open = pool(holder).begin().await.unwrap();
        sqlx::query("INSERT INTO appointment (AptNum, PatNum, Note) VALUES (100, 1, 'open')")
            .execute(&mut *open)
            .await
            .unwrap();
        let stamp = text(t0 + second);
        db.exec(
            "INSERT INTO appointment (AptNum, PatNum, Note, DateTStamp) VALUES (?, 1, 'row', ?)",
            &[&apt.to_string(), &stamp],
        )
        .await;
        clock_passes(&db, t0 + second * 3).await;
        run_once(&db, settings()).await;
        let sent = keys(&rx.accepted(), "AptNum");
        match round {
            0 => assert_eq!(sent, [1], "another database's transaction holds nothing"),
            _ => assert_eq!(sent, [1], "our own database's open transaction holds row 2"),
        }
        open.rollback().await.unwrap();
    }
    // The server may show the ended transaction for a moment longer (see
    // `run_once`), so the row is awaited rather than expected at once.
    let arrived = eventually(|| async {
        run_once(&db, settings()).await;
        keys(&rx.accepted(), "AptNum") == [1, 2]
    })
    .await;
    assert!(
        arrived,
        "row 2 once the transaction ended: {:?}",
        keys(&rx.accepted(), "AptNum")
    );
}

/// A row written by a transaction that commits after a poll carries a stamp
/// older than the poll. Open Dental (and a naive `stop = NOW()`) would move
/// `DateTimeStart` past it while it is invisible, and never send it.
#[tokio::test]
async fn a_row_committed_late_by_a_long_transaction_is_still_delivered() {
    let (db, rx) = innodb_subscribed().await;
    let pool = pool(&db);
    let daemon = Daemon::start(&db, settings());

    // A writer opens a transaction, stamps a row, and holds it open while
    // other rows are committed and several ticks pass.
    let mut late = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO appointment (AptNum, PatNum, Note) VALUES (1, 1, 'late')")
        .execute(&mut *late)
        .await
        .unwrap();
    db.exec(
        "INSERT INTO appointment (AptNum, PatNum, Note) VALUES (2, 1, 'quick')",
        &[],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await; // the scenario: a slow transaction
    late.commit().await.unwrap();

    let both = rx.wait_until(PATIENCE, |r| {
        let mut k = keys(r, "AptNum");
        k.sort_unstable();
        k.dedup();
        k == [1, 2]
    });
    let delivered = both.await;
    daemon.stop().await;
    assert!(
        delivered,
        "the late-committed row must arrive: got {:?}",
        keys(&rx.accepted(), "AptNum")
    );
}

/// A write waiting for a lock has read the clock already: when the lock is
/// released (here a backup's `LOCK TABLES … READ`), its row carries the
/// second the statement started, not the second it lands. On InnoDB
/// readers go on meanwhile (on MyISAM the read would queue behind the
/// writer), so a window that ends a safety lag behind the clock would pass
/// the stamp while the row is not there yet, and never send it.
#[tokio::test]
async fn a_write_waiting_for_a_lock_holds_windows_back() {
    let (db, rx) = innodb_subscribed().await;
    let pool = pool(&db);
    let mut backup = pool.acquire().await.unwrap();
    sqlx::query("LOCK TABLES appointment READ")
        .execute(&mut *backup)
        .await
        .unwrap();
    let writer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            sqlx::query("INSERT INTO appointment (AptNum, PatNum, Note) VALUES (1, 1, 'waited')")
                .execute(&pool)
                .await
        })
    };
    let waiting = eventually(|| async {
        let sql = "SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.PROCESSLIST \
                   WHERE DB = DATABASE() AND INFO LIKE 'INSERT INTO appointment%'";
        db.text(sql, &[]).await.as_deref() == Some("1")
    })
    .await;
    assert!(waiting, "the insert waits for the lock");
    let t0 = db.now().await;
    clock_passes(&db, t0 + chrono::Duration::seconds(3)).await;
    run_once(&db, settings()).await;
    assert!(rx.accepted().is_empty(), "nothing to send yet");

    sqlx::query("UNLOCK TABLES")
        .execute(&mut *backup)
        .await
        .unwrap();
    writer.await.unwrap().unwrap();
    let arrived = eventually(|| async {
        run_once(&db, settings()).await;
        keys(&rx.accepted(), "AptNum") == [1]
    })
    .await;
    assert!(
        arrived,
        "the row written once the lock was released: {:?}",
        keys(&rx.accepted(), "AptNum")
    );
    drop(backup);
}

/// MariaDB serves `INNODB_TRX` from a cache that it refreshes only when
/// nobody has read it for 100 ms, so a client reading it continuously
/// freezes what everyone sees: transactions begun since are missing. The
/// probe notices (its own transaction is missing too) rather than trust
/// the list, and trusts it again once the reader stops.
#[tokio::test]
async fn a_list_of_transactions_kept_stale_by_another_reader_is_not_trusted() {
    let db = TestDb::mysql().await;
    let _alone = TRX_VIEW.write().await;
    let pool = pool(&db);
    // The reader loops inside the server, every 10 ms for at least 4.5 s
    // (longer than the probe keeps asking), so that no client-side
    // scheduling can leave a 100 ms gap.
    let mut conn = pool.acquire().await.unwrap();
    let reader_id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let reader = sqlx::raw_sql(
        "BEGIN NOT ATOMIC DECLARE i INT DEFAULT 0; \
         WHILE i < 450 DO \
           DO (SELECT COUNT(*) FROM information_schema.INNODB_TRX); \
           DO SLEEP(0.01); SET i = i + 1; \
         END WHILE; END",
    )
    .execute(&mut *conn);
    let probe_meanwhile = async {
        let reading = eventually(|| async {
            let sql = "SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.PROCESSLIST \
                       WHERE ID = ? AND COMMAND = 'Query'";
            db.text(sql, &[&reader_id.to_string()]).await.as_deref() == Some("1")
        })
        .await;
        assert!(reading, "the reader runs");
        db.db.open_writes().await.unwrap()
    };
    let (read, meanwhile) = tokio::join!(reader, probe_meanwhile);
    read.unwrap();
    assert_eq!(meanwhile, OpenWrites::Stale);
    let trusted = eventually(|| async { db.db.open_writes().await.unwrap() != OpenWrites::Stale });
    assert!(trusted.await, "the list is trusted once it is refreshed");
}

/// Loads MariaDB's time zone tables when they are missing (CI does this in
/// `.ci/run`; a developer's machine may not have).
async fn ensure_time_zones(db: &TestDb) {
    // Two DST tests may find the tables missing at once; one loads them.
    static LOADING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = LOADING.lock().await;
    let probe = "SELECT CAST(CONVERT_TZ('2024-11-03 01:30:00','America/New_York','UTC') IS NOT NULL AS CHAR)";
    if db.text(probe, &[]).await.as_deref() == Some("1") {
        return;
    }
    let status = tokio::process::Command::new("sh")
        .args(["-c", "mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null | mariadb -uroot -h127.0.0.1 --protocol=tcp mysql"])
        .status()
        .await
        .unwrap();
    assert!(
        status.success(),
        "could not load MariaDB's time zone tables"
    );
    assert_eq!(
        db.text(probe, &[]).await.as_deref(),
        Some("1"),
        "MariaDB still does not know America/New_York"
    );
}

/// Drives the processor through a DST change with Open Dental's zone set to
/// America/New_York and the server clock walked by `SET timestamp`: one row
/// every 20 minutes, a tick five seconds after each. Returns the AptNums
/// received, in order.
async fn walk(db: &TestDb, steps_utc: &[(&str, &str)]) -> Vec<i64> {
    ensure_time_zones(db).await;
    let zone = Some("America/New_York");
    let ny = Database::connect_in_zone(&db.url, 2, zone).await.unwrap();
    let Database::MySql { pool: writer, .. } = &ny else {
        unreachable!()
    };
    let rx = Receiver::start().await.unwrap();
    let url = rx.url("/");
    let (first_utc, _) = steps_utc[0];
    let start = format!("{} 00:00:00", &first_utc[..10]);
    let id = db
        .subscribe(Sub {
            polling: 0,
            start: Some(&start),
            ..Sub::new(&url)
        })
        .await;
    let ctx = context(db, settings(), CancellationToken::new());
    let ctx = window::Context {
        db: ny.clone(),
        ..ctx
    };

    for (i, (utc, local_now)) in steps_utc.iter().enumerate() {
        let insert = format!(
            "SET timestamp = UNIX_TIMESTAMP('{utc}');
             INSERT INTO appointment (AptNum, PatNum, Note) VALUES ({}, 1, '{utc}');
             SET timestamp = DEFAULT;",
            i + 1
        );
        sqlx::raw_sql(&insert).execute(writer).await.unwrap();
        let snapshot = ny.snapshot().await.unwrap();
        let row = snapshot.subscriptions.iter().find(|r| r.num == id).unwrap();
        let Ok(Parsed::Database(sub)) = row.parse() else {
            panic!("{row:?}")
        };
        let table = ny.resolve(&sub.target).await.unwrap();
        let at =
            |s: &str| chrono::NaiveDateTime::parse_from_str(s, rowhook::DATETIME_FORMAT).unwrap();
        // The walked clock: a tick five seconds after each row.
        let instant = at(utc) + chrono::Duration::seconds(5);
        let clock = Clock {
            local: at(local_now),
            instant,
        };
        let progress = snapshot.progress.get(&sub.id).cloned();
        let stop = window::Stop {
            instant,
            local: None,
        };
        let job = Job {
            subscription: *sub,
            progress,
            secrets: None,
            body: Default::default(),
            lease: None,
        };
        let lookups = Default::default();
        let times = TickTimes {
            clock,
            stop: &stop,
            lookups: &lookups,
        };
        let outcome = window::process(&ctx, &job, &table, times).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Delivered { .. }),
            "step {utc}: {outcome:?}"
        );
    }
    ny.close().await;
    keys(&rx.accepted(), "AptNum")
}

#[tokio::test]
async fn a_dst_fall_back_repeats_an_hour_and_no_row_is_lost() {
    let db = TestDb::mysql().await;
    // 2024-11-03: 06:00 UTC is 02:00 EDT, which becomes 01:00 EST.
    let steps = [
        ("2024-11-03 05:10:00", "2024-11-03 01:10:05"),
        ("2024-11-03 05:30:00", "2024-11-03 01:30:05"),
        ("2024-11-03 05:50:00", "2024-11-03 01:50:05"),
        ("2024-11-03 06:10:00", "2024-11-03 01:10:05"),
        ("2024-11-03 06:30:00", "2024-11-03 01:30:05"),
        ("2024-11-03 06:50:00", "2024-11-03 01:50:05"),
        ("2024-11-03 07:10:00", "2024-11-03 02:10:05"),
    ];
    let got = walk(&db, &steps).await;
    let mut unique = got.clone();
    unique.sort_unstable();
    unique.dedup();
    println!(
        "fall-back: {} rows received, {} duplicates",
        got.len(),
        got.len() - unique.len()
    );
    assert_eq!(
        unique,
        [1, 2, 3, 4, 5, 6, 7],
        "every row at least once: {got:?}"
    );
}

#[tokio::test]
async fn a_dst_spring_forward_skips_an_hour_and_every_row_arrives_once() {
    let db = TestDb::mysql().await;
    // 2024-03-10: 07:00 UTC is 02:00 EST, which becomes 03:00 EDT.
    let steps = [
        ("2024-03-10 06:30:00", "2024-03-10 01:30:05"),
        ("2024-03-10 06:50:00", "2024-03-10 01:50:05"),
        ("2024-03-10 07:05:00", "2024-03-10 03:05:05"),
        ("2024-03-10 07:30:00", "2024-03-10 03:30:05"),
    ];
    let got = walk(&db, &steps).await;
    assert_eq!(got, [1, 2, 3, 4]);
}

/// The time zone flag reaches the session: with the session at +05:00 the
/// subscription (written in that zone) is due and its rows arrive. With the
/// driver's forced UTC session it would look five hours in the future.
#[tokio::test]
async fn the_session_time_zone_is_the_servers_or_the_one_configured() {
    let db = TestDb::mysql().await;
    let shifted = Database::connect_in_zone(&db.url, 2, Some("+05:00"))
        .await
        .unwrap();
    let rx = Receiver::start().await.unwrap();
    let Database::MySql { pool, .. } = &shifted else {
        unreachable!()
    };
    sqlx::raw_sql(
        "INSERT INTO appointment (AptNum, PatNum, DateTStamp) VALUES (1, 1, NOW() - INTERVAL 30 SECOND);",
    )
    .execute(pool)
    .await
    .unwrap();
    let url = rx.url("/");
    let start = shifted.now().await.unwrap() - chrono::Duration::seconds(60);
    let start = start.format(rowhook::DATETIME_FORMAT).to_string();
    db.subscribe(Sub {
        start: Some(&start),
        ..Sub::new(&url)
    })
    .await;

    let ctx = window::Context {
        db: shifted.clone(),
        ..context(&db, settings(), CancellationToken::new())
    };
    rowhook::daemon::run(ctx, true).await;

    assert_eq!(keys(&rx.accepted(), "AptNum"), [1]);
    shifted.close().await;
}
