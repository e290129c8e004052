//! What every window shares: the database, the HTTP client, the settings,
//! the shutdown token, the delivery log, the shared page reads and the
//! metrics.
//!
//! [`Context::new`] is the one place these are put together, for `rowhook
//! run`, the demo and the tests alike.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::pages::Pages;
use crate::config::Settings;
use crate::db::Database;
use crate::delivery::journal::Journal;
use crate::delivery::sender::{Sender, SetupError};

/// Shared, read-only things a window needs.
#[derive(Debug, Clone)]
pub struct Context {
    pub db: Database,
    pub sender: Sender,
    pub settings: Settings,
    pub shutdown: CancellationToken,
    pub journal: Journal,
    /// Page reads shared by concurrent windows of the same table.
    pub pages: Pages,
    /// What the daemon counts, for `/metrics` and `/readyz`.
    pub metrics: Arc<Metrics>,
}

impl Context {
    /// Builds the HTTP client from `settings` and starts the delivery log's
    /// writer (so it needs a Tokio runtime); `shutdown` ends every loop.
    pub fn new(
        db: Database,
        settings: Settings,
        shutdown: CancellationToken,
    ) -> Result<Self, SetupError> {
        let sender = Sender::new(settings.http())?;
        let journal = Journal::start(db.clone(), settings.delivery_log_retention);
        Ok(Self {
            db,
            sender,
            settings,
            shutdown,
            journal,
            pages: Pages::default(),
            metrics: Arc::default(),
        })
    }
}
