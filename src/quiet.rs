//! Windows with nothing in them, closed together.
//!
//! On a practice database most due windows are empty: nothing changed
//! since the subscription's last poll. Read one by one, each costs a page
//! query that finds nothing, a compare-and-set of `DateTimeStart` and a
//! progress record — three statements per subscription, ~750 a second for
//! 1,000 idle subscriptions. Instead, a tick asks once for the newest change
//! stamp of each table its due subscriptions watch: a window that starts
//! after that stamp is empty, and every such window is closed with two
//! statements, whatever their number.
//!
//! Only plain cases come here (see `Scheduler::quiet_candidate`): a
//! subscription with a partly delivered window, recent failures, a look-back
//! cut, a clock step or an unindexed table goes through
//! [`crate::processor`] as before. The result is the same as the
//! processor's for an empty window: `DateTimeStart` moves to the tick's
//! `stop` by compare-and-set, and an operator's edit wins.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDateTime;

use crate::db::{Database, DbError, WatchedTable};
use crate::subscription::SubscriptionId;

/// A due subscription whose window may hold nothing.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub id: SubscriptionId,
    /// `DateTimeStart` as read: the compare-and-set's expected value.
    pub start_raw: &'a str,
    /// The window's start, as an instant.
    pub start: NaiveDateTime,
    pub table: Arc<WatchedTable>,
}

/// What closing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Per candidate, in order: whether its window was empty and is done.
    pub empty: Vec<bool>,
    /// How many `DateTimeStart`s moved; fewer than the empty windows when an
    /// operator edited some meanwhile (their values stand).
    pub moved: u64,
}

/// Closes the empty windows among `candidates` at `stop` (`stop_local` as
/// `DateTimeStart` text). Each candidate's `start_raw` must differ from
/// `stop_local`, and each must have a progress record.
pub async fn close_empty(
    db: &Database,
    stop: NaiveDateTime,
    stop_local: &str,
    candidates: &[Candidate<'_>],
) -> Result<Closed, DbError> {
    let (tables, slot) = distinct_tables(candidates);
    let latest = db.latest_stamps(&tables, stop).await?;
    let empty: Vec<bool> = candidates
        .iter()
        .zip(&slot)
        .map(|(c, &i)| match latest.get(i) {
            Some(None) => true,
            Some(Some(stamp)) => is_before(stamp, c.start),
            None => false,
        })
        .collect();
    let read: Vec<(SubscriptionId, &str)> = candidates
        .iter()
        .zip(&empty)
        .filter(|(_, &e)| e)
        .map(|(c, _)| (c.id, c.start_raw))
        .collect();
    let moved = match read.is_empty() {
        true => 0,
        false => db.close_empty_windows(stop, stop_local, &read).await?,
    };
    Ok(Closed { empty, moved })
}

/// The tables to probe, each once, and each candidate's index into them.
fn distinct_tables<'c>(candidates: &'c [Candidate<'_>]) -> (Vec<&'c WatchedTable>, Vec<usize>) {
    let mut tables: Vec<&WatchedTable> = Vec::new();
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    let slot = candidates
        .iter()
        .map(|c| {
            let key = (c.table.table.as_str(), c.table.change_column.as_str());
            *seen.entry(key).or_insert_with(|| {
                tables.push(&c.table);
                tables.len() - 1
            })
        })
        .collect();
    (tables, slot)
}

/// Whether the server's newest stamp text is before `start`. MySQL's text
/// is fixed-width (`yyyy-MM-dd HH:mm:ss`, then any fraction), so text order
/// is time order; SQLite compares stamps as text, exactly like this.
fn is_before(stamp: &str, start: NaiveDateTime) -> bool {
    let start = crate::datetime::format(start);
    stamp < start.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, crate::DATETIME_FORMAT).unwrap()
    }

    #[test]
    fn a_stamp_at_the_start_is_inside_the_window() {
        let start = at("2026-11-30 10:00:00");
        assert!(is_before("2026-11-30 09:59:59", start));
        assert!(!is_before("2026-11-30 10:00:00", start));
        // A fraction of a second past the start is still inside.
        assert!(!is_before("2026-11-30 10:00:00.000001", start));
        assert!(is_before("0000-00-00 00:00:00", start));
    }
}
