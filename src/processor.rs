//! One subscription's window, start to finish. This is where the watermark
//! (`DateTimeStart`) moves.
//!
//! 1. Find where the subscription stands: rowhook's progress record when it
//!    still belongs to the row's `DateTimeStart`, else `DateTimeStart`
//!    itself (a new subscription, or an operator moved it: they win).
//! 2. Resume a partly delivered window after its last acknowledged batch,
//!    or plan a new one `[start, stop)` where `stop` is the server's clock
//!    less a safety lag and before the oldest transaction that may still
//!    commit rows (see [`crate::window`] and the scheduler).
//! 3. Page through it by keyset, in (stamp, key) order, [`READ_BATCHES`]
//!    batches a page, at most `batch_size` rows per POST, one POST at a time,
//!    recording each acknowledged batch and logging every attempt. Between
//!    batches the subscription row is read again: deleted, stopped or moved,
//!    the window ends there.
//! 4. Only when every batch got HTTP 200, compare-and-set `DateTimeStart`
//!    from the value that was read to `stop`. An empty window still advances.
//!
//! Any failure returns before step 4: the next attempt resumes after the
//! last acknowledged batch, so only the batch in flight is ever sent twice.

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::batch::{Batch, Oversized, Piece};
use crate::config::Settings;
use crate::db::{Clock, Database, DbError, DeliveryRecord, Progress, StoredSecrets, WatchedTable};
use crate::delivery::{Failure, Sender};
use crate::journal::Journal;
use crate::pages::{Cut, Pages, SharedPage};
use crate::signing::Signer;
use crate::subscription::Subscription;
use crate::window::{self, Cursor, Plan, Window};

/// How a window ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every batch got 200 and `DateTimeStart` moved to `stop`.
    Delivered { rows: usize, batches: usize },
    /// The subscription row changed under us (an operator moved
    /// `DateTimeStart`); the window stopped and the operator's value stands.
    Superseded { rows: usize, batches: usize },
    /// Nothing can be read safely yet (same second, or an open transaction
    /// holds `stop` back); nothing was read or written.
    Waiting,
    /// A batch was not accepted; `DateTimeStart` is unchanged and the next
    /// attempt resumes after the last acknowledged batch.
    Failed {
        failure: Failure,
        rows_delivered: usize,
        batch: FailedBatch,
    },
    /// Shutdown began, or the subscription was deleted or expired,
    /// mid-window; `DateTimeStart` is unchanged.
    Abandoned,
}

/// The batch a failure happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedBatch {
    pub id: String,
    pub rows: usize,
    pub first_key: Option<i64>,
}

/// Shared, read-only things a window needs.
#[derive(Debug, Clone)]
pub struct Context {
    pub db: Database,
    pub sender: Sender,
    pub settings: Settings,
    pub shutdown: CancellationToken,
    pub journal: Journal,
    /// Page reads shared by concurrent windows of the same table.
    pub pages: Pages,
}

/// How far below the server's clock a window restarts after the clock went
/// back, beyond the subscription's own polling interval: rows stamped since
/// the step are at most this old when the next tick sees it.
const REWIND_MARGIN: Duration = Duration::from_secs(60);

/// One window in progress.
struct Run<'a> {
    ctx: &'a Context,
    subscription: &'a Subscription,
    table: &'a WatchedTable,
    /// `DateTimeStart` as an instant.
    start: NaiveDateTime,
    window: Window,
    after: Option<Cursor>,
    rows: usize,
    batches: usize,
    /// The tick's local time and when it was, to date each attempt.
    clock: Clock,
    ticked: Instant,
    /// Read by the tick, or when the first batch is about to go.
    secrets: Option<StoredSecrets>,
    tick_stop: &'a Stop,
}

/// The safe end of a tick's new windows, and the same moment as the
/// `DateTimeStart` text it becomes, when the tick has converted it once for
/// all its subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub instant: NaiveDateTime,
    pub local: Option<String>,
}

