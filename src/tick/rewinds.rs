//! After the server's clock stepped back: moving every subscription's
//! position back before the step, and keeping that rewind until it holds.
//!
//! [`super::clock_step`] notices the step. One statement then moves every
//! progress record back (so the rewind outlives a restart, and holds for a
//! subscription not due for an hour), and the tick's copies of the records
//! with them. A window in flight writes its own record when it ends, so its
//! rewind is kept here, in memory, until its next window starts from it;
//! so is every one, if the statement failed.
//!
//! Every subscription's next window then starts no later than the oldest
//! kept read, less a second: a few seconds are sent twice, none lost.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use chrono::NaiveDateTime;

use super::clock_step::ClockWatch;
use super::lock;
use crate::db::{Database, Snapshot};
use crate::domain::lease::Fence;
use crate::domain::progress::Progress;
use crate::domain::subscription::{Subscription, SubscriptionId};

/// The clock's recent reads, and the rewinds not yet recorded.
#[derive(Debug, Default)]
pub struct Rewinds {
    clock_watch: Mutex<ClockWatch>,
    /// Where a subscription's next window must start at the latest, for
    /// those whose record the step's `UPDATE` could not settle.
    pending: Mutex<HashMap<SubscriptionId, NaiveDateTime>>,
}

impl Rewinds {
    /// Compares the server's clock, read in a query sent at `sent`, with
    /// ours; after a step back, moves the records back. `busy` are the
    /// subscriptions whose windows are in flight, before and since the read.
    pub async fn watch_clock(
        &self,
        db: &Database,
        sent: Instant,
        snapshot: &mut Snapshot,
        busy: &HashSet<SubscriptionId>,
    ) {
        // SQLite's clock is read to the second: too coarse to compare, and
        // it is this machine's own (the demo's).
        if !matches!(db, Database::MySql { .. }) {
            return;
        }
        let received = Instant::now();
        let step = lock(&self.clock_watch).observe(sent, received, snapshot.now_exact);
        let Some(step) = step else { return };
        let to = step.rewind_to;
        let moved = db.rewind_progress(to).await;
        tracing::warn!(
            back_by_ms = u64::try_from(step.back_by.as_millis()).unwrap_or(u64::MAX),
            rewind_to = %to,
            records_moved = moved.as_ref().ok(),
            "The server's clock stepped back; every subscription reads again from before the step \
             (rows written since may be sent twice, none is lost)."
        );
        if let Err(error) = &moved {
            tracing::warn!(%error, "Cannot move the progress records back; each moves as its next window starts.");
        } else {
            for progress in snapshot.progress.values_mut() {
                progress.rewind(to);
            }
        }
        let mut pending = lock(&self.pending);
        for row in &snapshot.subscriptions {
            let id = row.id();
            if moved.is_err() || busy.contains(&id) {
                let at = pending.entry(id).or_insert(to);
                *at = (*at).min(to);
            }
        }
    }

    /// Applies a pending rewind to a due subscription's progress record, so
    /// that its window (or the empty-window check) starts no later than the
    /// rewind. Without a record that matches `DateTimeStart` (a new
    /// subscription, or an operator's edit) the window starts at
    /// `DateTimeStart` as it is set, and the rewind is dropped.
    pub fn apply(
        &self,
        s: &Subscription,
        progress: Option<&mut Progress>,
    ) -> Option<NaiveDateTime> {
        let to = *lock(&self.pending).get(&s.id)?;
        let Some(progress) = progress.filter(|p| p.date_time_start == s.start_raw) else {
            lock(&self.pending).remove(&s.id);
            return None;
        };
        progress.rewind(to);
        Some(to)
    }

    /// Stores a progress record that [`Self::apply`] moved back, so that
    /// the rewind outlives a failed window and a restart; it is then done.
    /// One that cannot be stored stays pending until its window is done.
    /// Returns whether it was stored.
    pub async fn record(
        &self,
        db: &Database,
        id: SubscriptionId,
        progress: &Progress,
        to: NaiveDateTime,
        fence: Option<&Fence>,
    ) -> bool {
        match db.save_progress(id, progress, fence).await {
            Ok(()) => {
                self.done(id, Some(to));
                true
            }
            Err(error) => {
                tracing::warn!(subscription = %id, %error,
                    "Cannot record the rewind after the clock step; it is kept until the window is done.");
                false
            }
        }
    }

    /// A window that started from rewind `to` ended delivered (or yielded
    /// to an operator): the rewind is done, unless a later step set another.
    pub fn done(&self, id: SubscriptionId, to: Option<NaiveDateTime>) {
        let Some(to) = to else { return };
        let mut pending = lock(&self.pending);
        if pending.get(&id) == Some(&to) {
            pending.remove(&id);
        }
    }

    /// Forgets deleted subscriptions.
    pub fn retain(&self, present: &HashSet<SubscriptionId>) {
        lock(&self.pending).retain(|id, _| present.contains(id));
    }
}
