//! What the database layer hands up: a tick's [`Snapshot`], a table checked
//! against the schema ([`WatchedTable`]), and a [`Page`] of rows already
//! rendered as JSON. Backend-neutral: nothing here says MySQL or SQLite.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;

use super::encode::ColumnKind;
use super::error::DbError;
use crate::domain::body::BodyKind;
use crate::domain::health::Health;
use crate::domain::lease::LeaseRow;
use crate::domain::opendental::{Lookups, Plan};
use crate::domain::progress::{Clock, Cursor, Progress};
use crate::domain::subscription::{SubscriptionId, SubscriptionRow};
use crate::domain::watch_table::{RowFilter, WatchTarget};

/// What the server says about writes (open transactions, running
/// statements) that may still make rows visible with an earlier change
/// stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenWrites {
    /// No transaction that has written, and no write statement, is open.
    None,
    /// Rows stamped at or after this server time (whole seconds, UTC) may
    /// still appear; earlier ones cannot.
    Since(NaiveDateTime),
    /// The server's list of transactions was not refreshed for this probe
    /// (MariaDB caches `INNODB_TRX`, and another client kept reading it):
    /// transactions begun since it was made are missing from it.
    Stale,
    /// The server will not say (no `PROCESS` privilege), or the backend
    /// cannot (SQLite connections of other processes).
    Unknown,
}

/// Everything a tick reads: the clock, every subscription row, and
/// rowhook's progress for each.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub clock: Clock,
    /// How far into its second the server's clock was when this was read:
    /// ticks are timed to start just after the server's second turns.
    pub phase: Duration,
    /// The server's UTC clock as precisely as it can be read: to the
    /// microsecond on MariaDB; on SQLite, whose clock the snapshot reads
    /// to the second, `clock.instant` (so windows end a second earlier).
    pub now_exact: NaiveDateTime,
    pub subscriptions: Vec<SubscriptionRow>,
    pub progress: HashMap<SubscriptionId, Progress>,
    pub health: HashMap<SubscriptionId, Health>,
    /// The bodies chosen in `rowhook_body`, as stored (parsed when the
    /// subscription is admitted, so one bad value stops only its own).
    pub bodies: HashMap<SubscriptionId, String>,
    /// Each subscription's lease, where one is kept (MariaDB).
    pub leases: HashMap<SubscriptionId, LeaseRow>,
}

impl Snapshot {
    /// Adds one subscription with what rowhook keeps of it.
    pub(super) fn add(&mut self, entry: super::rows::SnapshotEntry) {
        let id = entry.row.id();
        if let Some(progress) = entry.progress {
            self.progress.insert(id, progress);
        }
        if let Some(health) = entry.health {
            self.health.insert(id, health);
        }
        if let Some(body) = entry.body {
            self.bodies.insert(id, body);
        }
        self.subscriptions.push(entry.row);
    }
}

/// A column of a watched table, as the schema declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
    /// A MySQL `TIMESTAMP`: read in UTC, rendered in the local zone.
    pub zoned: bool,
    /// MySQL sends the value in a shape it is decoded from (an integer
    /// other than `BIT`, a character string, or a `NOT NULL` `DATETIME` or
    /// `DATE` in the binary protocol), so it is selected as it is rather
    /// than through a cast the server would spend time on.
    pub plain: bool,
    /// The server sets it on every write (`ON UPDATE CURRENT_TIMESTAMP`).
    pub auto: bool,
}

/// A [`WatchTarget`] checked against the schema: the table exists, and its
/// change column and integer primary key are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedTable {
    /// The `WatchTable` name, for the `Event-Type` header and logs.
    pub watch_name: String,
    /// The table's name as the schema spells it.
    pub table: String,
    pub change_column: String,
    pub key_column: String,
    pub filter: Option<RowFilter>,
    /// All columns, in table order; each becomes one JSON key.
    pub columns: Vec<Column>,
    /// Whether an index starts with the change column (`rowhook check` warns
    /// when not: every poll would scan the table).
    pub change_column_indexed: bool,
    /// How a page is read in (stamp, key) order.
    pub page_read: PageRead,
    /// Open Dental's body for this WatchTable, fitted to the table's
    /// columns; `None` for a table Open Dental has no event for.
    pub opendental: Option<Arc<Plan>>,
    /// Whether the server sets the change column itself on every write (a
    /// `TIMESTAMP … ON UPDATE CURRENT_TIMESTAMP`; SQLite's triggers are
    /// taken on trust). `rowhook check` warns when not: a copied stamp may
    /// never move.
    pub change_column_auto: bool,
}

