//! What the daemon counts as it works, for `/metrics` and `/readyz`
//! (served by `crate::http`, edge layer): one shared handle in the
//! [`Context`](super::Context), updated by the window, the tick and the
//! daemon's loop.
//!
//! Per subscription the labels are its number and table, never its URL or
//! key, so a page of metrics holds no secret and the series are as many as
//! the subscriptions. Each subscription's metric handles are made once and
//! kept in a map by number: after that an update is an atomic add, with no
//! allocation, per batch or per tick. Values that describe where a
//! subscription stands (lag, consecutive failures, backing off,
//! deactivated) are set from the tick's snapshot, the same rows `rowhook
//! status` reads.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::domain::attempt::FailureClass;
use crate::domain::subscription::SubscriptionId;

/// How many ticks may pass without one reading the database before the
/// daemon is no longer ready.
pub const READY_TICKS: u32 = 5;

/// A subscription's labels: its number and table only.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubLabels {
    pub subscription: i64,
    pub table: String,
}

/// A failed attempt's labels: the subscription's and the failure's class.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub subscription: i64,
    pub table: String,
    pub class: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request durations: few buckets, as there is a histogram per
/// subscription (a timeout, 30 s by default, falls in the last).
fn request_histogram() -> Histogram {
    Histogram::new([0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0])
}

/// Every metric family, registered once.
struct Families {
    rows: Family<SubLabels, Counter>,
    batches: Family<SubLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    consecutive_failures: Family<SubLabels, Gauge>,
    backing_off: Family<SubLabels, Gauge>,
    deactivated: Family<SubLabels, Gauge>,
    lag: Family<SubLabels, Gauge>,
    request_seconds: HistogramFamily<SubLabels>,
}

/// One subscription's handles, cloned out of the families once.
#[derive(Debug)]
pub struct SubMetrics {
    table: String,
    rows: Counter,
    batches: Counter,
    /// Made at the first failure of each class: most subscriptions never
    /// fail most ways, and eight series each would be most of a scrape.
    failures: [OnceLock<Counter>; FailureClass::ALL.len()],
    failure_family: Family<FailureLabels, Counter>,
    subscription: i64,
    consecutive_failures: Gauge,
    backing_off: Gauge,
    deactivated: Gauge,
    lag: Gauge,
    request_seconds: Histogram,
}

impl SubMetrics {
    /// A batch the receiver answered with 200.
    pub fn delivered(&self, rows: usize, took: Duration) {
        self.rows.inc_by(u64::try_from(rows).unwrap_or(u64::MAX));
        self.batches.inc();
        self.request_seconds.observe(took.as_secs_f64());
    }

    /// An attempt that did not count, and why.
    pub fn failed(&self, class: FailureClass, took: Duration) {
        let at = FailureClass::ALL.iter().position(|c| *c == class);
        if let Some(slot) = at.and_then(|n| self.failures.get(n)) {
            let counter = slot.get_or_init(|| {
                let labels = FailureLabels {
                    subscription: self.subscription,
                    table: self.table.clone(),
                    class: class.as_str(),
                };
                self.failure_family.get_or_create(&labels).clone()
            });
            counter.inc();
        }
        self.request_seconds.observe(took.as_secs_f64());
    }

    /// Where the subscription stands, as the tick read it.
    pub fn standing(&self, s: Standing) {
        self.consecutive_failures
            .set(i64::from(s.consecutive_failures));
        self.backing_off.set(i64::from(s.backing_off));
        self.deactivated.set(i64::from(s.deactivated));
        self.lag.set(s.lag_seconds);
    }
}

/// What the tick knows of a subscription's state.
#[derive(Debug, Clone, Copy, Default)]
pub struct Standing {
    pub consecutive_failures: u32,
    pub backing_off: bool,
    pub deactivated: bool,
    /// The server's clock less `DateTimeStart`.
    pub lag_seconds: i64,
}