/// Processes one due subscription. `clock` is when its row was read, `stop`
/// the safe end for new windows, `progress` rowhook's record for it,
/// `secrets` its signing secrets when the tick has read them (else they are
/// read when the first batch is about to go).
pub async fn process(
    ctx: &Context,
    subscription: &Subscription,
    table: &WatchedTable,
    clock: Clock,
    stop: &Stop,
    progress: Option<&Progress>,
    secrets: Option<StoredSecrets>,
) -> Result<Outcome, DbError> {
    let ticked = Instant::now();
    let (start, resume) = position(ctx, subscription, progress).await?;
    let (window, after) = match resume {
        Some((window_stop, cursor)) => {
            tracing::info!(
                subscription = %subscription.id, table = %table.watch_name, after_key = cursor.key,
                "Resuming a partly delivered window after its last acknowledged batch."
            );
            (
                Window {
                    start,
                    stop: window_stop,
                },
                Some(cursor),
            )
        }
        None => match plan(ctx, subscription, table, start, clock, stop.instant).await? {
            Some(window) => (window, None),
            None => return Ok(Outcome::Waiting),
        },
    };
    let mut run = Run {
        ctx,
        subscription,
        table,
        start,
        window,
        after,
        rows: 0,
        batches: 0,
        clock,
        ticked,
        secrets,
        tick_stop: stop,
    };
    run.deliver().await
}

/// Where the subscription stands: (`DateTimeStart` as an instant, the
/// partly delivered window to resume, if any).
async fn position(
    ctx: &Context,
    subscription: &Subscription,
    progress: Option<&Progress>,
) -> Result<(NaiveDateTime, Option<(NaiveDateTime, Cursor)>), DbError> {
    match progress {
        Some(p) if p.date_time_start == subscription.start_raw => Ok((p.watermark, p.window)),
        other => {
            if let Some(p) = other {
                tracing::info!(
                    subscription = %subscription.id, was = %p.date_time_start,
                    now = %subscription.start_raw,
                    "DateTimeStart was changed outside rowhook; continuing from the new value."
                );
            }
            Ok((
                ctx.db.local_to_instant(&subscription.start_raw).await?,
                None,
            ))
        }
    }
}

/// The window `subscription` would read now from `start`, when it needs
/// nothing beyond the page query: no look-back cut, no clock step, not
/// waiting. [`crate::quiet`] closes such windows in bulk when they are empty.
pub fn plain_window(
    settings: &Settings,
    subscription: &Subscription,
    start: NaiveDateTime,
    clock: Clock,
    stop: NaiveDateTime,
) -> Option<Window> {
    match plan_for(settings, subscription, start, clock, stop) {
        Plan::Read {
            window,
            skipped: None,
            clock_stepped_back: None,
        } => Some(window),
        _ => None,
    }
}

/// The one place a subscription's window is planned, for the processor and
/// for [`plain_window`] alike.
fn plan_for(
    settings: &Settings,
    subscription: &Subscription,
    start: NaiveDateTime,
    clock: Clock,
    stop: NaiveDateTime,
) -> Plan {
    let rewind = subscription.polling + REWIND_MARGIN;
    window::plan(start, clock.instant, stop, settings.max_lookback, rewind)
}

/// Plans a new window, logging what the plan had to cut or rewind.
async fn plan(
    ctx: &Context,
    subscription: &Subscription,
    table: &WatchedTable,
    start: NaiveDateTime,
    clock: Clock,
    stop: NaiveDateTime,
) -> Result<Option<Window>, DbError> {
    let plan = plan_for(&ctx.settings, subscription, start, clock, stop);
    let Plan::Read {
        window,
        skipped,
        clock_stepped_back,
    } = plan
    else {
        return Ok(None);
    };
    if let Some(skipped) = skipped {
        let rows = ctx.db.count_rows(table, skipped).await?;
        let span = (skipped.stop - skipped.start).to_std().unwrap_or_default();
        tracing::warn!(
            subscription = %subscription.id, table = %table.watch_name, rows_skipped = rows,
            skipped = %humantime::format_duration(span),
            "DateTimeStart is older than --max-lookback; changes before the cut are not sent \
             (set --max-lookback 0 to send everything)."
        );
    }
    if let Some(stepped) = clock_stepped_back {
        tracing::warn!(
            subscription = %subscription.id, table = %table.watch_name,
            behind = %humantime::format_duration(stepped),
            "The server's clock is behind DateTimeStart (it was stepped back); re-reading from \
             just before now so rows stamped since are not lost."
        );
    }
    Ok(Some(window))
}

/// How many batches one page read holds. Reading a page costs per
/// statement besides per row (on MyISAM, the rows of its last second are
/// read twice; see `db/mysql/page.rs`). Three batches a read were as fast
/// as five in a backfill, and hold up to three pages (one sending, one
/// queued, one being read) of 3 MB at 1,000 rows of 1 kB.
pub const READ_BATCHES: u32 = 3;

/// Pages read ahead of the window's sends, in order; a read error ends them.
type PageFeed = mpsc::Receiver<Result<SharedPage, DbError>>;

