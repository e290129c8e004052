//! Page reads shared by windows of the same table (`rowhook::pages`): each
//! subscription still gets every row, in order, in its own requests, while
//! the server reads the rows once for all of them rather than once each.

use std::collections::HashSet;

use rowhook::config::Settings;

use crate::app::TestApp;
use crate::helpers::{keys, settings, Sub, Userstat};

const SUBSCRIPTIONS: usize = 40;
const ROWS: usize = 200;

/// Forty subscriptions (more than the sixteen that run at once) with the
/// same `DateTimeStart` on one table, due in the same tick, each paging 200
/// rows in pages of 50. Read alone, each window makes the server read at
/// least the 200 rows it sends: 8,000 in all. MariaDB's table counters
/// (`TABLE_STATISTICS.ROWS_READ`) must show fewer than that, while every
/// subscription receives all 200 in order. (Shared, it reads about 3,500:
/// the whole window three times, index walks included; alone, 46,000.)
#[tokio::test]
async fn windows_of_one_table_in_one_tick_read_each_page_once() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(ROWS, &db.ago(30).await).await;
    let start = db.ago(60).await;
    let mut paths = Vec::new();
    for i in 0..SUBSCRIPTIONS {
        let path = format!("/sub/{i}");
        db.subscribe(Sub {
            start: Some(&start),
            ..Sub::new(&rx.url(&path))
        })
        .await;
        paths.push(path);
    }
    let settings = Settings {
        batch_size: 50,
        ..settings()
    };

    let userstat = Userstat::on(db).await;
    let before = userstat.rows_read(db, "appointment").await;
    app.run_once(settings).await;
    let read = userstat.rows_read(db, "appointment").await - before;
    userstat.off(db).await;

    let requests = rx.accepted();
    let want: Vec<i64> = (1..=ROWS as i64).collect();
    for path in &paths {
        let own: Vec<_> = requests
            .iter()
            .filter(|r| &r.target == path)
            .cloned()
            .collect();
        assert_eq!(keys(&own, "AptNum"), want, "{path} gets every row in order");
    }
    let ids: HashSet<_> = requests.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(
        ids.len(),
        requests.len(),
        "each request has its own batch id"
    );
    assert!(
        read < (SUBSCRIPTIONS * ROWS) as u64,
        "the server read {read} rows for {SUBSCRIPTIONS} windows of {ROWS}"
    );
}
