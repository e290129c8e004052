//! One tick: where subscriptions are read, admitted and handed out.
//!
//! Every tick (about once a second, driven by [`crate::daemon`]) reads
//! `apisubscription` afresh — so rows that were inserted, edited or deleted
//! take effect on the next tick — together with the server's clock,
//! rowhook's progress and each subscription's health, in one statement.
//! Then:
//!
//! 1. the clock is checked for a step back (`clock_step.rs`, `rewinds.rs`);
//! 2. each row is parsed and admitted or refused (`admit.rs`), and, where
//!    agents share the database, run only under this agent's lease
//!    (`lease.rs`);
//! 3. the tick's safe stop is found (`stop.rs`);
//! 4. due windows that are plainly empty are closed together ([`quiet`]);
//! 5. each remaining due subscription runs as its own task (`task.rs`),
//!    bounded by a semaphore, so a slow endpoint never delays another.
//!    Subscriptions whose last attempt failed go after the others;
//!    subscriptions of one table go one after another, so that they share
//!    the page they read (see [`crate::window::pages`]).
//!
//! The tick never waits for deliveries, and a subscription still in flight
//! is not started again — judged by the tasks running *before* the snapshot
//! was read: a window that ends during the read moves its row after the
//! snapshot saw it, and started from that stale row it would send its whole
//! window twice (a steady benchmark caught exactly that).

mod admit;
mod clock_step;
mod lease;
pub mod quiet;
mod rewinds;
mod secrets;
mod stop;
mod tables;
mod task;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::db::DbError;
use crate::db::Snapshot;
use crate::domain::health::Health;
use crate::domain::status;
use crate::domain::subscription::{SubscriptionId, SubscriptionRow};
use crate::window::metrics::Standing;
use crate::window::{Context, Job, Stop, TickLookups};
use admit::{Gate, Notices};
use lease::Leases;
use rewinds::Rewinds;
use secrets::Secured;
use stop::SafeStop;
use tables::Tables;

/// What a run did, for `--once`'s exit status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub processed: usize,
    pub failed: usize,
}

/// A subscription admitted this tick, with what the tick knows of it.
struct Admitted {
    job: Job,
    health: Health,
    /// The rewind after a clock step that this window starts from (see
    /// [`rewinds`]), done once the window is.
    rewind: Option<NaiveDateTime>,
}

/// The server's clock at the tick, and the safe end of its windows.
#[derive(Debug, Clone)]
struct Times {
    clock: crate::domain::progress::Clock,
    stop: Arc<Stop>,
    lookups: Arc<TickLookups>,
}

/// What lives from one tick to the next.
pub struct Ticker {
    ctx: Context,
    permits: Semaphore,
    /// Subscriptions whose windows are running.
    in_flight: Mutex<HashSet<SubscriptionId>>,
    /// Subscriptions whose last window failed; they go last.
    failed_last: Mutex<HashSet<SubscriptionId>>,
    notices: Notices,
    secured: Secured,
    tables: Tables,
    safe_stop: SafeStop,
    rewinds: Rewinds,
    /// This agent's leases; `None` where one process is all there is
    /// (SQLite).
    leases: Option<Leases>,
    processed: AtomicUsize,
    failed: AtomicUsize,
}

