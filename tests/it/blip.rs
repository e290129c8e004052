//! One database blip, one bad tick: every connection rowhook holds is
//! killed on the server (as a MariaDB restart or a network cut would), and
//! the real binary's next tick reads afresh, with one WARN and one INFO.

use std::time::Duration;

use rowhook::receiver::{Behaviour, Receiver};

use crate::helpers::Process;
use crate::helpers::{eventually, keys, Sub, TestDb, PATIENCE};
use crate::supervise::{NotifySocket, StallProxy};

#[tokio::test]
async fn killed_connections_cost_one_tick_and_one_warning() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    rx.set(Behaviour::Accept);
    db.insert_appointments(300, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db
        .subscribe(Sub {
            polling: 0,
            ..Sub::new(&url)
        })
        .await;
    // Through the proxy only to tell rowhook's connections from the test's;
    // the watchdog pings count completed ticks.
    let proxy = StallProxy::start(&db.url).await;
    let ticks = NotifySocket::bind();
    let notify = ticks.path.display().to_string();
    let mut rowhook = Process::start_at(
        &proxy.url,
        &[
            ("RUST_LOG", "info,rowhook=debug"),
            ("NOTIFY_SOCKET", &notify),
        ],
        &["run", "--batch-size", "50"],
    );
    assert!(
        rx.wait_until(PATIENCE, |r| keys(r, "AptNum").len() >= 300)
            .await,
        "rows delivered before the blip (several connections at work)"
    );
    // Only the ticks use the database now, so the tick is what meets the
    // dead connections: expire the subscription, let the delivery log be
    // written, and wait for ticks that have seen both.
    let id_text = id.to_string();
    db.exec(
        "UPDATE apisubscription SET DateTimeStop = '2000-01-01' WHERE ApiSubscriptionNum = ?",
        &[&id_text],
    )
    .await;
    let sent = rx.requests().len().to_string();
    assert!(
        eventually(|| async {
            db.text("SELECT CAST(COUNT(*) AS CHAR) FROM rowhook_delivery", &[])
                .await
                == Some(sent.clone())
        })
        .await,
        "the delivery log is written"
    );
    // Pings queued since the start are not the ticks waited for.
    while ticks.next(Duration::ZERO).await.is_some() {}
    for n in 0..3 {
        let ping = ticks.next(PATIENCE).await;
        assert_eq!(ping.as_deref(), Some("WATCHDOG=1"), "tick {n} completes");
    }

    let killed = kill_connections(&db, &proxy.ports()).await;
    assert!(killed >= 3, "rowhook held several connections: {killed}");
    db.exec(
        "UPDATE apisubscription SET DateTimeStop = '0001-01-01' WHERE ApiSubscriptionNum = ?",
        &[&id_text],
    )
    .await;
    db.exec(
        "INSERT INTO appointment (PatNum, AptStatus, Note, DateTStamp) VALUES (1, 1, 'after', NOW())",
        &[],
    )
    .await;
    assert!(
        rx.wait_until(PATIENCE, |r| keys(r, "AptNum").len() >= 301)
            .await,
        "the row written after the blip is delivered"
    );
    rowhook.signal("-TERM").await;
    assert_eq!(rowhook.exit_code().await, Some(0));

    let log = rowhook.log();
    let count = |text: &str| log.matches(text).count();
    assert_eq!(count("Lost the connection to the database"), 1, "{log}");
    assert_eq!(count("The database answers again."), 1, "{log}");
    assert_eq!(
        count("The database is still unreachable."),
        0,
        "one bad tick, not one per pooled connection ({killed} killed):\n{log}"
    );
    assert_eq!(count("Cannot read apisubscription"), 0, "{log}");
}

/// KILLs the server's threads for the connections from these local ports.
async fn kill_connections(db: &TestDb, ports: &[u16]) -> usize {
    let rowhook::db::Database::MySql { pool, .. } = &db.db else {
        unreachable!("a MariaDB test database")
    };
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let ids: Vec<(i64,)> = sqlx::query_as(&format!(
        "SELECT ID FROM information_schema.PROCESSLIST \
         WHERE SUBSTRING_INDEX(HOST, ':', -1) IN ('{}')",
        ports.join("','")
    ))
    .fetch_all(pool)
    .await
    .expect("PROCESSLIST reads");
    for (id,) in &ids {
        sqlx::query(&format!("KILL CONNECTION {id}"))
            .execute(pool)
            .await
            .expect("KILL runs");
    }
    ids.len()
}
