//! Signing secrets for the tick's windows: created the first time this
//! process sees a subscription (so the integrator can fetch it with `rowhook
//! secret show` before the first event), and read for all due windows in
//! one statement.

use std::collections::HashSet;
use std::sync::Mutex;

use super::{lock, Admitted};
use crate::db::{Database, DbError};
use crate::domain::subscription::SubscriptionId;

/// The subscriptions whose secret this process has checked.
#[derive(Debug, Default)]
pub struct Secured {
    ids: Mutex<HashSet<SubscriptionId>>,
}

impl Secured {
    /// Gives a subscription its secret if it has none, and checks that a
    /// stored one is usable; once per subscription per process.
    pub async fn secure(&self, db: &Database, id: SubscriptionId) -> Result<(), DbError> {
        if self.contains(id) {
            return Ok(());
        }
        db.secrets(id).await?;
        lock(&self.ids).insert(id);
        Ok(())
    }

    pub fn contains(&self, id: SubscriptionId) -> bool {
        lock(&self.ids).contains(&id)
    }

    /// Forgets deleted subscriptions.
    pub fn retain(&self, present: &HashSet<SubscriptionId>) {
        lock(&self.ids).retain(|id| present.contains(id));
    }
}

/// Reads the secrets of every due window in one statement. On an error each
/// window reads its own, and reports the error there.
pub(super) async fn attach(db: &Database, due: &mut [Admitted]) {
    let ids: Vec<SubscriptionId> = due.iter().map(|a| a.job.subscription.id).collect();
    if ids.is_empty() {
        return;
    }
    let Ok(mut found) = db.secrets_of(&ids).await else {
        return;
    };
    for admitted in due {
        admitted.job.secrets = found.remove(&admitted.job.subscription.id);
    }
}
