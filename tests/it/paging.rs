//! Batches: size, order, keyset paging under ties and concurrent updates.

use crate::app::TestApp;
use crate::helpers::{keys, run, run_once, settings, Daemon, Sub, TestDb, BOTH, PATIENCE};
use rowhook::config::Settings;
use rowhook::db::PageRead;
use rowhook::domain::watch_table::WatchTarget;
use rowhook::receiver::{Behaviour, Receiver};
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test]
async fn rows_sharing_one_second_arrive_exactly_once_in_batches_of_at_most_1000() {
    for backend in BOTH {
        let app = TestApp::new(backend).await;
        let (db, rx) = (&app.db, &app.rx);
        db.insert_appointments(2500, &db.ago(30).await).await;
        app.subscribe_to("/").await;

        app.run_once(settings()).await;

        let sizes: Vec<usize> = rx.accepted().iter().map(|r| r.rows().len()).collect();
        assert_eq!(sizes, [1000, 1000, 500], "{backend:?}");
        let got = keys(&rx.accepted(), "AptNum");
        let expected: Vec<i64> = (1..=2500).collect();
        assert_eq!(got, expected, "{backend:?}: every row once, in key order");
    }
}

#[tokio::test]
async fn batches_follow_stamp_then_key_order_and_honour_batch_size() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    // Keys 1..=5 stamped late, 6..=10 stamped early: stamp order wins.
    db.insert_appointments(5, &db.ago(20).await).await;
    db.insert_appointments(5, &db.ago(40).await).await;
    app.subscribe_to("/").await;

    run_once(
        db,
        Settings {
            batch_size: 3,
            ..settings()
        },
    )
    .await;

    let sizes: Vec<usize> = rx.accepted().iter().map(|r| r.rows().len()).collect();
    assert_eq!(sizes, [3, 3, 3, 1]);
    assert_eq!(
        keys(&rx.accepted(), "AptNum"),
        [6, 7, 8, 9, 10, 1, 2, 3, 4, 5]
    );
}

/// Seconds holding 1 to 12 rows, keys stored out of their order, read in
/// batches of 1, 3 and 4 (pages of five batches): pages end inside seconds
/// at many offsets, and some fall wholly inside one. On MyISAM with an index
/// on the stamp alone, a page is read by stamp and its last second again by
/// key; on InnoDB (whose index ends with the key) and on MyISAM with an
/// index on (stamp, key), in one statement. All must give the same batches.
#[tokio::test]
async fn pages_ending_inside_a_second_hold_every_row_once_in_stamp_then_key_order() {
    let layouts: [(&str, &[&str], PageRead); 3] = [
        ("MyISAM", &[], PageRead::StampThenKey),
        (
            "InnoDB",
            &["ALTER TABLE appointment ENGINE=InnoDB"],
            PageRead::OneStatement,
        ),
        (
            "MyISAM, (stamp, key) index",
            &["ALTER TABLE appointment ADD INDEX stamp_key (DateTStamp, AptNum)"],
            PageRead::OneStatement,
        ),
    ];
    let seconds = [1, 7, 3, 12, 2, 5, 4];
    let total: usize = seconds.iter().sum();
    for (layout, statements, read) in layouts {
        let db = TestDb::mysql().await;
        for sql in statements {
            db.exec(sql, &[]).await;
        }
        // Row r gets key (r * 13) % total + 1, a permutation (13 and 34 are
        // coprime), and rows go in last first: neither the file's order nor
        // the order of an index's ties is the key order.
        let start = db.ago(120).await;
        let mut rows = Vec::new();
        for (second, &size) in seconds.iter().enumerate() {
            let stamp = db.ago(60 - second as i64).await;
            for _ in 0..size {
                rows.push((stamp.clone(), (rows.len() * 13) % total + 1));
            }
        }
        for (stamp, key) in rows.iter().rev() {
            db.exec(
                "INSERT INTO appointment (AptNum, PatNum, Note, DateTStamp) VALUES (?, 1, 'n', ?)",
                &[&key.to_string(), stamp],
            )
            .await;
        }
        rows.sort();
        let expected: Vec<i64> = rows.iter().map(|(_, key)| *key as i64).collect();
        let target = WatchTarget::parse("Appointment").unwrap();
        let table = db.db.resolve(&target).await.unwrap();
        assert_eq!(table.page_read, read, "{layout}: the read this test is for");

        for batch_size in [1, 3, 4] {
            // Earlier subscriptions are past every row by now: they send
            // nothing more.
            let rx = Receiver::start().await.unwrap();
            let url = rx.url("/");
            let id = db
                .subscribe(Sub {
                    start: Some(&start),
                    ..Sub::new(&url)
                })
                .await;
            run_once(
                &db,
                Settings {
                    batch_size: batch_size as u32,
                    ..settings()
                },
            )
            .await;

            let case = format!("{layout}, batches of {batch_size}");
            let sizes: Vec<usize> = rx.accepted().iter().map(|r| r.rows().len()).collect();
            let mut full = vec![batch_size; total / batch_size];
            full.extend((total % batch_size > 0).then_some(total % batch_size));
            assert_eq!(sizes, full, "{case}: full batches");
            assert_eq!(keys(&rx.accepted(), "AptNum"), expected, "{case}");
            assert!(db.watermark(id).await > rows[total - 1].0, "{case}");
        }
    }
}