/// Reads a window's pages one after another, each from the previous one's
/// last row, while the window sends: the database works on the next page
/// during the POST, the delivery log and the progress record. The channel
/// holds one page, so at most two are read ahead; reading stops after the
/// last page, on an error, or when the window stops listening.
async fn read_ahead(
    ctx: &Context,
    table: &WatchedTable,
    window: Window,
    mut after: Option<Cursor>,
    feed: mpsc::Sender<Result<SharedPage, DbError>>,
) {
    let settings = &ctx.settings;
    let size = (
        settings.batch_size.saturating_mul(READ_BATCHES),
        settings.batch_size as usize,
        settings.max_request_bytes,
    );
    loop {
        let page = ctx.pages.fetch(&ctx.db, table, window, after, size).await;
        let next = match &page {
            Ok(page) if page.more => page.last,
            _ => None,
        };
        if feed.send(page).await.is_err() {
            return;
        }
        match next {
            Some(last) => after = Some(last),
            None => return,
        }
    }
}

impl Run<'_> {
    async fn deliver(&mut self) -> Result<Outcome, DbError> {
        let (ctx, table, window, after) = (self.ctx, self.table, self.window, self.after);
        let (feed, mut pages) = mpsc::channel(1);
        let reader = read_ahead(ctx, table, window, after, feed);
        let sender = async move {
            let outcome = self.send_pages(&mut pages).await;
            // Closed here, not when `deliver` returns, so that a reader
            // waiting to hand over a page stops and the join below ends.
            drop(pages);
            outcome
        };
        let ((), outcome) = tokio::join!(reader, sender);
        outcome
    }

    /// Sends the window's pages in order, then advances the watermark.
    async fn send_pages(&mut self, pages: &mut PageFeed) -> Result<Outcome, DbError> {
        // The page that ends the window is kept until the watermark has
        // moved: a subscription on the same table starting meanwhile (when
        // this one's turn ends) shares it instead of reading it again.
        let mut held = None;
        while let Some(page) = pages.recv().await {
            let page = page?;
            if let Err(outcome) = self.send_page(&page).await? {
                return Ok(outcome);
            }
            if !page.more {
                held = Some(page);
                break;
            }
        }
        let outcome = self.advance().await;
        drop(held);
        outcome
    }

    /// Sends one page as its batches, recording the position after each
    /// one unless the window ends with it; `Ok(Err)` carries the outcome
    /// that ends the window.
    async fn send_page(&mut self, page: &Cut) -> Result<Result<(), Outcome>, DbError> {
        for (n, piece) in page.pieces.iter().enumerate() {
            match piece {
                Piece::Send(batch) => {
                    if self.ctx.shutdown.is_cancelled() {
                        return Ok(Err(Outcome::Abandoned));
                    }
                    if self.batches > 0 {
                        if let Some(outcome) = self.row_changed().await? {
                            return Ok(Err(outcome));
                        }
                    }
                    let signer = self.signer().await?;
                    if let Err(outcome) = self.send(batch, &signer).await {
                        return Ok(Err(outcome));
                    }
                    self.rows += batch.keys.len();
                    self.batches += 1;
                }
                Piece::Skip(oversized) => self.skip(*oversized),
            }
            let Some(last) = piece.last() else { continue };
            self.after = Some(last);
            let ends_window = !page.more && n + 1 == page.pieces.len();
            if !ends_window {
                self.remember(Some((self.window.stop, last))).await?;
            }
        }
        Ok(Ok(()))
    }

    /// The secrets that sign this attempt (read once per window).
    async fn signer(&mut self) -> Result<Signer, DbError> {
        let now = chrono::Utc::now().naive_utc();
        if let Some(stored) = &self.secrets {
            return Ok(stored.signer(now));
        }
        let stored = self.ctx.db.secrets(self.subscription.id).await?;
        Ok(self.secrets.insert(stored).signer(now))
    }

    /// POSTs one page and logs the attempt; `Err` carries the outcome that
    /// ends the window.
    async fn send(&self, batch: &Batch, signer: &Signer) -> Result<(), Outcome> {
        let (subscription, table) = (self.subscription, self.table);
        let id = batch.id(subscription.id, &table.watch_name);
        let (rows, first_key, last_key) = (
            batch.keys.len(),
            batch.first().map(|c| c.key),
            batch.last().map(|c| c.key),
        );
        let body = batch.body.clone();
        let started = Instant::now();
        let result = tokio::select! {
            result = self.ctx.sender.send(subscription, &table.watch_name, &id, signer, body) => result,
            () = self.ctx.shutdown.cancelled() => return Err(Outcome::Abandoned),
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.ctx.journal.record(DeliveryRecord {
            subscription: subscription.id,
            batch_id: id.clone(),
            watch_table: table.watch_name.clone(),
            window_start: self.window.start,
            window_stop: self.window.stop,
            first_key,
            last_key,
            rows: u32::try_from(rows).unwrap_or(u32::MAX),
            attempt: 0,
            status: if result.is_ok() { "SENT" } else { "FAILED" },
            http_status: result
                .as_ref()
                .err()
                .map_or(Some(200), Failure::http_status),
            error_class: result.as_ref().err().map(Failure::class),
            error: result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default(),
            elapsed_ms,
            attempted_at: self.local_now(),
        });
        match result {
            Ok(()) => {
                tracing::info!(
                    subscription = %subscription.id, table = %table.watch_name, rows,
                    status = 200, elapsed_ms, first_key, last_key, batch = %id, "Batch delivered."
                );
                Ok(())
            }
            Err(failure) => Err(Outcome::Failed {
                failure,
                rows_delivered: self.rows,
                batch: FailedBatch {
                    id,
                    rows,
                    first_key,
                },
            }),
        }
    }

    /// A row too large for any request: said once, logged, and passed.
    fn skip(&self, oversized: Oversized) {
        let (subscription, table) = (self.subscription, self.table);
        let limit = self.ctx.settings.max_request_bytes;
        tracing::warn!(
            subscription = %subscription.id, table = %table.watch_name, key = oversized.at.key,
            stamp = %oversized.at.stamp, bytes = oversized.bytes, limit,
            "Row too large for one request; skipped. Raise --max-request-bytes and replay to send it."
        );
        self.ctx.journal.record(DeliveryRecord {
            subscription: subscription.id,
            batch_id: String::new(),
            watch_table: table.watch_name.clone(),
            window_start: self.window.start,
            window_stop: self.window.stop,
            first_key: Some(oversized.at.key),
            last_key: Some(oversized.at.key),
            rows: 1,
            attempt: 0,
            status: "SKIPPED",
            http_status: None,
            error_class: None,
            error: format!(
                "row is {} bytes; --max-request-bytes is {limit}",
                oversized.bytes
            ),
            elapsed_ms: 0,
            attempted_at: self.local_now(),
        });
    }

    /// Open Dental's local time now: the tick's, plus the time since.
    fn local_now(&self) -> NaiveDateTime {
        let since = chrono::Duration::from_std(self.ticked.elapsed()).unwrap_or_default();
        self.clock.local + since
    }

    /// Reads the subscription row again; `Some` ends the window.
    async fn row_changed(&self) -> Result<Option<Outcome>, DbError> {
        let id = self.subscription.id;
        let (rows, batches) = (self.rows, self.batches);
        Ok(match self.ctx.db.recheck(id).await? {
            None => {
                tracing::info!(subscription = %id, "Subscription deleted mid-window; stopping.");
                Some(Outcome::Abandoned)
            }
            Some((_, true)) => {
                tracing::info!(subscription = %id, "Subscription expired mid-window; stopping.");
                Some(Outcome::Abandoned)
            }
            Some((start, false)) if start != self.subscription.start_raw => {
                tracing::info!(subscription = %id, was = %self.subscription.start_raw, now = %start,
                    "DateTimeStart was changed mid-window; following the new value.");
                Some(Outcome::Superseded { rows, batches })
            }
            Some(_) => None,
        })
    }

    /// Records the position: `DateTimeStart` as read, its instant, and the
    /// window in progress (or none).
    async fn remember(&self, window: Option<(NaiveDateTime, Cursor)>) -> Result<(), DbError> {
        let progress = Progress {
            date_time_start: self.subscription.start_raw.clone(),
            watermark: self.start,
            window,
        };
        self.ctx
            .db
            .save_progress(self.subscription.id, &progress)
            .await
    }

    /// The window is complete: move `DateTimeStart` to `stop`, unless
    /// someone else moved it first.
    async fn advance(&self) -> Result<Outcome, DbError> {
        let (db, id) = (&self.ctx.db, self.subscription.id);
        let stop_local = match &self.tick_stop.local {
            Some(local) if self.tick_stop.instant == self.window.stop => local.clone(),
            _ => db.instant_to_local(self.window.stop).await?,
        };
        let read = &self.subscription.start_raw;
        let done = Progress {
            date_time_start: stop_local,
            watermark: self.window.stop,
            window: None,
        };
        if !db.close_window(id, read, &done).await? {
            tracing::info!(subscription = %id, read = %read,
                "DateTimeStart was changed by someone else during the window; leaving it as they set it.");
            return Ok(Outcome::Superseded {
                rows: self.rows,
                batches: self.batches,
            });
        }
        Ok(Outcome::Delivered {
            rows: self.rows,
            batches: self.batches,
        })
    }
}
