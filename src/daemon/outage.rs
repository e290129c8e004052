//! A lost database connection, said once.
//!
//! A MariaDB restart or a network cut kills every connection rowhook holds.
//! The tick that finds the first one dead also drops the pool's other idle
//! connections (see [`Database::drop_idle`]), so the next tick connects
//! afresh instead of drawing the next dead one: one bad tick per blip, not
//! one per pooled connection. The operator reads one WARN when the outage
//! begins and one INFO when the database answers again; the ticks that fail
//! in between are logged at debug level. Any other error reading
//! `apisubscription` (a missing grant, say) is an ERROR every tick, as it
//! does not end by itself.

use std::time::{Duration, Instant};

use crate::db::{Database, DbError};

/// Whether the tick loop is in an outage, and since when.
#[derive(Debug, Default)]
pub struct Outage {
    since: Option<Instant>,
}

impl Outage {
    /// A tick read the database.
    pub fn answered(&mut self) {
        if let Some(since) = self.since.take() {
            // Whole milliseconds: humantime would print every nanosecond.
            let lasted = Duration::from_millis(
                u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
            );
            tracing::info!(
                outage = %humantime::format_duration(lasted),
                "The database answers again."
            );
        }
    }

    /// A tick could not read the database.
    pub fn failed(&mut self, db: &Database, error: &DbError) {
        if !error.is_connection_lost() {
            tracing::error!(%error, "Cannot read apisubscription; retrying next tick.");
            return;
        }
        let dropped_idle = db.drop_idle();
        if self.since.is_some() {
            tracing::debug!(%error, dropped_idle, "The database is still unreachable.");
            return;
        }
        self.since = Some(Instant::now());
        tracing::warn!(
            %error, dropped_idle,
            "Lost the connection to the database; reconnecting at the next tick. \
             Nothing is lost meanwhile (watermarks move only after delivery)."
        );
    }
}
