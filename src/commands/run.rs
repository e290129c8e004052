//! `rowhook run`: the daemon.

use anyhow::Context as _;

use crate::cli::{DbArgs, RunArgs};
use crate::config::HttpSettings;
use crate::daemon::{self, supervise, Summary};
use crate::window::Context;

/// Runs until SIGTERM/SIGINT, or one pass with `--once`.
pub async fn run(db_args: &DbArgs, args: &RunArgs) -> anyhow::Result<Summary> {
    let settings = args.agent.settings();
    // Checked before anything starts: a refusal is the first thing said.
    let http = args
        .http
        .map(|addr| HttpSettings::new(addr, args.http_token_file.as_deref()))
        .transpose()?;
    let pool_size = u32::try_from(settings.concurrency)
        .unwrap_or(u32::MAX)
        .saturating_add(2);
    let db = super::connect(db_args, pool_size).await?;
    db.check_migrated().await?;
    let shutdown = crate::shutdown::on_signals().context("cannot listen for signals")?;
    let ctx = Context::new(db.clone(), settings, shutdown.clone())
        .context("cannot set up HTTP delivery")?;
    let settings = &ctx.settings;
    // Connected, tables checked, signals handled: systemd may call it started.
    supervise::ready();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        supervise::stopping();
    });
    tracing::info!(
        version = crate::cli::VERSION,
        workstation = %settings.workstation, batch_size = settings.batch_size, body = %settings.body,
        max_lookback = %settings.max_lookback.map_or("unlimited".into(), |d| humantime::format_duration(d).to_string()),
        once = args.once, "rowhook started."
    );
    if let Some(http) = &http {
        serve_http(db_args, http, &ctx).await?;
    }
    let summary = daemon::run(ctx, args.once).await;
    db.close().await;
    tracing::info!(
        processed = summary.processed,
        failed = summary.failed,
        "rowhook stopped."
    );
    Ok(summary)
}

/// Starts the HTTP endpoint as a task of its own, with a pool of its own so
/// that no page can hold a connection a tick needs.
async fn serve_http(db_args: &DbArgs, http: &HttpSettings, ctx: &Context) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(http.addr)
        .await
        .with_context(|| format!("cannot listen on --http {}", http.addr))?;
    let db = super::connect(db_args, 2).await?;
    let settings = &ctx.settings;
    let web = crate::http::Web::new(
        db,
        ctx.metrics.clone(),
        http,
        settings.workstation.clone(),
        settings.tick,
    );
    let addr = listener.local_addr().unwrap_or(http.addr);
    tracing::info!(%addr, token = http.token.is_some(), "HTTP endpoint listening (/, /metrics, /healthz, /readyz).");
    tokio::spawn(crate::http::serve(listener, web, ctx.shutdown.clone()));
    Ok(())
}