/// The shared handle: the registry, each subscription's handles, and the
/// process's own figures.
pub struct Metrics {
    registry: Registry,
    families: Families,
    subs: Mutex<HashMap<SubscriptionId, Arc<SubMetrics>>>,
    ticks: Counter,
    tick_seconds: Histogram,
    database_errors: Counter,
    held_back: Counter,
    started: Instant,
    /// Milliseconds after `started` of the last tick that read the
    /// database, plus one (0: none yet).
    last_read_ms: AtomicU64,
    last_error: Mutex<String>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let families = Families {
            rows: Family::default(),
            batches: Family::default(),
            failures: Family::default(),
            consecutive_failures: Family::default(),
            backing_off: Family::default(),
            deactivated: Family::default(),
            lag: Family::default(),
            request_seconds: Family::new_with_constructor(request_histogram),
        };
        let mut metrics = Self {
            registry: Registry::with_prefix("rowhook"),
            families,
            subs: Mutex::default(),
            ticks: Counter::default(),
            tick_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            database_errors: Counter::default(),
            held_back: Counter::default(),
            started: Instant::now(),
            last_read_ms: AtomicU64::new(0),
            last_error: Mutex::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let (r, f) = (&mut self.registry, &self.families);
        r.register(
            "rows_delivered",
            "Rows in batches answered with 200",
            f.rows.clone(),
        );
        r.register(
            "batches_delivered",
            "Batches answered with 200",
            f.batches.clone(),
        );
        r.register(
            "failed_attempts",
            "POST attempts that did not count, by class",
            f.failures.clone(),
        );
        r.register(
            "consecutive_failures",
            "Failed attempts since the last success",
            f.consecutive_failures.clone(),
        );
        r.register(
            "backing_off",
            "1 while waiting out a retry delay",
            f.backing_off.clone(),
        );
        r.register(
            "deactivated",
            "1 when deactivated after too many failures",
            f.deactivated.clone(),
        );
        r.register(
            "lag_seconds",
            "The server's clock less DateTimeStart",
            f.lag.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from POST to the receiver's answer",
            f.request_seconds.clone(),
        );
        r.register(
            "ticks",
            "Ticks that read apisubscription",
            self.ticks.clone(),
        );
        r.register(
            "tick_duration_seconds",
            "Time a tick took to hand out its windows",
            self.tick_seconds.clone(),
        );
        r.register(
            "database_errors",
            "Ticks and windows ended by a database error",
            self.database_errors.clone(),
        );
        r.register(
            "windows_held_back",
            "Ticks whose windows an open transaction held back",
            self.held_back.clone(),
        );
    }

    /// The subscription's handles as the tick made them (labelled with its
    /// row's `WatchTable`), or made now with `table`.
    pub fn of(&self, id: SubscriptionId, table: &str) -> Arc<SubMetrics> {
        if let Some(found) = lock(&self.subs).get(&id) {
            return Arc::clone(found);
        }
        self.subscription(id, table)
    }

    /// The subscription's handles, made on first use (again if its table
    /// changed).
    pub fn subscription(&self, id: SubscriptionId, table: &str) -> Arc<SubMetrics> {
        let mut subs = lock(&self.subs);
        if let Some(found) = subs.get(&id).filter(|m| m.table == table) {
            return Arc::clone(found);
        }
        if let Some(old) = subs.remove(&id) {
            self.forget(id, &old.table);
        }
        let made = Arc::new(self.make(id, table));
        subs.insert(id, Arc::clone(&made));
        made
    }

    fn make(&self, id: SubscriptionId, table: &str) -> SubMetrics {
        let f = &self.families;
        let labels = SubLabels {
            subscription: id.0,
            table: table.to_owned(),
        };
        SubMetrics {
            table: table.to_owned(),
            rows: f.rows.get_or_create(&labels).clone(),
            batches: f.batches.get_or_create(&labels).clone(),
            failures: Default::default(),
            failure_family: f.failures.clone(),
            subscription: id.0,
            consecutive_failures: f.consecutive_failures.get_or_create(&labels).clone(),
            backing_off: f.backing_off.get_or_create(&labels).clone(),
            deactivated: f.deactivated.get_or_create(&labels).clone(),
            lag: f.lag.get_or_create(&labels).clone(),
            request_seconds: f.request_seconds.get_or_create(&labels).clone(),
        }
    }