/// A change stamp with fractions of a second (`DATETIME(3)`): pages end
/// between rows of one second, and the cursor keeps the fraction, so the
/// next page starts after the last row sent rather than at the whole second
/// (which read the same rows again, forever). MyISAM and InnoDB.
#[tokio::test]
async fn stamps_with_fractions_of_a_second_page_exactly() {
    for engine in ["MyISAM", "InnoDB"] {
        let db = TestDb::mysql().await;
        let second = db.ago(30).await;
        db.exec(
            &format!(
                "CREATE TABLE reading (ReadingNum BIGINT PRIMARY KEY, Value INT NOT NULL, \
                 DateTStamp DATETIME(3) NOT NULL, INDEX (DateTStamp)) ENGINE={engine}"
            ),
            &[],
        )
        .await;
        // Seven rows in one second, two sharing a fraction; keys out of order.
        let fractions = ["100", "700", "300", "300", "900", "500", "200"];
        for (i, fraction) in fractions.iter().enumerate() {
            let key = (i * 3) % 7 + 1;
            db.exec(
                "INSERT INTO reading VALUES (?, ?, ?)",
                &[
                    &key.to_string(),
                    &i.to_string(),
                    &format!("{second}.{fraction}"),
                ],
            )
            .await;
        }
        let mut expected: Vec<(&str, i64)> = fractions
            .iter()
            .enumerate()
            .map(|(i, f)| (*f, ((i * 3) % 7 + 1) as i64))
            .collect();
        expected.sort();
        let rx = Receiver::start().await.unwrap();
        let url = rx.url("/");
        db.subscribe(Sub {
            table: "reading",
            ..Sub::new(&url)
        })
        .await;

        let run = run_once(
            &db,
            Settings {
                batch_size: 2,
                ..settings()
            },
        );
        let summary = tokio::time::timeout(PATIENCE, run)
            .await
            .unwrap_or_else(|_| panic!("{engine}: the window never ended"));
        assert_eq!(summary.processed, 1, "{engine}");

        let keys = keys(&rx.accepted(), "ReadingNum");
        let want: Vec<i64> = expected.iter().map(|(_, key)| *key).collect();
        assert_eq!(keys, want, "{engine}: each row once, in (stamp, key) order");
    }
}

/// Rows that change while a window is being paged move out of it (their
/// stamp is now at or after `stop`) and arrive, changed, in the next
/// window; no other row is skipped. OFFSET paging would skip rows here.
#[tokio::test]
async fn rows_updated_while_paging_are_neither_skipped_nor_lost() {
    for backend in BOTH {
        let app = TestApp::new(backend).await;
        let (db, rx) = (&app.db, &app.rx);
        db.insert_appointments(300, &db.ago(30).await).await;
        let url = rx.url("/");
        db.subscribe(Sub {
            polling: 0,
            ..Sub::new(&url)
        })
        .await;
        rx.set(Behaviour::Slow(Duration::from_millis(300)));
        let daemon = Daemon::start(
            db,
            Settings {
                batch_size: 100,
                ..settings()
            },
        );

        assert!(
            rx.wait_until(PATIENCE, |r| !r.is_empty()).await,
            "{backend:?}: first batch"
        );
        // Rows on the page just sent, and rows on pages still to come.
        db.exec("UPDATE appointment SET Note = 'changed' WHERE AptNum BETWEEN 50 AND 60 OR AptNum BETWEEN 150 AND 160", &[]).await;
        rx.set(Behaviour::Accept);

        let all_final = rx
            .wait_until(PATIENCE, |requests| {
                let latest = latest_notes(requests);
                latest.len() == 300 && (50..=60).chain(150..=160).all(|k| latest[&k] == "changed")
            })
            .await;
        daemon.stop().await;
        assert!(
            all_final,
            "{backend:?}: every row, and every change, delivered"
        );
    }
}

/// AptNum -> the last Note received for it.
fn latest_notes(requests: &[rowhook::receiver::Request]) -> HashMap<i64, String> {
    let mut latest = HashMap::new();
    for row in requests
        .iter()
        .filter(|r| r.accepted())
        .flat_map(|r| r.rows())
    {
        if let (Some(k), Some(n)) = (row["AptNum"].as_i64(), row["Note"].as_str()) {
            latest.insert(k, n.to_owned());
        }
    }
    latest
}

