//! Where concurrent windows share a page read.
//!
//! Subscriptions that watch the same table and are due in the same tick
//! usually have the same window — the tick's stop, from the previous
//! tick's stop — so they would each read and encode the same rows. Here a
//! page is read, encoded and cut into request bodies once for all windows
//! that ask for it while it is in use: the first asker reads it, the others
//! wait for that read and get the same bodies. What each subscription does
//! with them (its batch ids, signatures, requests, delivery log and
//! watermark) stays its own.
//!
//! A page is kept only while some window holds it, so sharing costs no
//! memory beyond the pages being sent. A window holds the page that ended
//! it until its watermark has moved, and a tick starts one table's
//! subscriptions one after another, so the next to get a turn finds the
//! page still held. A failed read is not shared: the next waiter reads
//! again itself and reports its own error; a table resolved differently (a
//! column added since) reads alone.
//!
//! Sharing does not change what any subscription receives: the rows of a
//! window `[start, stop)` after a cursor are fixed once `stop` is safe (see
//! [`crate::domain::progress`]), except that a row changed again moves out of the
//! window to a later one, where it is delivered in its new version.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OnceCell;

use super::batch::{self, Piece};
use crate::db::{Body, Database, DbError, WatchedTable};
use crate::domain::body::BodyKind;
use crate::domain::progress::{Cursor, Window};

/// One page's identity: the same statement with the same bounds, cut the
/// same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    watch_name: String,
    body: BodyKind,
    window: (chrono::NaiveDateTime, chrono::NaiveDateTime),
    after: Option<Cursor>,
    limit: u32,
    batch_rows: usize,
    max_bytes: usize,
}

/// A page as it is sent: its batches (and rows set aside), in row order.
#[derive(Debug)]
pub struct Cut {
    /// Whether rows may follow it in the window; otherwise it ends the
    /// window.
    pub more: bool,
    /// The position of its last row, where the next page starts.
    pub last: Option<Cursor>,
    pub pieces: Vec<Piece>,
}

/// A read in progress or done, with the table as it was resolved for it: a
/// window whose table was resolved differently (a column added since)
/// reads its own page.
#[derive(Debug)]
struct Slot {
    table: WatchedTable,
    page: OnceCell<Arc<Cut>>,
}

/// The pages being read or used right now, shared by every window of the
/// process. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Pages {
    slots: Arc<Mutex<HashMap<Key, Weak<Slot>>>>,
}

/// A page read once for every window that asked for it.
#[derive(Debug)]
pub struct SharedPage {
    // Held so later askers find the read while this page is in use.
    _slot: Arc<Slot>,
    page: Arc<Cut>,
}

impl Deref for SharedPage {
    type Target = Cut;

    fn deref(&self) -> &Cut {
        &self.page
    }
}

/// How much one read takes and how it is cut into request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageSize {
    /// Rows per read.
    pub limit: u32,
    /// Rows per request body.
    pub batch_rows: usize,
    /// Bytes per request body.
    pub max_bytes: usize,
}

impl Pages {
    /// The page of `table` in `window` after `after`, at most `limit` rows,
    /// cut into batches of at most `batch_rows` rows and `max_bytes` body
    /// bytes: read now, or shared from a window that is reading or holding
    /// it.
    pub async fn fetch(
        &self,
        db: &Database,
        table: &WatchedTable,
        body: Body<'_>,
        window: Window,
        after: Option<Cursor>,
        size: PageSize,
    ) -> Result<SharedPage, DbError> {
        let PageSize {
            limit,
            batch_rows,
            max_bytes,
        } = size;
        let key = Key {
            watch_name: table.watch_name.clone(),
            body: body.kind(),
            window: (window.start, window.stop),
            after,
            limit,
            batch_rows,
            max_bytes,
        };
        let slot = self.slot(key, table);
        let read = || async {
            let page = db.fetch_page(table, body, window, after, limit).await?;
            Ok::<_, DbError>(Arc::new(Cut {
                more: page.more,
                last: page.last(),
                pieces: batch::split(&page, batch_rows, max_bytes),
            }))
        };
        let page = Arc::clone(slot.page.get_or_try_init(read).await?);
        Ok(SharedPage { _slot: slot, page })
    }

    /// The live slot for `key`, or a new one. Dead entries are dropped here,
    /// so the map holds no more than the pages in use.
    fn slot(&self, key: Key, table: &WatchedTable) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|_, slot| slot.strong_count() > 0);
        if let Some(slot) = slots.get(&key).and_then(Weak::upgrade) {
            if slot.table == *table {
                return slot;
            }
            // Resolved differently: read alone, and leave the entry to the
            // windows that share it.
            return Arc::new(Slot {
                table: table.clone(),
                page: OnceCell::new(),
            });
        }
        let slot = Arc::new(Slot {
            table: table.clone(),
            page: OnceCell::new(),
        });
        slots.insert(key, Arc::downgrade(&slot));
        slot
    }
}
