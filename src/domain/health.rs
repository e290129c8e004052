//! A subscription's health: consecutive failures, backoff, deactivation.
//!
//! Open Dental retries a failing subscription every tick, forever. rowhook
//! waits longer after each consecutive failure (5 s, 10 s, 20 s … capped at
//! 15 minutes, with jitter so many subscriptions failing together do not
//! retry together), and after `max_failures` (default 50, as Dentally) it
//! deactivates the subscription until an operator reactivates it. The first
//! success resets everything. The transitions here are pure; the tick
//! stores the result in `rowhook_health` (`tick/task.rs`).
//!
//! Health is rowhook's, not Open Dental's: its table, read in the tick's one
//! statement, and no Open Dental column touched. Pure transitions of (old
//! state, time, policy) let backoff be tested without sleeping. The jitter
//! is a hash of (subscription, failure count): spread across subscriptions,
//! yet the same on every run, so tests and `status` agree. A failure is
//! counted per attempt (one POST), not per tick. A healthy subscription's
//! last success is stored at most once a minute
//! ([`Health::after_success`]): rewriting it after every delivery was a
//! write and a log flush per window.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::domain::subscription::SubscriptionId;

/// The stored state (`rowhook_health`), times in Open Dental's local time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub consecutive_failures: u32,
    pub last_success_at: Option<NaiveDateTime>,
    pub last_failure_at: Option<NaiveDateTime>,
    pub last_failure_reason: String,
    pub next_retry_at: Option<NaiveDateTime>,
    pub deactivated_at: Option<NaiveDateTime>,
}

/// How retries are spaced and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    /// Consecutive failures that deactivate a subscription; 0 never does.
    pub max_failures: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(15 * 60),
            max_failures: 50,
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th consecutive failure: `base *
    /// 2^(failures-1)`, capped, then spread by up to ±20 % with a jitter
    /// that is fixed for a (subscription, failure count) pair.
    pub fn delay(&self, id: SubscriptionId, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << doublings).min(self.cap);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (id.0, failures).hash(&mut hasher);
        // A fraction in [-0.2, 0.2].
        let unit = (hasher.finish() % 10_001) as f64 / 10_000.0;
        raw.mul_f64(0.8 + 0.4 * unit).min(self.cap)
    }
}

impl Health {
    /// Whether the scheduler may attempt the subscription at `now`.
    pub fn may_attempt(&self, now: NaiveDateTime) -> bool {
        self.deactivated_at.is_none() && self.next_retry_at.map_or(true, |at| now >= at)
    }

    /// The state after a failed attempt at `now`.
    pub fn failed(
        &self,
        id: SubscriptionId,
        now: NaiveDateTime,
        reason: &str,
        policy: &RetryPolicy,
    ) -> Self {
        let failures = self.consecutive_failures.saturating_add(1);
        let delay = chrono::Duration::from_std(policy.delay(id, failures)).unwrap_or_default();
        let deactivate = policy.max_failures > 0 && failures >= policy.max_failures;
        Self {
            consecutive_failures: failures,
            last_failure_at: Some(now),
            last_failure_reason: reason.chars().take(255).collect(),
            next_retry_at: (!deactivate).then(|| now + delay),
            deactivated_at: deactivate.then_some(now),
            ..self.clone()
        }
    }

    /// The state after a successful window at `now`.
    pub fn succeeded(&self, now: NaiveDateTime) -> Self {
        Self {
            consecutive_failures: 0,
            last_success_at: Some(now),
            next_retry_at: None,
            deactivated_at: None,
            ..self.clone()
        }
    }

    /// What to store after a window that delivered rows at `now`, if
    /// anything. A healthy subscription whose stored success is less than
    /// [`SUCCESS_REFRESH`] old stores nothing: rewriting only the time after
    /// every window was one write (and one log flush) per delivery.
    pub fn after_success(&self, now: NaiveDateTime) -> Option<Self> {
        let after = self.succeeded(now);
        let only_the_time = Self {
            last_success_at: self.last_success_at,
            ..after.clone()
        } == *self;
        let recent = self.last_success_at.is_some_and(|at| {
            at <= now && now - at < chrono::Duration::from_std(SUCCESS_REFRESH).unwrap_or_default()
        });
        (!(only_the_time && recent)).then_some(after)
    }
}

