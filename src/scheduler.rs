//! The tick loop: where subscriptions are loaded and handed out.
//!
//! Every tick (about once a second) reads `apisubscription` afresh — so rows
//! that were inserted, edited or deleted take effect on the next tick —
//! together with the server's clock, rowhook's progress and each
//! subscription's health, in one statement. Each row is parsed; a row that
//! cannot be processed is logged once (again only if its problem changes)
//! and skipped. Each due subscription runs as its own task, bounded by a
//! semaphore, so a slow endpoint never delays another subscription; a
//! subscription still in flight, backing off, or deactivated is not
//! started. Subscriptions whose last attempt failed go after the others.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Timelike};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::clock_watch::ClockWatch;
use crate::db::{
    Clock, Database, DbError, OpenWrites, Progress, Snapshot, StoredSecrets, WatchedTable,
};
use crate::health::Health;
use crate::processor::{self, Context, Outcome, Stop};
use crate::quiet::{self, Candidate};
use crate::subscription::{Parsed, Subscription, SubscriptionId, SubscriptionRow};

/// How long a resolved table (its column list) is trusted before the schema
/// is read again, so a column added by an Open Dental upgrade is picked up.
const TABLE_CACHE_TTL: Duration = Duration::from_secs(60);

/// How long shutdown waits for in-flight windows to notice cancellation.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// What a run did, for `--once`'s exit status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub processed: usize,
    pub failed: usize,
}

/// Runs ticks until `ctx.shutdown` is cancelled (or, with `once`, after one
/// tick's work is finished), then waits for the delivery log to be written.
pub async fn run(ctx: Context, once: bool) -> Summary {
    let scheduler = Arc::new(Scheduler::new(ctx));
    let tracker = TaskTracker::new();
    let mut outage = crate::outage::Outage::default();
    loop {
        let started = Instant::now();
        let phase = match scheduler.tick(&tracker).await {
            Ok(phase) => {
                outage.answered();
                Some(phase)
            }
            Err(error) => {
                outage.failed(&scheduler.ctx.db, &error);
                None
            }
        };
        crate::supervise::watchdog();
        if once {
            break;
        }
        let settings = &scheduler.ctx.settings;
        let rest = until_next_tick(settings.tick, settings.safety_lag, started.elapsed(), phase);
        if scheduler
            .ctx
            .shutdown
            .run_until_cancelled(tokio::time::sleep(rest))
            .await
            .is_none()
        {
            break;
        }
    }
    tracker.close();
    let limit = if once { Duration::MAX } else { DRAIN_LIMIT };
    if tokio::time::timeout(limit, tracker.wait()).await.is_err() {
        tracing::warn!("In-flight windows did not stop in time; their watermarks were not moved.");
    }
    scheduler.ctx.journal.flush().await;
    scheduler.summary()
}

/// How long after a tick's windows may end at a new second the tick
/// starts: enough that a tick woken a little early or delayed on its way to
/// the server still reads the new second.
const TICK_OFFSET: Duration = Duration::from_millis(25);

/// How long to wait before the next tick, `elapsed` after this one started,
/// its snapshot having read the server's clock `phase` into a second.
///
/// A window ends at a whole second of the server's clock, at least the
/// safety lag behind it, so a row committed during second S can be sent
/// from the first tick after S + 1 + the safety lag. Started at a random
/// point in the second, a tick finds that moment on average half a second
/// late; started just after it, at once. Ticks of a whole number of seconds
/// are therefore timed from the server's second, starting the safety lag's
/// fraction of a second (plus [`TICK_OFFSET`]) after it turns; other ticks
/// (and a tick whose snapshot failed) simply follow one another.
fn until_next_tick(
    tick: Duration,
    safety_lag: Duration,
    elapsed: Duration,
    phase: Option<Duration>,
) -> Duration {
    let second = Duration::from_secs(1).as_nanos();
    let into_second = (u128::from(safety_lag.subsec_nanos()) + TICK_OFFSET.as_nanos()) % second;
    let into_second = Duration::from_nanos(u64::try_from(into_second).unwrap_or_default());
    match phase {
        Some(phase) if tick.subsec_nanos() == 0 && !tick.is_zero() => (tick + into_second)
            .saturating_sub(phase)
            .saturating_sub(elapsed),
        _ => tick.saturating_sub(elapsed),
    }
}

