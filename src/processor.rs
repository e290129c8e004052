//! One subscription's window, start to finish. This is where the watermark
//! (`DateTimeStart`) moves.
//!
//! 1. Plan the window `[DateTimeStart, stop)` where `stop` is the server's
//!    `NOW()` read with the subscription row (see [`crate::window`]).
//! 2. Page through it by keyset, at most `batch_size` rows per POST, one
//!    POST at a time, in (stamp, key) order.
//! 3. Only when every batch got HTTP 200, compare-and-set `DateTimeStart`
//!    from the value that was read to `stop`. An empty window still advances.
//!
//! Any failure returns before step 3, so the next attempt re-reads the same
//! rows: at-least-once delivery, with the state living only in the database.

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::db::{Database, DbError, WatchedTable};
use crate::delivery::{Failure, Sender};
use crate::subscription::Subscription;
use crate::window::{self, Cursor, Plan, Window};

/// How processing a subscription ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every batch got 200 and `DateTimeStart` moved to `stop`.
    Delivered { rows: usize, batches: usize },
    /// Every batch got 200, but `DateTimeStart` changed under us (an
    /// operator edit); it was left as the operator set it.
    Superseded { rows: usize, batches: usize },
    /// The window is empty by construction (same second, or the server's
    /// clock is behind `DateTimeStart`); nothing was read or written.
    Waiting { clock_behind: bool },
    /// A batch was not accepted; `DateTimeStart` is unchanged.
    Failed {
        failure: Failure,
        rows_delivered: usize,
    },
    /// Shutdown began mid-window; `DateTimeStart` is unchanged.
    Abandoned,
}

/// Shared, read-only things a window needs.
#[derive(Debug, Clone)]
pub struct Context {
    pub db: Database,
    pub sender: Sender,
    pub settings: Settings,
    pub shutdown: CancellationToken,
}

/// Processes one due subscription whose row was read at server time `now`.
pub async fn process(
    ctx: &Context,
    subscription: &Subscription,
    table: &WatchedTable,
    now: NaiveDateTime,
) -> Result<Outcome, DbError> {
    let window = match window::plan(subscription.start, now, ctx.settings.max_lookback) {
        Plan::Wait { clock_behind } => return Ok(Outcome::Waiting { clock_behind }),
        Plan::Read { window, skipped } => {
            if let Some(skipped) = skipped {
                warn_skipped(ctx, subscription, table, skipped).await?;
            }
            window
        }
    };
    let mut sent = Progress::default();
    let mut after: Option<Cursor> = None;
    loop {
        if ctx.shutdown.is_cancelled() {
            return Ok(Outcome::Abandoned);
        }
        let page = ctx
            .db
            .fetch_page(table, window, after, ctx.settings.batch_size)
            .await?;
        let Some(last) = page.last else { break };
        let rows = page.rows.len();
        let body = serde_json::to_vec(&page.rows).unwrap_or_else(|_| b"[]".to_vec());
        let started = Instant::now();
        let result = tokio::select! {
            result = ctx.sender.send(subscription, &table.watch_name, body) => result,
            () = ctx.shutdown.cancelled() => return Ok(Outcome::Abandoned),
        };
        let elapsed_ms = elapsed_ms(started.elapsed());
        if let Err(failure) = result {
            tracing::warn!(
                subscription = %subscription.id, table = %table.watch_name, rows,
                status = %failure, class = failure.class(), elapsed_ms,
                first_key = page.first.map(|c| c.key), "Batch not delivered; will retry."
            );
            return Ok(Outcome::Failed {
                failure,
                rows_delivered: sent.rows,
            });
        }
        tracing::info!(
            subscription = %subscription.id, table = %table.watch_name, rows, status = 200,
            elapsed_ms, first_key = page.first.map(|c| c.key), last_key = last.key,
            "Batch delivered."
        );
        sent.add(rows);
        if rows < ctx.settings.batch_size as usize {
            break;
        }
        after = Some(last);
    }
    advance(ctx, subscription, window, sent).await
}

async fn advance(
    ctx: &Context,
    subscription: &Subscription,
    window: Window,
    sent: Progress,
) -> Result<Outcome, DbError> {
    let moved = ctx
        .db
        .advance_watermark(subscription.id, &subscription.start_raw, window.stop)
        .await?;
    if moved {
        Ok(Outcome::Delivered {
            rows: sent.rows,
            batches: sent.batches,
        })
    } else {
        tracing::info!(
            subscription = %subscription.id, read = %subscription.start_raw,
            "DateTimeStart was changed by someone else during the window; leaving it as they set it."
        );
        Ok(Outcome::Superseded {
            rows: sent.rows,
            batches: sent.batches,
        })
    }
}

/// The look-back cap never drops data silently: say how much it cut.
async fn warn_skipped(
    ctx: &Context,
    subscription: &Subscription,
    table: &WatchedTable,
    skipped: Window,
) -> Result<(), DbError> {
    let rows = ctx.db.count_rows(table, skipped).await?;
    let span = (skipped.stop - skipped.start).to_std().unwrap_or_default();
    tracing::warn!(
        subscription = %subscription.id, table = %table.watch_name, rows_skipped = rows,
        skipped_from = %skipped.start, skipped_to = %skipped.stop,
        skipped = %humantime::format_duration(span),
        "DateTimeStart is older than --max-lookback; changes before the cut are not sent \
         (set --max-lookback 0 to send everything)."
    );
    Ok(())
}

#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    rows: usize,
    batches: usize,
}

impl Progress {
    fn add(&mut self, rows: usize) {
        self.rows += rows;
        self.batches += 1;
    }
}

fn elapsed_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
