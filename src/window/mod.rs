//! One subscription's window, start to finish. This is where the watermark
//! (`DateTimeStart`) moves.
//!
//! 1. Find where the subscription stands: rowhook's progress record when it
//!    still belongs to the row's `DateTimeStart`, else `DateTimeStart`
//!    itself (a new subscription, or an operator moved it: they win).
//! 2. Resume a partly delivered window after its last acknowledged batch,
//!    or plan a new one `[start, stop)` ([`plan`]), where `stop` is the
//!    tick's safe end: the server's clock less a safety lag, and before the
//!    oldest write that may still commit rows ([`Stop`]).
//! 3. Page through it by keyset, in (stamp, key) order, a few batches a read
//!    ([`read_ahead`], [`pages`], [`batch`]), one POST at a time, recording
//!    each acknowledged batch and logging every attempt (`run.rs`). Between
//!    batches the subscription row is read again: deleted, stopped or
//!    moved, the window ends there.
//! 4. Only when every batch got HTTP 200, compare-and-set `DateTimeStart`
//!    from the value that was read to `stop`. An empty window still
//!    advances.
//!
//! Any failure returns before step 4: the next attempt resumes after the
//! last acknowledged batch, so only the batch in flight is ever sent twice.
//!
//! Where agents share the database, the window runs under this agent's
//! lease ([`crate::domain::lease`]): each POST goes only while it is valid,
//! and every write carries its fence, so a window that outlives its lease
//! ends without sending or writing anything more.

pub mod batch;
mod context;
pub mod metrics;
pub mod pages;
pub mod plan;
pub mod read_ahead;
mod run;

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDateTime;

pub use context::Context;

use crate::db::{DbError, WatchedTable};
use crate::delivery::sender::Failure;
use crate::domain::body::BodyKind;
use crate::domain::lease::{Fence, Hold};
use crate::domain::opendental::Lookups;
use crate::domain::progress::{Clock, Progress, Resume, StartText, Window};
use crate::domain::secret::StoredSecrets;
use crate::domain::subscription::Subscription;
use run::{Planned, Run};

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
    /// This agent's lease ran out or passed to another agent mid-window:
    /// nothing more was sent or written, and the new holder resumes after
    /// the last batch this agent recorded.
    LeaseLost,
}

/// The batch a failure happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedBatch {
    pub id: String,
    pub rows: usize,
    pub first_key: Option<i64>,
}

/// The safe end of a tick's new windows, and the same moment as the
/// `DateTimeStart` text it becomes, when the tick has converted it once for
/// all its subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub instant: NaiveDateTime,
    pub local: Option<StartText>,
}

/// What the tick read for a window: the server's clock when the row was
/// read, the safe end for new windows, and the lookup names of Open
/// Dental's bodies, read at most once per tick by the first window that
/// needs them.
#[derive(Debug, Clone, Copy)]
pub struct TickTimes<'a> {
    pub clock: Clock,
    pub stop: &'a Stop,
    pub lookups: &'a TickLookups,
}

/// The tick's lookup names, read when first needed.
pub type TickLookups = tokio::sync::OnceCell<Arc<Lookups>>;

/// A due subscription as the tick hands it over.
#[derive(Debug, Clone)]
pub struct Job {
    pub subscription: Subscription,
    /// rowhook's record of where it stands, if any.
    pub progress: Option<Progress>,
    /// Its signing secrets when the tick has read them; else they are read
    /// when the first batch is about to go.
    pub secrets: Option<StoredSecrets>,
    /// The body it asks for (its own choice, or the daemon's default).
    pub body: BodyKind,
    /// This agent's lease on it, where agents share the database: checked
    /// before each POST, and the fence of every write.
    pub lease: Option<Hold>,
}

impl Job {
    /// The fence this window's writes carry, if any.
    pub fn fence(&self) -> Option<&Fence> {
        self.lease.as_ref().map(|hold| &hold.fence)
    }
}

/// Processes one due subscription's window against `table`.
pub async fn process(
    ctx: &Context,
    job: &Job,
    table: &WatchedTable,
    times: TickTimes<'_>,
) -> Result<Outcome, DbError> {
    let ticked = Instant::now();
    let subscription = &job.subscription;
    if job.lease.as_ref().is_some_and(|hold| !hold.is_valid()) {
        return Ok(Outcome::LeaseLost);
    }
    let (start, resume) = position(ctx, subscription, job.progress.as_ref()).await?;
    let (window, after) = match resume {
        Some(Resume { stop, after }) => {
            tracing::info!(
                after_key = after.key,
                "Resuming a partly delivered window after its last acknowledged batch."
            );
            (Window { start, stop }, Some(after))
        }
        None => {
            let stop = times.stop.instant;
            match plan::plan_logged(ctx, subscription, table, start, times.clock, stop).await? {
                Some(window) => (window, None),
                None => return Ok(Outcome::Waiting),
            }
        }
    };
    let planned = Planned {
        start,
        window,
        after,
    };
    let outcome = Run::new(ctx, job, table, planned, times, ticked)
        .deliver()
        .await;
    match outcome {
        Err(DbError::LeaseLost(_)) => Ok(Outcome::LeaseLost),
        other => other,
    }
}

/// Where the subscription stands: `DateTimeStart` as an instant, and the
/// partly delivered window to resume, if any.
async fn position(
    ctx: &Context,
    subscription: &Subscription,
    progress: Option<&Progress>,
) -> Result<(NaiveDateTime, Option<Resume>), DbError> {
    match progress {
        Some(p) if p.date_time_start == subscription.start_raw => Ok((p.watermark, p.window)),
        other => {
            if let Some(p) = other {
                tracing::info!(
                    was = %p.date_time_start, now = %subscription.start_raw,
                    "DateTimeStart was changed outside rowhook; continuing from the new value."
                );
            }
            let start = ctx.db.local_to_instant(subscription.start_raw.as_str());
            Ok((start.await?, None))
        }
    }
}
