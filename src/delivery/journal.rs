//! The delivery log writer. Every POST attempt becomes a row of
//! `rowhook_delivery`, written by one background task so that logging never
//! delays a delivery and a logging failure never fails one: a record that
//! cannot be written is reported (once per distinct error) and dropped.
//! The same task prunes rows older than the retention.
//!
//! Attempts go through an unbounded channel. What queued up while the writer
//! last wrote goes in one transaction (one log flush for a tick's
//! deliveries, not one per attempt); if that fails, each record is written
//! alone, so one the server refuses loses only itself. The attempt number
//! is computed in the insert (`COUNT(*) + 1` over the same batch id). Pruning
//! runs hourly, 5000 rows a statement, so a big prune never holds a long
//! lock.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::db::{Database, DbError};
use crate::domain::attempt::DeliveryRecord;

enum Message {
    Record(Box<DeliveryRecord>),
    Flush(oneshot::Sender<()>),
}

/// A handle to the writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Journal {
    tx: mpsc::UnboundedSender<Message>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("journal message")
    }
}

/// How often old delivery-log rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl Journal {
    /// Starts the writer. `retention` of `None` keeps the log forever.
    pub fn start(db: Database, retention: Option<Duration>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write(db, rx, retention));
        Self { tx }
    }

    /// Queues one attempt for the log.
    pub fn record(&self, record: DeliveryRecord) {
        let _ = self.tx.send(Message::Record(Box::new(record)));
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = written.await;
        }
    }
}

/// Most attempts written in one transaction.
const MOST_PER_WRITE: usize = 500;

async fn write(
    db: Database,
    mut rx: mpsc::UnboundedReceiver<Message>,
    retention: Option<Duration>,
) {
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    let mut last_error = String::new();
    loop {
        tokio::select! {
            // The prune when due, then the queue: the first prune (due at
            // once) always comes before the first write, not by chance.
            biased;
            _ = prune.tick() => {
                if let Some(keep) = retention {
                    prune_older_than(&db, keep).await;
                }
            }
            message = rx.recv() => {
                let Some(message) = message else { return };
                // What queued up while the last write ran goes in one
                // transaction: one log flush for a tick's deliveries.
                let mut queued = Queued::default();
                queued.take(message);
                while queued.records.len() < MOST_PER_WRITE {
                    let Ok(message) = rx.try_recv() else { break };
                    queued.take(message);
                }
                queued.write(&db, &mut last_error).await;
            },
        }
    }
}

/// Records taken from the channel, and flushes waiting for them.
#[derive(Default)]
struct Queued {
    records: Vec<DeliveryRecord>,
    flushes: Vec<oneshot::Sender<()>>,
}

impl Queued {
    fn take(&mut self, message: Message) {
        match message {
            Message::Record(record) => self.records.push(*record),
            Message::Flush(done) => self.flushes.push(done),
        }
    }

    /// Writes the records together; if that fails, one by one, so that one
    /// record the database refuses does not take the others with it.
    async fn write(self, db: &Database, last_error: &mut String) {
        if !self.records.is_empty() {
            let together = db.record_deliveries(&self.records).await;
            if let (Err(error), true) = (&together, self.records.len() > 1) {
                tracing::debug!(%error, records = self.records.len(), "Writing the delivery log one by one.");
                for record in &self.records {
                    report(
                        db.record_deliveries(std::slice::from_ref(record)).await,
                        last_error,
                    );
                }
            } else {
                report(together, last_error);
            }
        }
        for done in self.flushes {
            let _ = done.send(());
        }
    }
}

/// Says a write error once, until a different one happens.
fn report(result: Result<(), DbError>, last_error: &mut String) {
    if let Err(error) = result {
        let error = error.to_string();
        if error != *last_error {
            tracing::warn!(%error, "Cannot write the delivery log; deliveries go on.");
            *last_error = error;
        }
    }
}

async fn prune_older_than(db: &Database, keep: Duration) {
    let Ok(now) = db.now().await else { return };
    let Some(before) = chrono::Duration::from_std(keep)
        .ok()
        .and_then(|k| now.checked_sub_signed(k))
    else {
        return;
    };
    match db.prune_deliveries(before).await {
        Ok(0) => {}
        Ok(rows) => tracing::info!(rows, before = %before, "Pruned the delivery log."),
        Err(error) => tracing::warn!(%error, "Cannot prune the delivery log."),
    }
}