/// Locks a mutex, recovering the data if a panicking task poisoned it (the
/// sets it guards stay meaningful either way).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ticker {
    pub fn new(ctx: Context) -> Self {
        let leases = ctx
            .db
            .has_leases()
            .then(|| Leases::new(&ctx.settings.workstation, ctx.settings.lease));
        Self {
            permits: Semaphore::new(ctx.settings.concurrency.max(1)),
            ctx,
            in_flight: Mutex::default(),
            failed_last: Mutex::default(),
            notices: Notices::default(),
            secured: Secured::default(),
            tables: Tables::default(),
            safe_stop: SafeStop::default(),
            rewinds: Rewinds::default(),
            leases,
            processed: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        }
    }

    pub fn ctx(&self) -> &Context {
        &self.ctx
    }

    pub fn summary(&self) -> Summary {
        Summary {
            processed: self.processed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// Starts the tick's work on `tracker`; returns how far into its second
    /// the server's clock was when the tick read it.
    pub async fn tick(self: &Arc<Self>, tracker: &TaskTracker) -> Result<Duration, DbError> {
        // Taken before the read: a window that ends while the snapshot is
        // being read may move its row after the snapshot saw it, and started
        // again from that stale row it would re-send the whole window. Such
        // a subscription waits for the next tick's fresh read.
        let busy = lock(&self.in_flight).clone();
        let sent = Instant::now();
        let mut snapshot = self.ctx.db.snapshot().await?;
        let mut running = busy.clone();
        running.extend(lock(&self.in_flight).iter().copied());
        let db = &self.ctx.db;
        self.rewinds
            .watch_clock(db, sent, &mut snapshot, &running)
            .await;
        self.forget_deleted(&snapshot.subscriptions);
        let ours = self.ours(&snapshot);
        self.measure(&snapshot, &ours);
        if let Some(leases) = &self.leases {
            leases.maintain(db, &snapshot, &ours).await;
        }
        let gate = Gate {
            workstation: &self.ctx.settings.workstation,
            now: snapshot.clock.local,
            busy: &busy,
            notices: &self.notices,
            default_body: self.ctx.settings.body,
        };
        let mut due: Vec<Admitted> = Vec::new();
        for row in &snapshot.subscriptions {
            let health = snapshot.health.remove(&row.id()).unwrap_or_default();
            let Some(subscription) = gate.admit(row, &health) else {
                continue;
            };
            let Some(body) = gate.body(subscription.id, snapshot.bodies.get(&subscription.id))
            else {
                continue;
            };
            let mut progress = snapshot.progress.remove(&subscription.id);
            let rewind = self.rewinds.apply(&subscription, progress.as_mut());
            let job = Job {
                subscription,
                progress,
                secrets: None,
                body,
                lease: None,
            };
            due.push(Admitted {
                job,
                health,
                rewind,
            });
        }
        if let Some(leases) = &self.leases {
            due = leases.admit(db, &snapshot, ours.len(), due).await;
        }
        if due.is_empty() {
            return Ok(snapshot.phase);
        }
        self.record_rewinds(&mut due).await;
        self.order(&mut due);
        let instant = self
            .safe_stop
            .at(
                db,
                &self.ctx.settings,
                snapshot.now_exact,
                &self.ctx.metrics,
            )
            .await?;
        // Converted once here rather than once per subscription.
        let local = Some(db.instant_to_local(instant).await?);
        let times = Times {
            clock: snapshot.clock,
            stop: Arc::new(Stop { instant, local }),
            lookups: Arc::default(),
        };
        let mut jobs = self.close_quiet(due, &times).await;
        secrets::attach(db, &mut jobs).await;
        for admitted in jobs {
            lock(&self.in_flight).insert(admitted.job.subscription.id);
            let this = Arc::clone(self);
            let times = times.clone();
            tracker.spawn(async move { this.run_task(admitted, times).await });
        }
        Ok(snapshot.phase)
    }

    /// Failed subscriptions last; subscriptions of one table one after
    /// another, so that those waiting for a turn start while others still
    /// hold the page they will share.
    fn order(&self, due: &mut [Admitted]) {
        let failed = lock(&self.failed_last);
        let failed = |a: &Admitted| failed.contains(&a.job.subscription.id);
        let table = |a: &Admitted| -> String { a.job.subscription.target.name.clone() };
        due.sort_by_cached_key(|a| (failed(a), table(a)));
    }

    /// Stores the progress records that a pending rewind moved back.
    async fn record_rewinds(&self, due: &mut [Admitted]) {
        for admitted in due.iter_mut() {
            let (Some(to), Some(progress)) = (admitted.rewind, &admitted.job.progress) else {
                continue;
            };
            let id = admitted.job.subscription.id;
            let fence = admitted.job.fence();
            if self
                .rewinds
                .record(&self.ctx.db, id, progress, to, fence)
                .await
            {
                admitted.rewind = None;
            }
        }
    }

    fn forget_deleted(&self, rows: &[SubscriptionRow]) {
        let present: HashSet<SubscriptionId> = rows.iter().map(SubscriptionRow::id).collect();
        self.rewinds.retain(&present);
        self.notices.retain(&present);
        lock(&self.failed_last).retain(|id| present.contains(id));
        self.secured.retain(&present);
        self.ctx.metrics.retain(&present);
    }

    /// Sets where each of this agent's subscriptions stands, from the rows
    /// just read: no extra statement, and the same figures as `status`.
    fn measure(&self, snapshot: &Snapshot, ours: &HashSet<SubscriptionId>) {
        let now = snapshot.clock.local;
        for row in &snapshot.subscriptions {
            if !ours.contains(&row.id()) {
                continue;
            }
            let health = snapshot.health.get(&row.id());
            let standing = Standing {
                consecutive_failures: health.map_or(0, |h| h.consecutive_failures),
                backing_off: health
                    .is_some_and(|h| h.deactivated_at.is_none() && !h.may_attempt(now)),
                deactivated: health.is_some_and(|h| h.deactivated_at.is_some()),
                lag_seconds: status::lag(row, now)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            };
            let metrics = self.ctx.metrics.subscription(row.id(), &row.watch_table);
            metrics.standing(standing);
        }
    }

    /// The subscriptions of this workstation (blank, or naming it).
    fn ours(&self, snapshot: &Snapshot) -> HashSet<SubscriptionId> {
        let workstation = &self.ctx.settings.workstation;
        snapshot
            .subscriptions
            .iter()
            .filter(|row| row.is_for(workstation))
            .map(SubscriptionRow::id)
            .collect()
    }

    /// Whether the last tick took over a lease whose window waits for the
    /// next tick (`run --once` then ticks once more).
    pub fn took_over(&self) -> bool {
        self.leases.as_ref().is_some_and(Leases::took_over)
    }

    /// Lets every lease go, so another agent takes over at once; called
    /// after the windows in flight have ended.
    pub async fn release_leases(&self) {
        if let Some(leases) = &self.leases {
            leases.release_all(&self.ctx.db).await;
        }
    }

    /// This agent's name in `rowhook_lease`, where leases are kept.
    fn agent(&self) -> Option<&crate::domain::lease::AgentId> {
        self.leases.as_ref().map(Leases::agent)
    }
}
