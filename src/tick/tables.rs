//! Watched tables as the schema last described them, kept for a minute.
//!
//! Resolving a table reads `information_schema`; doing it once a minute
//! rather than every tick still picks up a column an Open Dental upgrade
//! added, soon enough.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lock;
use crate::db::{Database, DbError, WatchedTable};
use crate::domain::subscription::Subscription;

/// How long a resolved table (its column list) is trusted before the schema
/// is read again.
const TABLE_CACHE_TTL: Duration = Duration::from_secs(60);

/// Resolved tables by `WatchTable` name, with when each was resolved.
#[derive(Debug, Default)]
pub struct Tables {
    cache: Mutex<HashMap<String, (Arc<WatchedTable>, Instant)>>,
}

impl Tables {
    /// The subscription's table, from the cache or the schema.
    pub async fn get(
        &self,
        db: &Database,
        subscription: &Subscription,
    ) -> Result<Arc<WatchedTable>, DbError> {
        let key = &subscription.target.name;
        if let Some((table, at)) = lock(&self.cache).get(key) {
            if at.elapsed() < TABLE_CACHE_TTL {
                return Ok(Arc::clone(table));
            }
        }
        let table = Arc::new(db.resolve(&subscription.target).await?);
        lock(&self.cache).insert(key.clone(), (Arc::clone(&table), Instant::now()));
        Ok(table)
    }

    /// The cached table, however old: for a probe that only needs to know
    /// it was resolved lately.
    pub fn cached(&self, name: &str) -> Option<Arc<WatchedTable>> {
        lock(&self.cache)
            .get(name)
            .map(|(table, _)| Arc::clone(table))
    }

    /// Forgets a table, so the next window resolves it again (after a
    /// database error that may have been about its shape).
    pub fn forget(&self, name: &str) {
        lock(&self.cache).remove(name);
    }

    /// Reads the schema again for the tables of `due` whose cached entry has
    /// expired, once per table, so that a quiet subscription need not go
    /// through a window just to refresh it. A table that no longer resolves
    /// is dropped; its window then reports why.
    pub async fn refresh<'s>(&self, db: &Database, due: impl Iterator<Item = &'s Subscription>) {
        let mut stale: HashMap<&str, &Subscription> = HashMap::new();
        {
            let cache = lock(&self.cache);
            for subscription in due {
                let name = subscription.target.name.as_str();
                if cache
                    .get(name)
                    .is_some_and(|(_, at)| at.elapsed() >= TABLE_CACHE_TTL)
                {
                    stale.entry(name).or_insert(subscription);
                }
            }
        }
        for subscription in stale.into_values() {
            if self.get(db, subscription).await.is_err() {
                self.forget(&subscription.target.name);
            }
        }
    }
}