/// MySQL's ON UPDATE CURRENT_TIMESTAMP (and the SQLite fixture's trigger)
/// leaves the stamp alone when nothing changes, so nothing is sent.
#[tokio::test]
async fn a_no_op_update_sends_nothing() {
    for backend in BOTH {
        let app = TestApp::new(backend).await;
        let (db, rx) = (&app.db, &app.rx);
        db.insert_appointments(2, &db.ago(30).await).await;
        let url = rx.url("/");
        db.subscribe(Sub {
            polling: 0,
            ..Sub::new(&url)
        })
        .await;
        let daemon = app.daemon(settings());
        assert!(
            rx.wait_until(PATIENCE, |r| keys(r, "AptNum") == [1, 2])
                .await,
            "{backend:?}"
        );

        db.exec("UPDATE appointment SET Note = Note WHERE AptNum = 1", &[])
            .await;
        // A real change after the no-op: once it arrives, any window that
        // could have held the no-op has been sent.
        db.exec("UPDATE appointment SET Note = 'real' WHERE AptNum = 2", &[])
            .await;
        assert!(
            rx.wait_until(PATIENCE, |r| keys(r, "AptNum").len() == 3)
                .await,
            "{backend:?}"
        );
        daemon.stop().await;

        assert_eq!(keys(&rx.accepted(), "AptNum"), [1, 2, 2], "{backend:?}");
    }
}

#[tokio::test]
async fn appointment_deleted_reads_only_deleted_history_rows() {
    for backend in BOTH {
        let app = TestApp::new(backend).await;
        let (db, rx) = (&app.db, &app.rx);
        let stamp = db.ago(30).await;
        for (action, apt) in [(0, "1"), (4, "2"), (1, "3"), (4, "4")] {
            db.exec(
                "INSERT INTO histappointment (HistApptAction, AptNum, PatNum, DateTStamp) VALUES (?, ?, 1, ?)",
                &[&action.to_string(), apt, &stamp],
            )
            .await;
        }
        let url = rx.url("/");
        db.subscribe(Sub {
            table: "AppointmentDeleted",
            ..Sub::new(&url)
        })
        .await;

        app.run_once(settings()).await;

        assert_eq!(keys(&rx.accepted(), "AptNum"), [2, 4], "{backend:?}");
        let header = rx.accepted()[0].header("event-type").map(String::from);
        assert_eq!(header.as_deref(), Some("WatchTable: AppointmentDeleted"));
    }
}

#[tokio::test]
async fn any_table_with_a_change_column_can_be_watched_by_name() {
    for backend in BOTH {
        let app = TestApp::new(backend).await;
        let (db, rx) = (&app.db, &app.rx);
        let stamp = db.ago(30).await;
        db.exec(
            "INSERT INTO payment (PayAmt, PayNote, SecDateTEdit) VALUES (85.5, 'Copay', ?)",
            &[&stamp],
        )
        .await;
        let url = rx.url("/");
        db.subscribe(Sub {
            table: "payment",
            ..Sub::new(&url)
        })
        .await;

        app.run_once(settings()).await;

        let rows: Vec<_> = rx.accepted().iter().flat_map(|r| r.rows()).collect();
        assert_eq!(rows.len(), 1, "{backend:?}");
        assert_eq!(rows[0]["PayAmt"], serde_json::json!(85.5), "{backend:?}");
        assert_eq!(
            rx.accepted()[0].header("event-type"),
            Some("WatchTable: payment")
        );
    }
}

#[tokio::test]
async fn the_lookback_cap_skips_old_changes_and_unlimited_sends_them() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(2, &db.ago(5 * 86_400).await).await; // 1, 2: five days old
    db.insert_appointments(1, &db.ago(60).await).await; // 3: recent
    let old = db.ago(6 * 86_400).await;
    let (capped, unlimited) = (rx.url("/capped"), rx.url("/unlimited"));
    db.subscribe(Sub {
        start: Some(&old),
        ..Sub::new(&capped)
    })
    .await;

    app.run_once(settings()).await;
    assert_eq!(keys(&rx.accepted(), "AptNum"), [3]);

    db.subscribe(Sub {
        start: Some(&old),
        ..Sub::new(&unlimited)
    })
    .await;
    run_once(
        db,
        Settings {
            max_lookback: None,
            ..settings()
        },
    )
    .await;
    let sent: Vec<_> = rx
        .accepted()
        .into_iter()
        .filter(|r| r.target == "/unlimited")
        .collect();
    assert_eq!(keys(&sent, "AptNum"), [1, 2, 3]);
}

#[tokio::test]
async fn the_lookback_cut_is_logged_with_how_much_was_skipped() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(2, &db.ago(5 * 86_400).await).await;
    let url = rx.url("/");
    let old = db.ago(6 * 86_400).await;
    db.subscribe(Sub {
        start: Some(&old),
        ..Sub::new(&url)
    })
    .await;

    // A whole-second lag, so that the window ends a second before `old` was
    // read, whatever the fraction of the second the run starts in.
    let (code, _, stderr) = run(Some(&db.url), &["run", "--once", "--safety-lag", "1s"]).await;

    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("rows_skipped=2"), "{stderr}");
    // Three days, less the safety lag and the test's own few milliseconds.
    assert!(stderr.contains("skipped=2days 23h 59m"), "{stderr}");
}
