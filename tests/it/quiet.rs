//! Empty windows closed together (`rowhook::quiet`): a window is called
//! empty only when no row of its table is stamped in `[start, stop)`, the
//! compare-and-set still yields to an operator's edit, and a change after
//! idle ticks still reaches every subscription on its table.

use chrono::NaiveDateTime;
use rowhook::db::WatchedTable;
use rowhook::domain::progress::Progress;
use rowhook::domain::subscription::{Parsed, Subscription};
use rowhook::tick::quiet::{self, Candidate};

use crate::app::TestApp;
use crate::helpers::{
    context, eventually, mysql_server, settings, Backend, Sub, TestDb, Userstat, BOTH,
};

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, rowhook::DATETIME_FORMAT).unwrap()
}

fn text(t: NaiveDateTime) -> String {
    t.format(rowhook::DATETIME_FORMAT).to_string()
}

/// The subscriptions as the scheduler would see them, with a progress
/// record at each one's `DateTimeStart` (`starts`, as instants).
async fn at_rest(db: &TestDb, starts: &[(i64, NaiveDateTime)]) -> Vec<Subscription> {
    let snapshot = db.db.snapshot().await.unwrap();
    let mut subs = Vec::new();
    for &(id, start) in starts {
        let row = snapshot.subscriptions.iter().find(|r| r.num == id).unwrap();
        let Ok(Parsed::Database(sub)) = row.parse() else {
            panic!("{row:?}")
        };
        let progress = Progress {
            date_time_start: sub.start_raw.clone(),
            watermark: start,
            window: None,
        };
        db.db.save_progress(sub.id, &progress, None).await.unwrap();
        subs.push(*sub);
    }
    subs
}

fn candidates<'a>(
    subs: &'a [Subscription],
    starts: &[NaiveDateTime],
    table: &std::sync::Arc<WatchedTable>,
) -> Vec<Candidate<'a>> {
    subs.iter()
        .zip(starts)
        .map(|(s, &start)| Candidate {
            id: s.id,
            start_raw: &s.start_raw,
            start,
            table: std::sync::Arc::clone(table),
        })
        .collect()
}

/// Inserts one appointment and returns its stamp, in the time base windows
/// use (UTC on MariaDB, whose sessions rowhook runs in UTC; local text on
/// SQLite).
async fn one_appointment(db: &TestDb) -> NaiveDateTime {
    db.insert_appointments(1, &db.ago(30).await).await;
    let sql = match db.backend {
        Backend::MySql => "SELECT CAST(DateTStamp AS CHAR) FROM appointment",
        Backend::Sqlite => "SELECT DateTStamp FROM appointment",
    };
    at(&db.text(sql, &[]).await.unwrap())
}

#[tokio::test]
async fn only_windows_with_no_row_in_them_are_closed_and_an_edit_wins() {
    for backend in BOTH {
        let db = TestDb::new(backend).await;
        let t = one_appointment(&db).await;
        let second = chrono::Duration::seconds(1);
        let ids = [
            db.subscribe(Sub::new("http://127.0.0.1:9/at")).await,
            db.subscribe(Sub::new("http://127.0.0.1:9/after")).await,
            db.subscribe(Sub::new("http://127.0.0.1:9/edited")).await,
        ];
        // Window starts: at the row's stamp (not empty), a second after it
        // (empty), and after it again but edited by an operator meanwhile.
        let starts = [t, t + second, t + second];
        let subs = at_rest(
            &db,
            &[
                (ids[0], starts[0]),
                (ids[1], starts[1]),
                (ids[2], starts[2]),
            ],
        )
        .await;
        let table = std::sync::Arc::new(db.db.resolve(&subs[0].target).await.unwrap());
        let before: Vec<String> = subs.iter().map(|s| s.start_raw.to_string()).collect();
        let operator = "2020-02-02 02:02:02";
        db.exec(
            "UPDATE apisubscription SET DateTimeStart = ? WHERE ApiSubscriptionNum = ?",
            &[operator, &ids[2].to_string()],
        )
        .await;
        let stop = t + chrono::Duration::seconds(10);
        let stop_local = text(stop);

        let closed = quiet::close_empty(
            &db.db,
            stop,
            &stop_local.as_str().into(),
            &candidates(&subs, &starts, &table),
            None,
        )
        .await
        .unwrap();

        assert_eq!(closed.empty, [false, true, true], "{backend:?}");
        assert_eq!(closed.moved, 1, "{backend:?}: the edited row is not moved");
        assert_eq!(db.watermark(ids[0]).await, before[0], "{backend:?}");
        assert_eq!(db.watermark(ids[1]).await, stop_local, "{backend:?}");
        assert_eq!(db.watermark(ids[2]).await, operator, "{backend:?}");
        let snapshot = db.db.snapshot().await.unwrap();
        let progress = &snapshot.progress[&subs[1].id];
        assert_eq!(
            (progress.date_time_start.as_str(), progress.watermark),
            (stop_local.as_str(), stop)
        );
        // The edited subscription's record no longer matches its row, so the
        // next tick follows the operator's value.
        assert_ne!(snapshot.progress[&subs[2].id].date_time_start, operator);
    }
}

