//! One window in progress: its batches sent in order, each attempt written
//! to the delivery log, the position recorded after each acknowledged
//! batch, and the watermark moved when the last one is.
//!
//! The cursor is recorded after each batch (and each skipped row), so a kill
//! re-sends at most the batch in flight. The subscription row is read again
//! between batches, so a stop, a delete or an operator's move ends the
//! window at the next batch. `advance` is the end: only when every batch got
//! 200 does it hand the window to `close_window` in `db/progress.rs`.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDateTime;
use tokio::sync::mpsc;

use super::batch::{Batch, Oversized, Piece};
use super::metrics::SubMetrics;
use super::pages::Cut;
use super::read_ahead::{read_ahead, PageFeed};
use super::{Context, FailedBatch, Job, Outcome, TickTimes};
use crate::db::{Body, DbError, WatchedTable};
use crate::delivery::sender::Failure;
use crate::delivery::signing::Signer;
use crate::domain::attempt::{AttemptOf, Carried, DeliveryRecord, Verdict};
use crate::domain::body::BodyKind;
use crate::domain::lease::Hold;
use crate::domain::opendental::Lookups;
use crate::domain::progress::{Cursor, Progress, Recheck, Resume, Window};
use crate::domain::secret::StoredSecrets;

/// Where a window starts and what it reads.
#[derive(Debug, Clone, Copy)]
pub(super) struct Planned {
    /// `DateTimeStart` as an instant.
    pub start: NaiveDateTime,
    pub window: Window,
    /// The last acknowledged row, when resuming.
    pub after: Option<Cursor>,
}

