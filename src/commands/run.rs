//! `rowhook run`: the daemon.

use anyhow::Context as _;

use crate::cli::{DbArgs, RunArgs};
use crate::delivery::Sender;
use crate::processor::Context;
use crate::scheduler::{self, Summary};
use crate::supervise;

/// Runs until SIGTERM/SIGINT, or one pass with `--once`.
pub async fn run(db_args: &DbArgs, args: &RunArgs) -> anyhow::Result<Summary> {
    let settings = args.agent.settings();
    let pool_size = u32::try_from(settings.concurrency)
        .unwrap_or(u32::MAX)
        .saturating_add(2);
    let db = super::connect(db_args, pool_size).await?;
    db.check_migrated().await?;
    let sender = Sender::new(&settings).context("cannot set up HTTP delivery")?;
    let shutdown = crate::shutdown::on_signals().context("cannot listen for signals")?;
    // Connected, tables checked, signals handled: systemd may call it started.
    supervise::ready();
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        stopping.cancelled().await;
        supervise::stopping();
    });
    tracing::info!(
        version = crate::cli::VERSION,
        workstation = %settings.workstation, batch_size = settings.batch_size,
        max_lookback = %settings.max_lookback.map_or("unlimited".into(), |d| humantime::format_duration(d).to_string()),
        once = args.once, "rowhook started."
    );
    let journal = crate::journal::Journal::start(db.clone(), settings.delivery_log_retention);
    let ctx = Context {
        db: db.clone(),
        sender,
        settings,
        shutdown,
        journal,
        pages: Default::default(),
    };
    let summary = scheduler::run(ctx, args.once).await;
    db.close().await;
    tracing::info!(
        processed = summary.processed,
        failed = summary.failed,
        "rowhook stopped."
    );
    Ok(summary)
}