    /// Drops the series of subscriptions no longer in `apisubscription`.
    pub fn retain(&self, present: &HashSet<SubscriptionId>) {
        let mut subs = lock(&self.subs);
        let gone: Vec<(SubscriptionId, String)> = subs
            .iter()
            .filter(|(id, _)| !present.contains(id))
            .map(|(id, m)| (*id, m.table.clone()))
            .collect();
        for (id, table) in gone {
            subs.remove(&id);
            self.forget(id, &table);
        }
    }

    fn forget(&self, id: SubscriptionId, table: &str) {
        let f = &self.families;
        let labels = SubLabels {
            subscription: id.0,
            table: table.to_owned(),
        };
        for family in [&f.rows, &f.batches] {
            family.remove(&labels);
        }
        for family in [
            &f.consecutive_failures,
            &f.backing_off,
            &f.deactivated,
            &f.lag,
        ] {
            family.remove(&labels);
        }
        f.request_seconds.remove(&labels);
        for class in FailureClass::ALL {
            f.failures.remove(&FailureLabels {
                subscription: id.0,
                table: table.to_owned(),
                class: class.as_str(),
            });
        }
    }

    /// A tick read the database and handed out its windows in `took`.
    pub fn tick_done(&self, took: Duration) {
        self.ticks.inc();
        self.tick_seconds.observe(took.as_secs_f64());
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_read_ms
            .store(ms.saturating_add(1), Ordering::Relaxed);
    }

    /// A tick or a window ended with a database error.
    pub fn database_error(&self, error: &dyn std::fmt::Display) {
        self.database_errors.inc();
        *lock(&self.last_error) = error.to_string();
    }

    /// An open write held this tick's windows back.
    pub fn held_back(&self) {
        self.held_back.inc();
    }

    /// `Ok` when a tick read the database within [`READY_TICKS`] ticks of
    /// `tick`; else why not.
    pub fn readiness(&self, tick: Duration) -> Result<(), String> {
        let limit = tick.max(Duration::from_secs(1)) * READY_TICKS;
        let last = self.last_read_ms.load(Ordering::Relaxed);
        let error = lock(&self.last_error).clone();
        let error = if error.is_empty() {
            String::new()
        } else {
            format!("; last database error: {error}")
        };
        if last == 0 {
            return Err(format!("no tick has read the database yet{error}"));
        }
        let since = self
            .started
            .elapsed()
            .saturating_sub(Duration::from_millis(last - 1));
        if since > limit {
            return Err(format!(
                "the last tick that read the database was {} s ago (limit {} s){error}",
                since.as_secs(),
                limit.as_secs()
            ));
        }
        Ok(())
    }

    /// Every metric in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_number_and_table_and_go_when_the_subscription_does() {
        let metrics = Metrics::new();
        let sub = metrics.subscription(SubscriptionId(7), "appointment");
        sub.delivered(3, Duration::from_millis(20));
        sub.failed(FailureClass::Timeout, Duration::from_secs(1));
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"rowhook_rows_delivered_total{subscription="7",table="appointment"} 3"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"rowhook_failed_attempts_total{subscription="7",table="appointment",class="timeout"} 1"#
        ));
        metrics.retain(&HashSet::new());
        assert!(!metrics.encode().contains(r#"subscription="7""#));
    }

    #[test]
    fn not_ready_until_a_tick_reads_the_database() {
        let metrics = Metrics::new();
        metrics.database_error(&"connection refused");
        let why = metrics.readiness(Duration::from_secs(1)).unwrap_err();
        assert!(why.contains("connection refused"), "{why}");
        metrics.tick_done(Duration::from_millis(3));
        assert_eq!(metrics.readiness(Duration::from_secs(1)), Ok(()));
    }
}