/// One window in progress.
pub(super) struct Run<'a> {
    ctx: &'a Context,
    job: &'a Job,
    table: &'a WatchedTable,
    planned: Planned,
    rows: usize,
    batches: usize,
    times: TickTimes<'a>,
    /// When the tick read the clock, to date each attempt.
    ticked: Instant,
    /// Read by the tick, or when the first batch is about to go.
    secrets: Option<StoredSecrets>,
    /// This subscription's counters.
    metrics: Arc<SubMetrics>,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        ctx: &'a Context,
        job: &'a Job,
        table: &'a WatchedTable,
        planned: Planned,
        times: TickTimes<'a>,
        ticked: Instant,
    ) -> Self {
        Self {
            ctx,
            job,
            table,
            planned,
            rows: 0,
            batches: 0,
            times,
            ticked,
            secrets: job.secrets.clone(),
            metrics: ctx
                .metrics
                .of(job.subscription.id, &job.subscription.target.name),
        }
    }

    /// Reads the window's pages ahead while sending them.
    pub(super) async fn deliver(mut self) -> Result<Outcome, DbError> {
        let (ctx, table, window, after) = (
            self.ctx,
            self.table,
            self.planned.window,
            self.planned.after,
        );
        let lookups = self.lookups().await?;
        let body = match (&table.opendental, &lookups) {
            (Some(plan), Some(lookups)) => Body::OpenDental { plan, lookups },
            _ => Body::Columns,
        };
        let (feed, mut pages) = mpsc::channel(1);
        let reader = read_ahead(ctx, table, body, window, after, feed);
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

    /// The lookup names this window's body needs: `None` for the
    /// raw-column body, the tick's shared names for Open Dental's (read now
    /// if no window of the tick has yet), and none at all when its keys
    /// look nothing up.
    async fn lookups(&self) -> Result<Option<Arc<Lookups>>, DbError> {
        let Some(plan) = &self.table.opendental else {
            return Ok(None);
        };
        if self.table.body_for(self.job.body) != BodyKind::OpenDental {
            return Ok(None);
        }
        if plan.lookups().is_empty() {
            return Ok(Some(Arc::default()));
        }
        let db = &self.ctx.db;
        let read = || async { db.lookups().await.map(Arc::new) };
        Ok(Some(Arc::clone(
            self.times.lookups.get_or_try_init(read).await?,
        )))
    }

    /// Sends the window's pages in order, then advances the watermark.
    async fn send_pages(&mut self, pages: &mut PageFeed) -> Result<Outcome, DbError> {
        // The page that ends the window is kept until the watermark has
        // moved: a subscription on the same table starting meanwhile (when
        // this one's turn ends) shares it instead of reading it again.
        let mut held = None;
        while let Some(page) = pages.recv().await {
            let page = page?;
            if let ControlFlow::Break(outcome) = self.send_page(&page).await? {
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
    /// one unless the window ends with it.
    async fn send_page(&mut self, page: &Cut) -> Result<ControlFlow<Outcome>, DbError> {
        for (n, piece) in page.pieces.iter().enumerate() {
            match piece {
                Piece::Send(batch) => {
                    if let ControlFlow::Break(outcome) = self.send_batch(batch).await? {
                        return Ok(ControlFlow::Break(outcome));
                    }
                }
                Piece::Skip(oversized) => self.skip(*oversized),
            }
            let Some(last) = piece.last() else { continue };
            self.planned.after = Some(last);
            let ends_window = !page.more && n + 1 == page.pieces.len();
            if !ends_window {
                let stop = self.planned.window.stop;
                self.remember(Some(Resume { stop, after: last })).await?;
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// One batch: unless shutdown began or the row changed, sign it and
    /// POST it.
    async fn send_batch(&mut self, batch: &Batch) -> Result<ControlFlow<Outcome>, DbError> {
        if self.ctx.shutdown.is_cancelled() {
            return Ok(ControlFlow::Break(Outcome::Abandoned));
        }
        if !self.lease_valid() {
            return Ok(ControlFlow::Break(Outcome::LeaseLost));
        }
        if self.batches > 0 {
            if let Some(outcome) = self.row_changed().await? {
                return Ok(ControlFlow::Break(outcome));
            }
        }
        let signer = self.signer().await?;
        if let ControlFlow::Break(outcome) = self.send(batch, &signer).await {
            return Ok(ControlFlow::Break(outcome));
        }
        self.rows += batch.keys.len();
        self.batches += 1;
        Ok(ControlFlow::Continue(()))
    }

    /// The secrets that sign this attempt (read once per window).
    async fn signer(&mut self) -> Result<Signer, DbError> {
        let now = chrono::Utc::now().naive_utc();
        if let Some(stored) = &self.secrets {
            return Ok(Signer::at(stored, now));
        }
        let stored = self.ctx.db.secrets(self.job.subscription.id).await?;
        Ok(Signer::at(self.secrets.insert(stored), now))
    }

    /// POSTs one batch and logs the attempt.
    async fn send(&self, batch: &Batch, signer: &Signer) -> ControlFlow<Outcome> {
        let (subscription, table) = (&self.job.subscription, self.table);
        let id = batch.id(subscription.id, &table.watch_name);
        let carried = Carried {
            first_key: batch.first().map(|c| c.key),
            last_key: batch.last().map(|c| c.key),
            rows: u32::try_from(batch.keys.len()).unwrap_or(u32::MAX),
        };
        let body = batch.body.clone();
        let started = Instant::now();
        let hold = self.job.lease.as_ref();
        let sending =
            self.ctx
                .sender
                .send(subscription, &table.watch_name, &id, signer, body, hold);
        let result = tokio::select! {
            result = sending => result,
            () = self.ctx.shutdown.cancelled() => return ControlFlow::Break(Outcome::Abandoned),
        };
        if result == Err(Failure::LeaseExpired) {
            // Nothing left: not an attempt, and not the receiver's failure.
            return ControlFlow::Break(Outcome::LeaseLost);
        }
        let took = started.elapsed();
        let elapsed_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        match &result {
            Ok(()) => self.metrics.delivered(batch.keys.len(), took),
            Err(failure) => self.metrics.failed(failure.class(), took),
        }
        let verdict = result
            .as_ref()
            .map_or_else(|f| f.verdict(), |()| Verdict::Sent);
        self.log(id.clone(), carried, verdict, elapsed_ms);
        let (first_key, last_key) = (carried.first_key, carried.last_key);
        match result {
            Ok(()) => {
                tracing::info!(
                    rows = carried.rows, status = 200, elapsed_ms, first_key, last_key,
                    batch = %id, "Batch delivered."
                );
                ControlFlow::Continue(())
            }
            Err(failure) => ControlFlow::Break(Outcome::Failed {
                failure,
                rows_delivered: self.rows,
                batch: FailedBatch {
                    id,
                    rows: batch.keys.len(),
                    first_key,
                },
            }),
        }
    }

    /// A row too large for any request: said once, logged, and passed.
    fn skip(&self, oversized: Oversized) {
        let limit = self.ctx.settings.max_request_bytes;
        tracing::warn!(
            key = oversized.at.key, stamp = %oversized.at.stamp, bytes = oversized.bytes, limit,
            "Row too large for one request; skipped. Raise --max-request-bytes and replay to send it."
        );
        let carried = Carried {
            first_key: Some(oversized.at.key),
            last_key: Some(oversized.at.key),
            rows: 1,
        };
        let reason = format!(
            "row is {} bytes; --max-request-bytes is {limit}",
            oversized.bytes
        );
        self.log(String::new(), carried, Verdict::Skipped { reason }, 0);
    }

    /// Writes one attempt to the delivery log.
    fn log(&self, batch_id: String, carried: Carried, verdict: Verdict, elapsed_ms: u64) {
        let of = AttemptOf {
            subscription: self.job.subscription.id,
            watch_table: &self.table.watch_name,
            window: self.planned.window,
        };
        let at = self.local_now();
        let record = DeliveryRecord::new(of, batch_id, carried, verdict, elapsed_ms, at);
        self.ctx.journal.record(record);
    }

    /// Open Dental's local time now: the tick's, plus the time since.
    fn local_now(&self) -> NaiveDateTime {
        let since = chrono::Duration::from_std(self.ticked.elapsed()).unwrap_or_default();
        self.times.clock.local + since
    }

    /// Whether this agent may still send (always, without leases).
    fn lease_valid(&self) -> bool {
        self.job.lease.as_ref().map_or(true, Hold::is_valid)
    }

    /// Reads the subscription row again; `Some` ends the window.
    async fn row_changed(&self) -> Result<Option<Outcome>, DbError> {
        let read = &self.job.subscription.start_raw;
        let (rows, batches) = (self.rows, self.batches);
        Ok(match self.ctx.db.recheck(self.job.subscription.id).await? {
            None => {
                tracing::info!("Subscription deleted mid-window; stopping.");
                Some(Outcome::Abandoned)
            }
            Some(Recheck { expired: true, .. }) => {
                tracing::info!("Subscription expired mid-window; stopping.");
                Some(Outcome::Abandoned)
            }
            Some(Recheck { start, .. }) if start != *read => {
                tracing::info!(was = %read, now = %start,
                    "DateTimeStart was changed mid-window; following the new value.");
                Some(Outcome::Superseded { rows, batches })
            }
            Some(_) => None,
        })
    }

    /// Records the position: `DateTimeStart` as read, its instant, and the
    /// window in progress (or none).
    async fn remember(&self, window: Option<Resume>) -> Result<(), DbError> {
        let progress = Progress {
            date_time_start: self.job.subscription.start_raw.clone(),
            watermark: self.planned.start,
            window,
        };
        let id = self.job.subscription.id;
        self.ctx
            .db
            .save_progress(id, &progress, self.job.fence())
            .await
    }

    /// The window is complete: move `DateTimeStart` to `stop`, unless
    /// someone else moved it first.
    async fn advance(&self) -> Result<Outcome, DbError> {
        let (db, id) = (&self.ctx.db, self.job.subscription.id);
        let stop = self.planned.window.stop;
        let stop_local = match &self.times.stop.local {
            Some(local) if self.times.stop.instant == stop => local.clone(),
            _ => db.instant_to_local(stop).await?,
        };
        let read = &self.job.subscription.start_raw;
        let done = Progress {
            date_time_start: stop_local,
            watermark: stop,
            window: None,
        };
        let (rows, batches) = (self.rows, self.batches);
        if !db.close_window(id, read, &done, self.job.fence()).await? {
            tracing::info!(read = %read,
                "DateTimeStart was changed by someone else during the window; leaving it as they set it.");
            return Ok(Outcome::Superseded { rows, batches });
        }
        Ok(Outcome::Delivered { rows, batches })
    }
}
