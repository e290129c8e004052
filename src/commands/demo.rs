//! `rowhook demo`: the whole product on one screen, with no setup.
//!
//! Creates a throwaway SQLite database with Open Dental-shaped tables,
//! starts the built-in receiver on loopback, subscribes it to appointments,
//! deleted appointments, patients and payments, then changes a few rows every
//! second and prints each delivery as it arrives.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::cli::DemoArgs;
use crate::config::Settings;
use crate::db::Database;
use crate::delivery::Sender;
use crate::processor::Context;
use crate::receiver::{Receiver, Request};
use crate::scheduler;

const SCHEMA: &str = include_str!("../../fixtures/sqlite/schema.sql");
const SAMPLE: &str = include_str!("../../fixtures/sqlite/sample.sql");

/// Runs the demo; returns how many deliveries arrived.
pub async fn run(args: &DemoArgs) -> anyhow::Result<usize> {
    let dir = std::env::temp_dir().join(format!("rowhook-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("cannot create the demo's temporary folder")?;
    let result = run_in(&dir, args).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(dir: &std::path::Path, args: &DemoArgs) -> anyhow::Result<usize> {
    let path: PathBuf = dir.join("practice.sqlite");
    let db = Database::connect(&format!("sqlite://{}", path.display()), 4).await?;
    let Database::Sqlite(pool) = &db else {
        anyhow::bail!("the demo database is SQLite")
    };
    sqlx::raw_sql(SCHEMA)
        .execute(pool)
        .await
        .context("cannot create the demo tables")?;
    db.migrate().await?;
    sqlx::raw_sql(SAMPLE)
        .execute(pool)
        .await
        .context("cannot add the sample rows")?;
    let receiver = Receiver::start()
        .await
        .context("cannot start the built-in receiver")?;
    subscribe(pool, &receiver).await?;
    println!("rowhook demo: database {}", path.display());
    println!("rowhook demo: receiver listening on {}", receiver.url("/"));
    println!("rowhook demo: 4 subscriptions (Appointment, AppointmentDeleted, Patient, payment); changing rows every second. Ctrl-C to stop.\n");

    let shutdown = crate::shutdown::on_signals().context("cannot listen for signals")?;
    if let Some(seconds) = args.seconds {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stop.cancel();
        });
    }
    let settings = Settings {
        workstation: "demo".into(),
        ..Settings::default()
    };
    let sender = Sender::new(&settings)?;
    let journal = crate::journal::Journal::start(db.clone(), settings.delivery_log_retention);
    let ctx = Context {
        db: db.clone(),
        sender,
        settings,
        shutdown: shutdown.clone(),
        journal,
        pages: Default::default(),
    };
    let daemon = tokio::spawn(scheduler::run(ctx, false));
    let writer = tokio::spawn(write_changes(pool.clone(), shutdown.clone()));
    let printer = tokio::spawn(print_deliveries(receiver.feed(), shutdown.clone()));

    let _ = daemon.await;
    let _ = writer.await;
    let (deliveries, rows) = printer.await.unwrap_or_default();
    db.close().await;
    println!("\nrowhook demo: {deliveries} deliveries, {rows} rows received.");
    anyhow::ensure!(deliveries > 0, "no delivery arrived");
    Ok(deliveries)
}

async fn subscribe(pool: &sqlx::SqlitePool, receiver: &Receiver) -> anyhow::Result<()> {
    for (table, path) in [
        ("Appointment", "/hooks/appointments"),
        ("AppointmentDeleted", "/hooks/appointments?deleted=1"),
        ("Patient", "/hooks/patients"),
        ("payment", "/hooks/payments"),
    ] {
        sqlx::query(
            "INSERT INTO apisubscription (EndPointUrl, Workstation, CustomerKey, WatchTable, \
             PollingSeconds, UiEventType, DateTimeStart, DateTimeStop, Note) \
             VALUES (?, '', 'demo-key', ?, 1, '', datetime('now', 'localtime', '-1 minute'), \
             '0001-01-01 00:00:00', 'rowhook demo')",
        )
        .bind(receiver.url(path))
        .bind(table)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Plays a front desk: every second an appointment changes; now and then a
/// patient arrives, a payment is taken, an appointment is deleted.
async fn write_changes(pool: sqlx::SqlitePool, shutdown: CancellationToken) {
    let mut n: i64 = 0;
    while shutdown
        .run_until_cancelled(tokio::time::sleep(Duration::from_secs(1)))
        .await
        .is_some()
    {
        n += 1;
        let statements: &[&str] = match n % 4 {
            0 => &["INSERT INTO patient (LName, FName, Birthdate) VALUES ('Newcomer', 'Nat', '1990-01-0' || (?1 % 9 + 1))"],
            1 => &["UPDATE appointment SET Confirmed = ?1 WHERE AptNum = 1"],
            2 => &["INSERT INTO payment (PayDate, PayAmt, PayNote, PatNum) VALUES (date('now','localtime'), 20 + ?1, 'Visit', 2)",
                   "INSERT INTO appointment (PatNum, AptStatus, Op, Note, AptDateTime) VALUES (2, 1, 1, 'Follow-up ' || ?1, datetime('now','localtime','+7 days'))"],
            _ => &["INSERT INTO histappointment (HistApptAction, AptNum, PatNum, AptStatus, Note, AptDateTime) \
                    SELECT 4, AptNum, PatNum, AptStatus, Note, AptDateTime FROM appointment WHERE AptNum = (SELECT MAX(AptNum) FROM appointment) AND AptNum > 2",
                   "DELETE FROM appointment WHERE AptNum = (SELECT MAX(AptNum) FROM appointment) AND AptNum > 2"],
        };
        for sql in statements {
            if let Err(error) = sqlx::query(sql).bind(n).execute(&pool).await {
                tracing::warn!(%error, "Demo writer could not change a row.");
            }
        }
    }
}

async fn print_deliveries(
    mut feed: tokio::sync::mpsc::UnboundedReceiver<Request>,
    shutdown: CancellationToken,
) -> (usize, usize) {
    let (mut deliveries, mut total) = (0, 0);
    while let Some(Some(request)) = shutdown.run_until_cancelled(feed.recv()).await {
        let rows = request.rows();
        let keys: Vec<String> = rows
            .iter()
            .filter_map(|r| {
                r.as_object()
                    .and_then(|o| o.values().next())
                    .map(ToString::to_string)
            })
            .collect();
        deliveries += 1;
        total += rows.len();
        println!(
            "delivery {deliveries:>3}: subscription {} | {} | {} row(s) | keys {} | {}",
            request.header("Rowhook-Subscription").unwrap_or("?"),
            request.header("Event-Type").unwrap_or("?"),
            rows.len(),
            keys.join(","),
            request.target,
        );
    }
    (deliveries, total)
}
