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
use crate::daemon;
use crate::db::Database;
use crate::receiver::{Receiver, Request};
use crate::window::Context;

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
    db.create_demo_practice()
        .await
        .context("cannot create the demo tables")?;
    let receiver = Receiver::start()
        .await
        .context("cannot start the built-in receiver")?;
    subscribe(&db, &receiver).await?;
    outln!("rowhook demo: database {}", path.display())?;
    outln!("rowhook demo: receiver listening on {}", receiver.url("/"))?;
    outln!("rowhook demo: 4 subscriptions (Appointment, AppointmentDeleted, Patient, payment); changing rows every second. Ctrl-C to stop.\n")?;

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
    let ctx = Context::new(db.clone(), settings, shutdown.clone())?;
    let daemon = tokio::spawn(daemon::run(ctx, false));
    let writer = tokio::spawn(write_changes(db.clone(), shutdown.clone()));
    let printer = tokio::spawn(print_deliveries(receiver.feed(), shutdown.clone()));

    let _ = daemon.await;
    let _ = writer.await;
    let (deliveries, rows) = printer.await.unwrap_or_default();
    db.close().await;
    outln!("\nrowhook demo: {deliveries} deliveries, {rows} rows received.")?;
    anyhow::ensure!(deliveries > 0, "no delivery arrived");
    Ok(deliveries)
}

async fn subscribe(db: &Database, receiver: &Receiver) -> anyhow::Result<()> {
    for (table, path) in [
        ("Appointment", "/hooks/appointments"),
        ("AppointmentDeleted", "/hooks/appointments?deleted=1"),
        ("Patient", "/hooks/patients"),
        ("payment", "/hooks/payments"),
    ] {
        db.add_demo_subscription(table, &receiver.url(path)).await?;
    }
    Ok(())
}

/// Plays a front desk: every second an appointment changes; now and then a
/// patient arrives, a payment is taken, an appointment is deleted.
async fn write_changes(db: Database, shutdown: CancellationToken) {
    let mut n: i64 = 0;
    while shutdown
        .run_until_cancelled(tokio::time::sleep(Duration::from_secs(1)))
        .await
        .is_some()
    {
        n += 1;
        for error in db.demo_front_desk(n).await {
            tracing::warn!(%error, "Demo writer could not change a row.");
        }
    }
}

/// Prints each delivery as it arrives; when nobody reads the output any
/// more, stops the demo.
async fn print_deliveries(
    mut feed: tokio::sync::mpsc::UnboundedReceiver<Request>,
    shutdown: CancellationToken,
) -> (usize, usize) {
    let (mut deliveries, mut total) = (0, 0);
    let mut shown = std::collections::HashSet::new();
    while let Some(Some(request)) = shutdown.run_until_cancelled(feed.recv()).await {
        let rows = request.rows();
        let subscription = request.header("Rowhook-Subscription").unwrap_or("?");
        if shown.insert(subscription.to_owned())
            && show_first_body(subscription, request.header("Event-Type"), &rows).is_err()
        {
            shutdown.cancel();
            break;
        }
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
        let printed = outln!(
            "delivery {deliveries:>3}: subscription {} | {} | {} row(s) | keys {} | {}",
            request.header("Rowhook-Subscription").unwrap_or("?"),
            request.header("Event-Type").unwrap_or("?"),
            rows.len(),
            keys.join(","),
            request.target,
        );
        if printed.is_err() {
            shutdown.cancel();
            break;
        }
    }
    (deliveries, total)
}

/// What a subscriber receives, once per subscription: the first element of
/// its first body, pretty-printed.
fn show_first_body(
    subscription: &str,
    event: Option<&str>,
    rows: &[serde_json::Value],
) -> std::io::Result<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let pretty = serde_json::to_string_pretty(first).unwrap_or_default();
    outln!(
        "\nsubscription {subscription} ({}) receives a JSON array of elements like this one ({} in this body):\n{pretty}\n",
        event.unwrap_or("?"),
        rows.len()
    )
}
