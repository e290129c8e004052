//! The task each due subscription runs in: a permit, its table, its secret,
//! its window, and then its health — one WARN per failure, one ERROR on
//! deactivation. Every event inside carries the window's span, with the
//! subscription's number and table.

use std::sync::atomic::Ordering;

use chrono::NaiveDateTime;
use tracing::Instrument;

use super::{lock, Admitted, Ticker, Times};
use crate::db::DbError;
use crate::window::{self, Outcome, TickTimes};

impl Ticker {
    /// Runs one admitted subscription's window under a span of its own.
    pub(super) async fn run_task(&self, admitted: Admitted, times: Times) {
        let subscription = &admitted.job.subscription;
        let id = subscription.id;
        let span =
            tracing::info_span!("window", subscription = %id, table = %subscription.target.name);
        if let Ok(_permit) = self.permits.acquire().await {
            self.run_window(&admitted, &times).instrument(span).await;
        }
        lock(&self.in_flight).remove(&id);
    }

    async fn run_window(&self, admitted: &Admitted, times: &Times) {
        let (db, job) = (&self.ctx.db, &admitted.job);
        let id = job.subscription.id;
        let table = match self.tables.get(db, &job.subscription).await {
            Ok(table) => table,
            Err(error) => {
                let name = &job.subscription.target.name;
                let reason = format!("skipped: WatchTable {name:?}: {error}");
                self.notices.problem(id, reason);
                return;
            }
        };
        if let Err(error) = self.secured.secure(db, id).await {
            self.notices.problem(id, format!("skipped: {error}"));
            return;
        }
        self.notices.clear(id);
        self.processed.fetch_add(1, Ordering::Relaxed);
        let tick = TickTimes {
            clock: times.clock,
            stop: &times.stop,
            lookups: &times.lookups,
        };
        match window::process(&self.ctx, job, &table, tick).await {
            Ok(outcome) => self.record(admitted, &outcome, times.clock.local).await,
            Err(error) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.ctx.metrics.database_error(&error);
                self.tables.forget(&job.subscription.target.name);
                if error.is_missing_grant() {
                    tracing::error!(%error,
                        "rowhook's database user lacks a privilege; DateTimeStart unchanged. \
                         The README's \"Least privilege\" section lists the grants it needs.");
                } else {
                    tracing::error!(%error, "Database error while processing; DateTimeStart unchanged.");
                }
            }
        }
    }

    /// Updates the subscription's health after a window, and says what an
    /// operator needs to know.
    async fn record(&self, admitted: &Admitted, outcome: &Outcome, now: NaiveDateTime) {
        let id = admitted.job.subscription.id;
        let before = &admitted.health;
        let after = match outcome {
            Outcome::Failed { failure, batch, .. } => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                lock(&self.failed_last).insert(id);
                let after = before.failed(id, now, &failure.to_string(), &self.ctx.settings.retry);
                match after.next_retry_at {
                    Some(next_retry) => tracing::warn!(
                        rows = batch.rows, status = %failure, class = %failure.class(),
                        batch = %batch.id, first_key = batch.first_key,
                        failures = after.consecutive_failures, next_retry = %next_retry,
                        "Batch not delivered; will retry."
                    ),
                    None => tracing::error!(
                        failures = after.consecutive_failures, last_failure = %failure,
                        "Subscription deactivated after too many consecutive failures; it keeps its \
                         DateTimeStart. Reactivate with `rowhook subscriptions reactivate {id}`."
                    ),
                }
                Some(after)
            }
            Outcome::Delivered { rows, .. } | Outcome::Superseded { rows, .. } => {
                lock(&self.failed_last).remove(&id);
                self.rewinds.done(id, admitted.rewind);
                // Idle windows of a healthy subscription write nothing.
                if *rows > 0 || before.consecutive_failures > 0 {
                    before.after_success(now)
                } else {
                    None
                }
            }
            Outcome::LeaseLost => {
                lease_lost();
                None
            }
            Outcome::Waiting | Outcome::Abandoned => None,
        };
        let Some(after) = after else { return };
        match self
            .ctx
            .db
            .save_health(id, &after, admitted.job.fence())
            .await
        {
            Ok(()) => {}
            Err(DbError::LeaseLost(_)) => lease_lost(),
            Err(error) => tracing::warn!(%error, "Cannot record the subscription's health."),
        }
    }
}

/// Says that a window ended because its lease ran out or passed on.
fn lease_lost() {
    tracing::warn!(
        "Lease lost mid-window (it ran out unrenewed, or passed to another agent): nothing \
         more sent or written; its next holder resumes after the last acknowledged batch."
    );
}