/// How long an open transaction may hold windows back before an operator
/// is told (once per transaction).
const HOLD_NOTICE: chrono::Duration = chrono::Duration::seconds(60);

/// Whether the transaction open since `started` has now held windows back
/// long enough to say so, and has not been named yet.
fn long_hold(now: NaiveDateTime, started: NaiveDateTime, named: Option<NaiveDateTime>) -> bool {
    now - started >= HOLD_NOTICE && named != Some(started)
}

/// The server's clock at the tick, and the safe end of its windows.
#[derive(Debug, Clone)]
struct Times {
    clock: Clock,
    stop: Arc<Stop>,
}

/// What a task needs besides the subscription.
struct Job {
    subscription: Subscription,
    progress: Option<Progress>,
    health: Health,
    /// Read for the tick when the job goes to the processor.
    secrets: Option<StoredSecrets>,
    /// The rewind after a clock step that this job's window starts from
    /// (see [`ClockWatch`]), done once the window is.
    rewind: Option<NaiveDateTime>,
}

struct Scheduler {
    ctx: Context,
    permits: Semaphore,
    in_flight: Mutex<HashSet<SubscriptionId>>,
    failed_last: Mutex<HashSet<SubscriptionId>>,
    notices: Mutex<HashMap<SubscriptionId, String>>,
    secured: Mutex<HashSet<SubscriptionId>>,
    tables: Mutex<HashMap<String, (Arc<WatchedTable>, Instant)>>,
    processed: AtomicUsize,
    failed: AtomicUsize,
    trx_warned: AtomicBool,
    stale_warned: AtomicBool,
    /// The last stop known safe, for a tick that cannot tell (see
    /// [`OpenWrites::Stale`]).
    last_safe_stop: Mutex<Option<NaiveDateTime>>,
    /// The start of the last transaction named for holding windows back.
    hold_named: Mutex<Option<NaiveDateTime>>,
    /// The server's clock against ours, to notice a step back.
    clock_watch: Mutex<ClockWatch>,
    /// Where a subscription's next window must start at the latest, after
    /// the server's clock stepped back, for those whose record the step's
    /// `UPDATE` could not settle (a window in flight, or a failed update).
    rewinds: Mutex<HashMap<SubscriptionId, NaiveDateTime>>,
}

/// Moves a progress record back to `to` after a clock step, as
/// [`Database::rewind_progress`] does in SQL: a position past it moves to it,
/// and a partly delivered window acknowledged past it is dropped.
fn rewind_record(progress: &mut Progress, to: NaiveDateTime) {
    let past = progress
        .window
        .is_some_and(|(_, cursor)| cursor.stamp >= to);
    if progress.watermark > to || past {
        progress.watermark = progress.watermark.min(to);
        progress.window = None;
    }
}