#[tokio::test]
async fn a_row_stamped_at_stop_belongs_to_the_next_window() {
    for backend in BOTH {
        let db = TestDb::new(backend).await;
        let t = one_appointment(&db).await;
        let start = t - chrono::Duration::seconds(10);
        let id = db.subscribe(Sub::new("http://127.0.0.1:9/")).await;
        let subs = at_rest(&db, &[(id, start)]).await;
        let table = std::sync::Arc::new(db.db.resolve(&subs[0].target).await.unwrap());
        let candidates = candidates(&subs, &[start], &table);

        // [start, t + 1 s) holds the row; [start, t) does not.
        let later = t + chrono::Duration::seconds(1);
        let closed = quiet::close_empty(
            &db.db,
            later,
            &text(later).as_str().into(),
            &candidates,
            None,
        )
        .await
        .unwrap();
        assert_eq!(closed.empty, [false], "{backend:?}");
        let closed = quiet::close_empty(&db.db, t, &text(t).as_str().into(), &candidates, None)
            .await
            .unwrap();
        assert_eq!(closed.empty, [true], "{backend:?}");
        assert_eq!(db.watermark(id).await, text(t), "{backend:?}");
    }
}

/// After several idle ticks (windows closed together), one new patient row
/// reaches each patient subscription once and no appointment subscription.
#[tokio::test]
async fn a_change_after_idle_ticks_reaches_every_subscription_on_its_table() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    let mut ids = Vec::new();
    for (i, table) in ["Patient", "Appointment"]
        .iter()
        .cycle()
        .take(8)
        .enumerate()
    {
        let url = rx.url(&format!("/{table}/{i}"));
        ids.push(
            db.subscribe(Sub {
                table,
                ..Sub::new(&url)
            })
            .await,
        );
    }
    let daemon = app.daemon(settings());
    let first: Vec<String> = watermarks(db, &ids).await;
    // Two advances each: the first window sets the progress record, later
    // ones are closed together.
    for _ in 0..2 {
        advance_every_one(db, &ids).await;
    }
    assert!(rx.requests().is_empty(), "idle windows send nothing");
    db.exec(
        "INSERT INTO patient (LName, FName) VALUES ('Quiet', 'Test')",
        &[],
    )
    .await;

    assert!(
        eventually(|| async { rx.accepted().len() >= 4 }).await,
        "each patient subscription sends the new row"
    );
    daemon.stop().await;
    let mut targets: Vec<String> = rx.accepted().iter().map(|r| r.target.clone()).collect();
    targets.sort();
    assert_eq!(
        targets,
        ["/Patient/0", "/Patient/2", "/Patient/4", "/Patient/6"]
    );
    let after = watermarks(db, &ids).await;
    assert!(after.iter().zip(&first).all(|(a, f)| a > f));
}

async fn watermarks(db: &TestDb, ids: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    for &id in ids {
        out.push(db.watermark(id).await);
    }
    out
}

/// The point of closing windows together: idle subscriptions cost a few
/// statements per tick, not some per subscription. rowhook runs as its own
/// MariaDB user so the server's per-user counters (`USER_STATISTICS`) count
/// exactly its statements. Read one by one, 60 subscriptions advancing
/// three times would take at least 360 writes (a compare-and-set and a
/// progress record each); together, two per tick that closes any.
#[tokio::test]
async fn idle_subscriptions_are_closed_with_fewer_writes_than_subscriptions() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    let url = rx.url("/");
    let mut ids = Vec::new();
    for table in ["Patient", "Appointment"].iter().cycle().take(60) {
        ids.push(
            db.subscribe(Sub {
                table,
                ..Sub::new(&url)
            })
            .await,
        );
    }
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let user = format!("rh_quiet_{}", std::process::id());
    let userstat = Userstat::on(db).await;
    db.script(&format!(
        "CREATE USER '{user}'@'%'; GRANT ALL ON {name}.* TO '{user}'@'%'; \
         GRANT PROCESS ON *.* TO '{user}'@'%'"
    ))
    .await;
    let as_user = mysql_server().replace("root@", &format!("{user}@")) + "/" + &name;
    let agent = rowhook::db::Database::connect(&as_user, 4).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let ctx = rowhook::window::Context {
        db: agent.clone(),
        ..context(db, settings(), stop.clone())
    };
    let daemon = tokio::spawn(rowhook::daemon::run(ctx, false));
    let writes = || async {
        let sql = format!(
            "SELECT CAST(UPDATE_COMMANDS AS CHAR) FROM information_schema.USER_STATISTICS \
             WHERE USER = '{user}'"
        );
        db.text(&sql, &[])
            .await
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };

    // First windows go through the processor (nothing is recorded yet).
    advance_every_one(db, &ids).await;
    let before = writes().await;
    for _ in 0..3 {
        advance_every_one(db, &ids).await;
    }
    let during = writes().await - before;

    stop.cancel();
    daemon.await.unwrap();
    agent.close().await;
    db.script(&format!("DROP USER '{user}'@'%'")).await;
    userstat.off(db).await;
    assert!(rx.requests().is_empty(), "idle windows send nothing");
    assert!(
        during < ids.len() as u64,
        "{during} writes for {} subscriptions advancing three times",
        ids.len()
    );
}

/// Waits until every subscription's `DateTimeStart` has moved on.
async fn advance_every_one(db: &TestDb, ids: &[i64]) {
    let seen = watermarks(db, ids).await;
    assert!(
        eventually(|| async {
            let now = watermarks(db, ids).await;
            now.iter().zip(&seen).all(|(n, s)| n > s)
        })
        .await,
        "every idle watermark keeps moving"
    );
}