impl WatchedTable {
    /// The columns a body reads: all of them, or those Open Dental's
    /// element is made from (the plan spells them as the table does).
    pub(super) fn columns_for(&self, body: Body<'_>) -> Vec<&Column> {
        match body {
            Body::Columns => self.columns.iter().collect(),
            Body::OpenDental { plan, .. } => plan
                .columns()
                .iter()
                .filter_map(|name| self.columns.iter().find(|c| c.name == *name))
                .collect(),
        }
    }

    /// The body this table's rows are read in for a subscription that asks
    /// for `kind`: Open Dental's only where it has one.
    pub fn body_for(&self, kind: BodyKind) -> BodyKind {
        match (kind, &self.opendental) {
            (BodyKind::OpenDental, Some(_)) => BodyKind::OpenDental,
            _ => BodyKind::Columns,
        }
    }
}

/// How a page's rows are rendered.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// Every column, as `encode.rs` documents.
    Columns,
    /// Open Dental's element, with the names its lookups need.
    OpenDental {
        plan: &'a Plan,
        lookups: &'a Lookups,
    },
}

impl Body<'_> {
    pub fn kind(&self) -> BodyKind {
        match self {
            Self::Columns => BodyKind::Columns,
            Self::OpenDental { .. } => BodyKind::OpenDental,
        }
    }
}

/// How a page is read in (stamp, key) order; see `db/mysql/page.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRead {
    /// An index is in (stamp, key) order (InnoDB appends the key to an index
    /// on the stamp), or the backend plans the order itself (SQLite): one
    /// `ORDER BY stamp, key`.
    OneStatement,
    /// No index is (MyISAM): by stamp, then the last stamp's rows by key.
    StampThenKey,
}

/// One page of rows, already rendered as JSON objects (each row's bytes)
/// in (stamp, key) order.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub rows: Vec<Vec<u8>>,
    /// Each row's (stamp, key), in the same order: the cursor, the logs and
    /// the batch id are made from these.
    pub keys: Vec<Cursor>,
    /// Whether rows may follow in the window: the window ends only with a
    /// page that says none do. Not the same as "as many rows as asked
    /// for": a page read in two statements can come out short while more
    /// rows follow (see `db/mysql/page.rs`).
    pub more: bool,
}

impl Page {
    pub(super) fn push(&mut self, row: Vec<u8>, at: Cursor) {
        self.keys.push(at);
        self.rows.push(row);
    }

    pub fn last(&self) -> Option<Cursor> {
        self.keys.last().copied()
    }

    /// How many rows; at most a page's limit, which is a `u32`.
    pub(super) fn len(&self) -> u32 {
        u32::try_from(self.keys.len()).unwrap_or(u32::MAX)
    }

    /// A page read in one statement: rows may follow if it is full.
    pub(super) fn ended_at(mut self, limit: u32) -> Self {
        self.more = self.len() >= limit;
        self
    }
}

/// Picks the change column: the target's own, else `DateTStamp`, else
/// `SecDateTEdit`; it must be a timestamp or datetime column.
pub(super) fn choose_change_column(
    table: &str,
    target: &WatchTarget,
    columns: &[Column],
) -> Result<String, DbError> {
    let is_stamp = |c: &&Column| c.kind == ColumnKind::DateTime;
    let find = |name: &str| {
        columns
            .iter()
            .filter(is_stamp)
            .find(|c| c.name.eq_ignore_ascii_case(name))
    };
    match target.change_column {
        Some(wanted) => {
            find(wanted)
                .map(|c| c.name.clone())
                .ok_or_else(|| DbError::MissingChangeColumn {
                    table: table.to_owned(),
                    column: wanted.to_owned(),
                })
        }
        // Prefer the column the server keeps itself: Open Dental's
        // `taskhist` has a plain `DateTStamp` copied from the task, which
        // never moves when the history row changes, beside the real
        // `SecDateTEdit`.
        None => {
            let found = [find("DateTStamp"), find("SecDateTEdit")];
            let auto = found.iter().flatten().find(|c| c.auto);
            auto.or(found.iter().flatten().next())
                .map(|c| c.name.clone())
                .ok_or_else(|| DbError::NoChangeColumn(table.to_owned()))
        }
    }
}

/// Open Dental's body for `watch_name`, fitted to `columns`.
pub(super) fn opendental_plan(watch_name: &str, columns: &[Column]) -> Option<Arc<Plan>> {
    let shape = crate::domain::opendental::shape_for(watch_name)?;
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    Some(Arc::new(shape.plan(&names)))
}
