//! Which subscriptions run this tick, and saying once why one does not.
//!
//! A row is parsed; one that cannot be processed is logged once (again only
//! if its problem changes) and skipped, and the others keep running. A
//! subscription for another workstation, expired, deactivated, backing off,
//! not yet due or still in flight is not started.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::NaiveDateTime;

use super::lock;
use crate::domain::body::BodyKind;
use crate::domain::health::Health;
use crate::domain::subscription::{Parsed, Subscription, SubscriptionId, SubscriptionRow};

/// What has been said about each subscription, so that it is said once.
#[derive(Debug, Default)]
pub struct Notices {
    said: Mutex<HashMap<SubscriptionId, String>>,
}

impl Notices {
    /// Logs a problem with a row once, and again only when it changes.
    pub fn problem(&self, id: SubscriptionId, reason: String) {
        if self.first_time(id, &reason) {
            tracing::error!(subscription = %id, %reason, "Subscription cannot be processed.");
        }
    }

    /// Says once why a subscription is not processed.
    pub fn notice(&self, id: SubscriptionId, reason: String) {
        if self.first_time(id, &reason) {
            tracing::info!(subscription = %id, %reason, "Subscription not processed.");
        }
    }

    /// The subscription ran: whatever was said of it no longer holds.
    pub fn clear(&self, id: SubscriptionId) {
        lock(&self.said).remove(&id);
    }

    /// Forgets deleted subscriptions.
    pub fn retain(&self, present: &HashSet<SubscriptionId>) {
        lock(&self.said).retain(|id, _| present.contains(id));
    }

    fn first_time(&self, id: SubscriptionId, reason: &str) -> bool {
        let mut said = lock(&self.said);
        if said.get(&id).is_some_and(|r| r == reason) {
            return false;
        }
        said.insert(id, reason.to_owned());
        true
    }
}

/// What admission looks at besides the row itself.
pub struct Gate<'a> {
    /// This agent's workstation name.
    pub workstation: &'a str,
    /// The server's local time at the tick.
    pub now: NaiveDateTime,
    /// Subscriptions whose windows are in flight.
    pub busy: &'a HashSet<SubscriptionId>,
    pub notices: &'a Notices,
    /// The body of a subscription that has not chosen one.
    pub default_body: BodyKind,
}

impl Gate<'_> {
    /// The body an admitted subscription gets: the one chosen for it in
    /// `rowhook_body`, else the daemon's default. A stored value rowhook
    /// cannot read stops only this subscription, said once.
    pub fn body(&self, id: SubscriptionId, stored: Option<&String>) -> Option<BodyKind> {
        let Some(stored) = stored else {
            return Some(self.default_body);
        };
        match stored.parse() {
            Ok(body) => Some(body),
            Err(error) => {
                self.notices
                    .problem(id, format!("skipped: rowhook_body: {error}"));
                None
            }
        }
    }

    /// Parses a row and decides whether it runs now. Says once why not,
    /// when the reason is worth an operator's attention.
    pub fn admit(&self, row: &SubscriptionRow, health: &Health) -> Option<Subscription> {
        let id = row.id();
        let subscription = match row.parse() {
            Ok(Parsed::Database(s)) => *s,
            Ok(Parsed::UiEvent { ui_event_type }) => {
                self.notices.notice(id, format!(
                    "ignored: WatchTable is blank, so this is a UI-event subscription ({ui_event_type:?}), which only the Open Dental client fires"
                ));
                return None;
            }
            Err(error) => {
                self.notices.problem(id, format!("skipped: {error}"));
                return None;
            }
        };
        if !subscription.workstation.matches(self.workstation) {
            tracing::debug!(subscription = %id, "Not for this workstation.");
            return None;
        }
        if subscription.is_expired(self.now) {
            self.notices
                .notice(id, "expired: DateTimeStop is in the past".to_owned());
            return None;
        }
        if health.deactivated_at.is_some() {
            self.notices.notice(id, format!(
                "deactivated after {} consecutive failures; reactivate with `rowhook subscriptions reactivate {id}`",
                health.consecutive_failures
            ));
            return None;
        }
        let ready = subscription.is_due(self.now) && health.may_attempt(self.now);
        (ready && !self.busy.contains(&id)).then_some(subscription)
    }
}
