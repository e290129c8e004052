//! A window's pages read ahead of its sends: the database works on the next
//! page during the POST, the delivery log and the progress record.
//!
//! This works because each page's cursor is the previous page's last
//! (stamp, key), known as soon as it is read: a reader runs up to two pages
//! ahead through a one-page channel. A failed send closes the channel and
//! drops what was read, and the window records its progress before it takes
//! the next page (or its read error), so reading ahead never moves a
//! position past an unacknowledged batch.

use tokio::sync::mpsc;

use super::pages::{PageSize, SharedPage};
use super::Context;
use crate::db::{Body, DbError, WatchedTable};
use crate::domain::progress::{Cursor, Window};

/// How many batches one page read holds. Reading a page costs per
/// statement besides per row (on MyISAM, the rows of its last second are
/// read twice; see `db/mysql/page.rs`). Three batches a read were as fast
/// as five in a backfill, and hold up to three pages (one sending, one
/// queued, one being read) of 3 MB at 1,000 rows of 1 kB.
pub const READ_BATCHES: u32 = 3;

/// Pages read ahead of the window's sends, in order; a read error ends them.
pub type PageFeed = mpsc::Receiver<Result<SharedPage, DbError>>;

/// Reads a window's pages one after another, each from the previous one's
/// last row. The channel holds one page, so at most two are read ahead;
/// reading stops after the last page, on an error, or when the window stops
/// listening.
pub async fn read_ahead(
    ctx: &Context,
    table: &WatchedTable,
    body: Body<'_>,
    window: Window,
    mut after: Option<Cursor>,
    feed: mpsc::Sender<Result<SharedPage, DbError>>,
) {
    let settings = &ctx.settings;
    let size = PageSize {
        limit: settings.batch_size.saturating_mul(READ_BATCHES),
        batch_rows: settings.batch_size as usize,
        max_bytes: settings.max_request_bytes,
    };
    loop {
        let page = ctx
            .pages
            .fetch(&ctx.db, table, body, window, after, size)
            .await;
        let next = match &page {
            Ok(page) if page.more => page.last,
            _ => None,
        };
        if feed.send(page).await.is_err() {
            return;
        }
        match next {
            Some(last) => after = Some(last),
            None => return,
        }
    }
}
