//! The delivery log writer. Every POST attempt becomes a row of
//! `rowhook_delivery`, written by one background task so that logging never
//! delays a delivery and a logging failure never fails one: a record that
//! cannot be written is reported (once per distinct error) and dropped.
//! The same task prunes rows older than the retention.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::db::{Database, DeliveryRecord};

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

async fn write(
    db: Database,
    mut rx: mpsc::UnboundedReceiver<Message>,
    retention: Option<Duration>,
) {
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    let mut last_error = String::new();
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Record(record)) => {
                    if let Err(error) = db.record_delivery(&record).await {
                        let error = error.to_string();
                        if error != last_error {
                            tracing::warn!(%error, "Cannot write the delivery log; deliveries go on.");
                            last_error = error;
                        }
                    }
                }
                Some(Message::Flush(done)) => {
                    let _ = done.send(());
                }
                None => return,
            },
            _ = prune.tick() => {
                if let Some(keep) = retention {
                    prune_older_than(&db, keep).await;
                }
            }
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
