//! The least-privileged MariaDB user the README documents: the daemon works
//! with exactly those grants, and says which one is missing when one is.

use crate::app::TestApp;
use crate::helpers::{keys, mysql_server, run, Process, Sub, PATIENCE};
use rowhook::receiver::Receiver;

/// rowhook's own tables, which `rowhook migrate` (run once by an admin)
/// creates.
const OWN_TABLES: [&str; 7] = [
    "rowhook_migrations",
    "rowhook_progress",
    "rowhook_health",
    "rowhook_delivery",
    "rowhook_secret",
    "rowhook_body",
    "rowhook_lease",
];

/// The grants from the README, for database `db` and user `user`.
fn least_privilege(db: &str, user: &str, watched: &[&str]) -> String {
    let mut sql = format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; \
         GRANT SELECT, UPDATE (DateTimeStart) ON {db}.apisubscription TO '{user}'@'%'; \
         GRANT SELECT ON {db}.apisubscription TO '{user}'@'%'; "
    );
    for table in watched {
        sql.push_str(&format!("GRANT SELECT ON {db}.{table} TO '{user}'@'%'; "));
    }
    for table in OWN_TABLES {
        sql.push_str(&format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON {db}.{table} TO '{user}'@'%'; "
        ));
    }
    sql
}

#[tokio::test]
async fn the_documented_grants_are_enough_and_a_missing_one_is_named() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(3, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db.subscribe(Sub::new(&url)).await;
    let before = db.watermark(id).await;
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let user = format!("rh_least_{}", std::process::id());
    db.script(&least_privilege(&name, &user, &["appointment"]))
        .await;
    let as_user = mysql_server().replace("root@", &format!("{user}:pw@")) + "/" + &name;

    let (code, _, log) = run(Some(&as_user), &["run", "--once"]).await;

    assert_eq!(code, 0, "{log}");
    assert_eq!(keys(&rx.accepted(), "AptNum"), [1, 2, 3]);
    assert!(
        db.watermark(id).await > before,
        "DateTimeStart moved with UPDATE on that column only"
    );
    assert!(
        log.contains("PROCESS"),
        "the missing optional grant is explained: {log}"
    );
    let (code, out, err) = run(Some(&as_user), &["status"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id.to_string()));

    // Without UPDATE on DateTimeStart the window cannot be completed: the
    // rows are re-sent later (at-least-once), and the log names the grant.
    db.script(&format!(
        "REVOKE UPDATE (DateTimeStart) ON {name}.apisubscription FROM '{user}'@'%'"
    ))
    .await;
    db.insert_appointments(1, &db.ago(0).await).await;
    let moved = db.watermark(id).await;
    let (code, _, log) = loop_until_sent(&as_user, rx, 4).await;
    assert_ne!(code, 0, "{log}");
    assert!(
        log.contains("UPDATE command denied") && log.contains("Least privilege"),
        "{log}"
    );
    assert_eq!(db.watermark(id).await, moved);

    db.script(&format!("DROP USER '{user}'@'%'")).await;
}

/// Runs `rowhook run --once` until the receiver has seen `count` requests
/// (a fresh row waits out the safety lag); returns the last run's result.
async fn loop_until_sent(url: &str, rx: &Receiver, count: usize) -> (i32, String, String) {
    let deadline = tokio::time::Instant::now() + crate::helpers::PATIENCE;
    loop {
        let result = run(Some(url), &["run", "--once"]).await;
        if rx.requests().len() >= count || tokio::time::Instant::now() > deadline {
            return result;
        }
    }
}

/// Without the PROCESS grant rowhook cannot see open transactions: it says
/// so once, however many ticks run, and keeps delivering with the longer
/// fallback lag — a row written now arrives only once the lag has passed.
#[tokio::test]
async fn without_the_process_grant_the_fallback_lag_is_used_and_said_once() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(2, &db.ago(30).await).await;
    app.subscribe_to("/").await;
    let schema = db.text("SELECT DATABASE()", &[]).await.unwrap();
    let user = format!("rh_np_{}", std::process::id());
    db.exec(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"), &[])
        .await;
    db.exec(&format!("GRANT ALL ON `{schema}`.* TO '{user}'@'%'"), &[])
        .await;
    let url_np = mysql_server().replace("root@", &format!("{user}:pw@")) + "/" + &schema;
    let lag = std::time::Duration::from_secs(5);

    let mut agent = Process::start_at(
        &url_np,
        &[("RUST_LOG", "info")],
        &["run", "--fallback-lag", "5s"],
    );
    let first = rx
        .wait_until(PATIENCE, |r| r.iter().filter(|r| r.accepted()).count() == 1)
        .await;
    // A row stamped now: with the 100 ms lag it would come within about a
    // second; with the fallback lag, no sooner than 5 s.
    db.insert_appointments(1, &db.ago(0).await).await;
    let written = std::time::Instant::now();
    let late = rx
        .wait_until(PATIENCE, |r| keys(r, "AptNum").contains(&3))
        .await;
    let took = written.elapsed();
    agent.signal("-TERM").await;
    let _ = agent.exit_code().await;
    let log = agent.log();
    db.exec(&format!("DROP USER '{user}'@'%'"), &[]).await;

    assert!(first, "the old rows are delivered: {log}");
    assert!(late, "the new row is delivered: {log}");
    assert!(
        took >= lag - std::time::Duration::from_secs(1),
        "the new row waited for the fallback lag ({lag:?}): {took:?}"
    );
    assert_eq!(keys(&rx.accepted(), "AptNum"), [1, 2, 3]);
    assert_eq!(
        log.matches("Cannot see open transactions").count(),
        1,
        "said once over the ticks of {took:?}: {log}"
    );
}