/// Locks a mutex, recovering the data if a panicking task poisoned it (the
/// sets it guards stay meaningful either way).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Scheduler {
    fn new(ctx: Context) -> Self {
        Self {
            permits: Semaphore::new(ctx.settings.concurrency.max(1)),
            ctx,
            in_flight: Mutex::default(),
            failed_last: Mutex::default(),
            notices: Mutex::default(),
            secured: Mutex::default(),
            tables: Mutex::default(),
            processed: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            trx_warned: AtomicBool::new(false),
            stale_warned: AtomicBool::new(false),
            last_safe_stop: Mutex::new(None),
            hold_named: Mutex::default(),
            clock_watch: Mutex::default(),
            rewinds: Mutex::default(),
        }
    }

    fn summary(&self) -> Summary {
        Summary {
            processed: self.processed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// Starts the tick's work; returns how far into its second the
    /// server's clock was when the tick read it.
    async fn tick(self: &Arc<Self>, tracker: &TaskTracker) -> Result<Duration, DbError> {
        // Taken before the read: a window that ends while the snapshot is
        // being read may move its row after the snapshot saw it, and started
        // again from that stale row it would re-send the whole window. Such
        // a subscription waits for the next tick's fresh read.
        let busy = lock(&self.in_flight).clone();
        let sent = Instant::now();
        let mut snapshot = self.ctx.db.snapshot().await?;
        self.watch_clock(sent, &mut snapshot, &busy).await;
        self.forget_deleted(&snapshot.subscriptions);
        let now = snapshot.clock.local;
        let mut due: Vec<Job> = Vec::new();
        for row in &snapshot.subscriptions {
            let health = snapshot.health.remove(&row.id()).unwrap_or_default();
            if let Some(subscription) = self.admit(row, &health, now, &busy) {
                let mut progress = snapshot.progress.remove(&subscription.id);
                let rewind = self.rewind(&subscription, progress.as_mut());
                due.push(Job {
                    subscription,
                    progress,
                    health,
                    secrets: None,
                    rewind,
                });
            }
        }
        if due.is_empty() {
            return Ok(snapshot.phase);
        }
        self.record_rewinds(&mut due).await;
        {
            // Subscriptions of one table go one after another, so that those
            // waiting for a turn start while others still hold the page they
            // will share (see `crate::pages`).
            let failed = lock(&self.failed_last);
            due.sort_by(|a, b| {
                let key = |job: &Job| failed.contains(&job.subscription.id);
                key(a)
                    .cmp(&key(b))
                    .then_with(|| a.subscription.target.name.cmp(&b.subscription.target.name))
            });
        }
        let instant = self.safe_stop(snapshot.now_exact).await?;
        // Converted once here rather than once per subscription.
        let local = Some(self.ctx.db.instant_to_local(instant).await?);
        let stop = Arc::new(Stop { instant, local });
        let times = Times {
            clock: snapshot.clock,
            stop,
        };
        let mut jobs = self.close_quiet(due, &times).await;
        self.attach_secrets(&mut jobs).await;
        for job in jobs {
            lock(&self.in_flight).insert(job.subscription.id);
            let this = Arc::clone(self);
            let times = times.clone();
            tracker.spawn(async move { this.process(job, times).await });
        }
        Ok(snapshot.phase)
    }

    /// Closes the due windows that are plainly empty (see [`crate::quiet`])
    /// and returns the jobs left for the processor. On a database error
    /// every job goes to the processor, which reports errors per
    /// subscription.
    async fn close_quiet(&self, due: Vec<Job>, times: &Times) -> Vec<Job> {
        let Some(stop_local) = times.stop.local.as_deref() else {
            return due;
        };
        self.refresh_tables(&due).await;
        let (picked, candidates): (Vec<usize>, Vec<Candidate>) = due
            .iter()
            .enumerate()
            .filter_map(|(i, job)| Some((i, self.quiet_candidate(job, times, stop_local)?)))
            .unzip();
        if candidates.is_empty() {
            return due;
        }
        let started = Instant::now();
        let db = &self.ctx.db;
        let closed = match quiet::close_empty(db, times.stop.instant, stop_local, &candidates).await
        {
            Ok(closed) => closed,
            Err(error) => {
                tracing::warn!(%error, "Cannot close empty windows together; reading each instead.");
                return due;
            }
        };
        let done: HashSet<usize> = picked
            .iter()
            .zip(&closed.empty)
            .filter_map(|(&i, &empty)| empty.then_some(i))
            .collect();
        let windows = done.len();
        tracing::debug!(
            windows,
            moved = closed.moved,
            rows = 0,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "Closed empty windows."
        );
        if closed.moved < windows as u64 {
            tracing::info!(
                changed = windows as u64 - closed.moved,
                "DateTimeStart was changed by someone else during the tick; leaving it as they set it."
            );
        }
        let mut rest = Vec::with_capacity(due.len() - windows);
        for (i, job) in due.into_iter().enumerate() {
            if done.contains(&i) {
                self.processed.fetch_add(1, Ordering::Relaxed);
                lock(&self.notices).remove(&job.subscription.id);
                self.rewound(&job);
            } else {
                rest.push(job);
            }
        }
        rest
    }

    /// Reads the schema again for watched tables whose cached entry has
    /// expired, once per table, so that a quiet subscription is not sent
    /// through the processor just to refresh it. A table that no longer
    /// resolves is dropped from the cache; the processor then reports why.
    async fn refresh_tables(&self, due: &[Job]) {
        let mut stale: HashMap<&str, &Subscription> = HashMap::new();
        {
            let tables = lock(&self.tables);
            for job in due {
                let name = job.subscription.target.name.as_str();
                if tables
                    .get(name)
                    .is_some_and(|(_, at)| at.elapsed() >= TABLE_CACHE_TTL)
                {
                    stale.entry(name).or_insert(&job.subscription);
                }
            }
        }
        for subscription in stale.into_values() {
            if self.table(subscription).await.is_err() {
                lock(&self.tables).remove(&subscription.target.name);
            }
        }
    }

    /// Reads the secrets of every job's subscription in one statement. On an
    /// error each window reads its own, and reports the error there.
    async fn attach_secrets(&self, jobs: &mut [Job]) {
        let ids: Vec<SubscriptionId> = jobs.iter().map(|job| job.subscription.id).collect();
        if ids.is_empty() {
            return;
        }
        let Ok(mut found) = self.ctx.db.secrets_of(&ids).await else {
            return;
        };
        for job in jobs {
            job.secrets = found.remove(&job.subscription.id);
        }
    }

    /// A job whose window can be judged by its table's newest stamp alone:
    /// a healthy subscription, at rest at the position rowhook recorded,
    /// watching an indexed table this process has resolved, with a plain
    /// window ahead.
    fn quiet_candidate<'j>(
        &self,
        job: &'j Job,
        times: &Times,
        stop_local: &str,
    ) -> Option<Candidate<'j>> {
        let s = &job.subscription;
        let progress = job.progress.as_ref()?;
        let at_rest = progress.window.is_none() && progress.date_time_start == s.start_raw;
        let plain = at_rest
            && job.health.consecutive_failures == 0
            && s.start_raw != stop_local
            && lock(&self.secured).contains(&s.id);
        if !plain {
            return None;
        }
        // Not checked for age: `refresh_tables` has just renewed what expired,
        // and an entry a moment past its age is still good for this probe.
        let table = match lock(&self.tables).get(&s.target.name) {
            Some((table, _)) if table.change_column_indexed => Arc::clone(table),
            _ => return None,
        };
        let settings = &self.ctx.settings;
        let window = processor::plain_window(
            settings,
            s,
            progress.watermark,
            times.clock,
            times.stop.instant,
        )?;
        Some(Candidate {
            id: s.id,
            start_raw: &s.start_raw,
            start: window.start,
            table,
        })
    }

    /// The end of this tick's windows, as an instant: the whole second at or
    /// before `now` less the safety lag, and no later than the earliest
    /// stamp a write still open may make visible (an open transaction's
    /// rows carry stamps older than its commit; a statement waiting for a
    /// lock has read the clock already). When the server will not show
    /// them, a longer lag stands in.
    async fn safe_stop(&self, now: NaiveDateTime) -> Result<NaiveDateTime, DbError> {
        let lag = |d: Duration| {
            let t = now - chrono::Duration::from_std(d).unwrap_or_default();
            t.with_nanosecond(0).unwrap_or(t)
        };
        let settings = &self.ctx.settings;
        let stop = lag(settings.safety_lag);
        let safe = match self.ctx.db.open_writes().await? {
            OpenWrites::None => stop,
            OpenWrites::Since(earliest) => {
                self.notice_hold(now, earliest);
                stop.min(earliest)
            }
            // Nothing is known about transactions begun since the list was
            // made; an earlier tick's stop is still safe, as nothing it
            // waited for can have moved before it.
            OpenWrites::Stale => {
                if !self.stale_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "MariaDB did not refresh information_schema.INNODB_TRX for this tick \
                         (another client reads it more often than every 100 ms); windows wait \
                         where they last were safe until it does."
                    );
                }
                let last = *lock(&self.last_safe_stop);
                return Ok(last.unwrap_or_else(|| lag(settings.fallback_lag)).min(stop));
            }
            OpenWrites::Unknown => {
                if !self.trx_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        fallback_lag = %humantime::format_duration(settings.fallback_lag),
                        "Cannot see open transactions (grant PROCESS to rowhook's database \
                         user); windows end --fallback-lag behind the clock instead."
                    );
                }
                stop.min(lag(settings.fallback_lag))
            }
        };
        *lock(&self.last_safe_stop) = Some(safe);
        Ok(safe)
    }

    /// Says once when one transaction or statement has held every window
    /// back for long: nothing is lost, but deliveries wait for it to end.
    fn notice_hold(&self, now: NaiveDateTime, started: NaiveDateTime) {
        let mut named = lock(&self.hold_named);
        if long_hold(now, started, *named) {
            *named = Some(started);
            let held = Duration::from_secs((now - started).num_seconds().unsigned_abs());
            tracing::warn!(
                since = %started, held = %humantime::format_duration(held),
                "An open transaction or a write statement still running has held deliveries \
                 back since this time (UTC); changes after it are sent once it ends. Find it in \
                 information_schema.INNODB_TRX or PROCESSLIST."
            );
        }
    }

    /// Parses a row and decides whether it runs now. Says once why not,
    /// when the reason is worth an operator's attention.
    fn admit(
        &self,
        row: &SubscriptionRow,
        health: &Health,
        now: NaiveDateTime,
        busy: &HashSet<SubscriptionId>,
    ) -> Option<Subscription> {
        let id = row.id();
        let subscription = match row.parse() {
            Ok(Parsed::Database(s)) => *s,
            Ok(Parsed::UiEvent { ui_event_type }) => {
                self.notice(id, format!(
                    "ignored: WatchTable is blank, so this is a UI-event subscription ({ui_event_type:?}), which only the Open Dental client fires"
                ));
                return None;
            }
            Err(error) => {
                self.problem(id, format!("skipped: {error}"));
                return None;
            }
        };
        if !subscription
            .workstation
            .matches(&self.ctx.settings.workstation)
        {
            tracing::debug!(subscription = %id, "Not for this workstation.");
            return None;
        }
        if subscription.is_expired(now) {
            self.notice(id, "expired: DateTimeStop is in the past".to_owned());
            return None;
        }
        if health.deactivated_at.is_some() {
            self.notice(id, format!(
                "deactivated after {} consecutive failures; reactivate with `rowhook subscriptions reactivate {id}`",
                health.consecutive_failures
            ));
            return None;
        }
        let busy = busy.contains(&id);
        (subscription.is_due(now) && health.may_attempt(now) && !busy).then_some(subscription)
    }

    async fn process(&self, job: Job, times: Times) {
        let id = job.subscription.id;
        if let Ok(_permit) = self.permits.acquire().await {
            self.process_permitted(&job, times).await;
        }
        lock(&self.in_flight).remove(&id);
    }

    async fn process_permitted(&self, job: &Job, times: Times) {
        let subscription = &job.subscription;
        let id = subscription.id;
        let table = match self.table(subscription).await {
            Ok(table) => table,
            Err(error) => {
                self.problem(
                    id,
                    format!(
                        "skipped: WatchTable {:?}: {error}",
                        subscription.target.name
                    ),
                );
                return;
            }
        };
        if let Err(error) = self.secure(id).await {
            self.problem(id, format!("skipped: {error}"));
            return;
        }
        lock(&self.notices).remove(&id);
        self.processed.fetch_add(1, Ordering::Relaxed);
        let progress = job.progress.as_ref();
        match processor::process(
            &self.ctx,
            subscription,
            &table,
            times.clock,
            &times.stop,
            progress,
            job.secrets.clone(),
        )
        .await
        {
            Ok(outcome) => self.record(job, &table, outcome, times.clock.local).await,
            Err(error) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                lock(&self.tables).remove(&subscription.target.name);
                if error.is_missing_grant() {
                    tracing::error!(subscription = %id, table = %table.watch_name, %error,
                        "rowhook's database user lacks a privilege; DateTimeStart unchanged. \
                         The README's \"Least privilege\" section lists the grants it needs.");
                } else {
                    tracing::error!(subscription = %id, table = %table.watch_name, %error,
                        "Database error while processing; DateTimeStart unchanged.");
                }
            }
        }
    }

    /// Updates the subscription's health after a window, and says what an
    /// operator needs to know: one WARN per failure, one ERROR on
    /// deactivation.
    async fn record(&self, job: &Job, table: &WatchedTable, outcome: Outcome, now: NaiveDateTime) {
        let id = job.subscription.id;
        let before = &job.health;
        let after = match &outcome {
            Outcome::Failed { failure, batch, .. } => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                lock(&self.failed_last).insert(id);
                let after = before.failed(id, now, &failure.to_string(), &self.ctx.settings.retry);
                match after.next_retry_at {
                    Some(next_retry) => tracing::warn!(
                        subscription = %id, table = %table.watch_name, rows = batch.rows,
                        status = %failure, class = failure.class(), batch = %batch.id,
                        first_key = batch.first_key, failures = after.consecutive_failures,
                        next_retry = %next_retry, "Batch not delivered; will retry."
                    ),
                    None => tracing::error!(
                        subscription = %id, table = %table.watch_name, failures = after.consecutive_failures,
                        last_failure = %failure,
                        "Subscription deactivated after too many consecutive failures; it keeps its \
                         DateTimeStart. Reactivate with `rowhook subscriptions reactivate {id}`."
                    ),
                }
                Some(after)
            }
            Outcome::Delivered { rows, .. } | Outcome::Superseded { rows, .. } => {
                lock(&self.failed_last).remove(&id);
                self.rewound(job);
                // Idle windows of a healthy subscription write nothing.
                if *rows > 0 || before.consecutive_failures > 0 {
                    before.after_success(now)
                } else {
                    None
                }
            }
            Outcome::Waiting | Outcome::Abandoned => None,
        };
        if let Some(after) = after {
            if let Err(error) = self.ctx.db.save_health(id, &after).await {
                tracing::warn!(subscription = %id, %error, "Cannot record the subscription's health.");
            }
        }
    }

    /// Gives a subscription its signing secret the first time this process
    /// sees it, so the integrator can fetch it (`rowhook secret show`)
    /// before the first event, and checks that a stored one is usable.
    async fn secure(&self, id: SubscriptionId) -> Result<(), DbError> {
        if lock(&self.secured).contains(&id) {
            return Ok(());
        }
        self.ctx.db.secrets(id).await?;
        lock(&self.secured).insert(id);
        Ok(())
    }

    /// The subscription's table, from the cache or the schema.
    async fn table(&self, subscription: &Subscription) -> Result<Arc<WatchedTable>, DbError> {
        let key = &subscription.target.name;
        if let Some((table, at)) = lock(&self.tables).get(key) {
            if at.elapsed() < TABLE_CACHE_TTL {
                return Ok(Arc::clone(table));
            }
        }
        let table = Arc::new(self.ctx.db.resolve(&subscription.target).await?);
        lock(&self.tables).insert(key.clone(), (Arc::clone(&table), Instant::now()));
        Ok(table)
    }

    /// Logs a problem with a row once, and again only when it changes.
    fn problem(&self, id: SubscriptionId, reason: String) {
        if self.first_time(id, &reason) {
            tracing::error!(subscription = %id, %reason, "Subscription cannot be processed.");
        }
    }

    fn notice(&self, id: SubscriptionId, reason: String) {
        if self.first_time(id, &reason) {
            tracing::info!(subscription = %id, %reason, "Subscription not processed.");
        }
    }

    fn first_time(&self, id: SubscriptionId, reason: &str) -> bool {
        let mut notices = lock(&self.notices);
        if notices.get(&id).is_some_and(|r| r == reason) {
            return false;
        }
        notices.insert(id, reason.to_owned());
        true
    }

    /// Compares the server's clock, read in a query sent at `sent`, with
    /// ours. After a step back, one statement moves every progress record
    /// back before it (so the rewind outlives a restart, and holds for a
    /// subscription not due for an hour), and the snapshot's copies with
    /// them. A window in flight (`busy`, or started since) writes its own
    /// record when it ends, so its rewind is also kept here until its next
    /// window starts ([`Self::rewind`]); so is every one, if the statement
    /// failed.
    async fn watch_clock(
        &self,
        sent: Instant,
        snapshot: &mut Snapshot,
        busy: &HashSet<SubscriptionId>,
    ) {
        // SQLite's clock is read to the second: too coarse to compare, and
        // it is this machine's own (the demo's).
        if !matches!(self.ctx.db, Database::MySql { .. }) {
            return;
        }
        let received = Instant::now();
        let step = lock(&self.clock_watch).observe(sent, received, snapshot.now_exact);
        let Some(step) = step else { return };
        let to = step.rewind_to;
        let moved = self.ctx.db.rewind_progress(to).await;
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
                rewind_record(progress, to);
            }
        }
        let in_flight = lock(&self.in_flight).clone();
        let mut rewinds = lock(&self.rewinds);
        for row in &snapshot.subscriptions {
            let id = row.id();
            if moved.is_err() || busy.contains(&id) || in_flight.contains(&id) {
                let pending = rewinds.entry(id).or_insert(to);
                *pending = (*pending).min(to);
            }
        }
    }

    /// Applies a pending rewind to a job's progress record, so that its
    /// window (or the empty-window check) starts no later than the rewind
    /// ([`rewind_record`]). Without a record that matches `DateTimeStart`
    /// (a new subscription, or an operator's edit) the window starts at
    /// `DateTimeStart` as it is set, and the rewind is dropped.
    fn rewind(&self, s: &Subscription, progress: Option<&mut Progress>) -> Option<NaiveDateTime> {
        let to = *lock(&self.rewinds).get(&s.id)?;
        let Some(progress) = progress.filter(|p| p.date_time_start == s.start_raw) else {
            lock(&self.rewinds).remove(&s.id);
            return None;
        };
        rewind_record(progress, to);
        Some(to)
    }

    /// Stores the progress records that [`Self::rewind`] moved back, so that
    /// the rewind outlives a failed window and a restart; it is then done.
    /// One that cannot be stored stays pending until its window is done.
    async fn record_rewinds(&self, due: &mut [Job]) {
        for job in due.iter_mut().filter(|job| job.rewind.is_some()) {
            let (id, Some(progress)) = (job.subscription.id, &job.progress) else {
                continue;
            };
            match self.ctx.db.save_progress(id, progress).await {
                Ok(()) => {
                    self.rewound(job);
                    job.rewind = None;
                }
                Err(error) => tracing::warn!(subscription = %id, %error,
                    "Cannot record the rewind after the clock step; it is kept until the window is done."),
            }
        }
    }

    /// A job's window ended delivered (or yielded to an operator): the
    /// rewind it applied is done, unless a later step set another.
    fn rewound(&self, job: &Job) {
        let Some(to) = job.rewind else { return };
        let mut rewinds = lock(&self.rewinds);
        if rewinds.get(&job.subscription.id) == Some(&to) {
            rewinds.remove(&job.subscription.id);
        }
    }

    fn forget_deleted(&self, rows: &[SubscriptionRow]) {
        let present: HashSet<SubscriptionId> = rows.iter().map(SubscriptionRow::id).collect();
        lock(&self.rewinds).retain(|id, _| present.contains(id));
        lock(&self.notices).retain(|id, _| present.contains(id));
        lock(&self.failed_last).retain(|id| present.contains(id));
        lock(&self.secured).retain(|id| present.contains(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_next_tick_starts_just_after_the_servers_second_turns() {
        // Read 700 ms into a second, 40 ms of work: the next second turns
        // 300 ms after the read, 260 ms from now; the tick starts 25 ms later.
        assert_eq!(
            until_next_tick(SECOND, SECOND, ms(40), Some(ms(700))),
            ms(285)
        );
        // Already aligned: a second apart.
        assert_eq!(
            until_next_tick(SECOND, SECOND, ms(10), Some(ms(25))),
            ms(990)
        );
        // Longer ticks keep the same offset into the second.
        let five = Duration::from_secs(5);
        assert_eq!(
            until_next_tick(five, SECOND, ms(0), Some(ms(500))),
            ms(4525)
        );
        // A safety lag of 150 ms: windows may end at a new second from 150
        // ms after it turns, so ticks start at 175 ms.
        assert_eq!(
            until_next_tick(SECOND, ms(150), ms(40), Some(ms(700))),
            ms(435)
        );
        assert_eq!(
            until_next_tick(SECOND, ms(150), ms(10), Some(ms(175))),
            ms(990)
        );
    }

    #[test]
    fn a_transaction_holding_windows_back_for_a_minute_is_named_once() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, crate::DATETIME_FORMAT).unwrap();
        let started = at("2026-01-05 09:00:00");
        assert!(!long_hold(at("2026-01-05 09:00:59"), started, None));
        assert!(long_hold(at("2026-01-05 09:01:00"), started, None));
        assert!(!long_hold(
            at("2026-01-05 09:05:00"),
            started,
            Some(started)
        ));
        // Another transaction, held as long, is named too.
        let next = at("2026-01-05 09:02:00");
        assert!(long_hold(at("2026-01-05 09:03:30"), next, Some(started)));
    }

    #[test]
    fn a_late_tick_starts_the_next_at_once_and_other_ticks_just_follow() {
        assert_eq!(
            until_next_tick(SECOND, SECOND, ms(1500), Some(ms(100))),
            ms(0)
        );
        // Not whole seconds, or no reading of the clock: plain spacing.
        assert_eq!(
            until_next_tick(ms(200), ms(150), ms(50), Some(ms(700))),
            ms(150)
        );
        assert_eq!(until_next_tick(SECOND, SECOND, ms(50), None), ms(950));
        assert_eq!(
            until_next_tick(Duration::ZERO, SECOND, ms(50), Some(ms(1))),
            ms(0)
        );
    }
}