/// How old a healthy subscription's recorded last success may grow while it
/// keeps delivering; `rowhook status` shows it to the minute.
pub const SUCCESS_REFRESH: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, crate::domain::datetime::DATETIME_FORMAT).unwrap()
    }

    const ID: SubscriptionId = SubscriptionId(7);

    #[test]
    fn delays_double_within_jitter_and_stop_at_the_cap() {
        let policy = RetryPolicy::default();
        for (failures, nominal) in [
            (1, 5.0),
            (2, 10.0),
            (3, 20.0),
            (4, 40.0),
            (8, 640.0),
            (9, 900.0),
            (40, 900.0),
        ] {
            let d = policy.delay(ID, failures).as_secs_f64();
            assert!(
                d >= nominal * 0.8 - 1e-9 && d <= (nominal * 1.2).min(900.0),
                "{failures}: {d}"
            );
        }
        assert_eq!(
            policy.delay(ID, 3),
            policy.delay(ID, 3),
            "jitter is stable for a retry"
        );
        assert_ne!(
            policy.delay(ID, 3),
            policy.delay(SubscriptionId(8), 3),
            "and differs between subscriptions"
        );
    }

    #[test]
    fn the_fiftieth_consecutive_failure_deactivates_and_not_before() {
        let policy = RetryPolicy::default();
        let now = at("2024-01-01 10:00:00");
        let mut health = Health::default();
        for n in 1..=49 {
            health = health.failed(ID, now, "HTTP 500", &policy);
            assert_eq!(health.consecutive_failures, n);
            assert!(health.deactivated_at.is_none(), "deactivated at {n}");
        }
        health = health.failed(ID, now, "HTTP 500", &policy);
        assert_eq!(health.deactivated_at, Some(now));
        assert!(!health.may_attempt(at("2030-01-01 00:00:00")));
    }

    #[test]
    fn a_success_resets_the_count_and_the_backoff() {
        let policy = RetryPolicy::default();
        let now = at("2024-01-01 10:00:00");
        let failed = Health::default()
            .failed(ID, now, "timeout", &policy)
            .failed(ID, now, "timeout", &policy);
        assert!(!failed.may_attempt(now));
        let ok = failed.succeeded(now);
        assert_eq!(ok.consecutive_failures, 0);
        assert!(ok.may_attempt(now));
        assert_eq!(
            ok.last_failure_reason, "timeout",
            "the last failure stays visible"
        );
    }

    #[test]
    fn a_healthy_success_is_stored_once_a_minute() {
        let first = at("2024-01-01 10:00:00");
        let stored = Health::default()
            .after_success(first)
            .expect("the first success is stored");
        assert_eq!(stored.last_success_at, Some(first));
        assert_eq!(stored.after_success(at("2024-01-01 10:00:59")), None);
        let later = at("2024-01-01 10:01:00");
        assert_eq!(
            stored.after_success(later).and_then(|h| h.last_success_at),
            Some(later),
            "a minute on, the time is refreshed"
        );
        assert!(
            stored.after_success(at("2024-01-01 09:00:00")).is_some(),
            "a stored time in the future (a clock step) is replaced"
        );
    }

    #[test]
    fn a_success_after_a_failure_is_always_stored() {
        let now = at("2024-01-01 10:00:00");
        let failed =
            Health::default()
                .succeeded(now)
                .failed(ID, now, "HTTP 500", &RetryPolicy::default());
        let stored = failed.after_success(now).expect("the failure is cleared");
        assert_eq!(stored.consecutive_failures, 0);
        assert_eq!(stored.next_retry_at, None);
    }
}
