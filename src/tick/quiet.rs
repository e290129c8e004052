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
//! Only plain cases come here (`candidate`): a subscription with a partly
//! delivered window, recent failures, a look-back cut, a clock step or an
//! unindexed table goes through [`crate::window`] as before. The result is
//! the same as a window's for an empty one: `DateTimeStart` moves to the tick's
//! `stop` by compare-and-set, and an operator's edit wins.
//!
//! The closing statements cannot say which rows their compare-and-set
//! passed over, and need not: a progress record that does not match
//! `DateTimeStart` (an edit, or a crash between the two statements) reads
//! next tick as an edit, and the window is read again from `DateTimeStart`.
//! The newest stamp ignores row filters (`AppointmentDeleted`), so it can
//! only overstate: a window it calls empty is empty.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDateTime;

use super::{Admitted, Ticker, Times};

use crate::db::{Database, DbError, EmptyWindow, WatchedTable};
use crate::domain::lease::AgentId;
use crate::domain::progress::StartText;
use crate::domain::subscription::SubscriptionId;
use crate::window::plan::plain_window;

/// A due subscription whose window may hold nothing.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub id: SubscriptionId,
    /// `DateTimeStart` as read: the compare-and-set's expected value.
    pub start_raw: &'a StartText,
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
/// `stop_local`, and each must have a progress record. Under `holder`
/// only subscriptions whose lease it holds are moved.
pub async fn close_empty(
    db: &Database,
    stop: NaiveDateTime,
    stop_local: &StartText,
    candidates: &[Candidate<'_>],
    holder: Option<&AgentId>,
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
    let read: Vec<EmptyWindow<'_>> = candidates
        .iter()
        .zip(&empty)
        .filter(|(_, &e)| e)
        .map(|(c, _)| EmptyWindow {
            id: c.id,
            read: c.start_raw,
        })
        .collect();
    let moved = match read.is_empty() {
        true => 0,
        false => {
            db.close_empty_windows(stop, stop_local, &read, holder)
                .await?
        }
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
    let start = crate::domain::datetime::format(start);
    stamp < start.as_str()
}

impl Ticker {
    /// Closes the due windows that are plainly empty and returns the ones
    /// left for a window task. On a database error every one goes to a task,
    /// which reports errors per subscription.
    pub(super) async fn close_quiet(&self, due: Vec<Admitted>, times: &Times) -> Vec<Admitted> {
        let Some(stop_local) = times.stop.local.as_ref() else {
            return due;
        };
        let db = &self.ctx.db;
        let subscriptions = due.iter().map(|a| &a.job.subscription);
        self.tables.refresh(db, subscriptions).await;
        let (picked, candidates): (Vec<usize>, Vec<Candidate>) = due
            .iter()
            .enumerate()
            .filter_map(|(i, a)| Some((i, self.candidate(a, times, stop_local)?)))
            .unzip();
        if candidates.is_empty() {
            return due;
        }
        let started = Instant::now();
        let holder = self.agent();
        let closed = match close_empty(db, times.stop.instant, stop_local, &candidates, holder)
            .await
        {
            Ok(closed) => closed,
            Err(error) => {
                tracing::warn!(%error, "Cannot close empty windows together; reading each instead.");
                return due;
            }
        };
        let done: HashSet<usize> = picked
            .iter()
            .zip(&closed.empty)
            .filter_map(|(&i, &empty)| empty.then_some(i))
            .collect();
        report(&closed, done.len(), started);
        let mut rest = Vec::with_capacity(due.len() - done.len());
        for (i, admitted) in due.into_iter().enumerate() {
            if !done.contains(&i) {
                rest.push(admitted);
                continue;
            }
            let id = admitted.job.subscription.id;
            self.processed.fetch_add(1, Ordering::Relaxed);
            self.notices.clear(id);
            self.rewinds.done(id, admitted.rewind);
        }
        rest
    }

    /// A due window that can be judged by its table's newest stamp alone:
    /// a healthy subscription, at rest at the position rowhook recorded,
    /// watching an indexed table this process has resolved, with a plain
    /// window ahead.
    fn candidate<'a>(
        &self,
        admitted: &'a Admitted,
        times: &Times,
        stop_local: &StartText,
    ) -> Option<Candidate<'a>> {
        let s = &admitted.job.subscription;
        let progress = admitted.job.progress.as_ref()?;
        let at_rest = progress.window.is_none() && progress.date_time_start == s.start_raw;
        let plain = at_rest
            && admitted.health.consecutive_failures == 0
            && s.start_raw != *stop_local
            && self.secured.contains(s.id);
        if !plain {
            return None;
        }
        // Not checked for age: the tick has just renewed what expired, and
        // an entry a moment past its age is still good for this probe.
        let table = self.tables.cached(&s.target.name)?;
        if !table.change_column_indexed {
            return None;
        }
        let settings = &self.ctx.settings;
        let stop = times.stop.instant;
        let window = plain_window(settings, s, progress.watermark, times.clock, stop)?;
        Some(Candidate {
            id: s.id,
            start_raw: &s.start_raw,
            start: window.start,
            table,
        })
    }
}

/// Logs what closing did.
fn report(closed: &Closed, windows: usize, started: Instant) {
    tracing::debug!(
        windows,
        moved = closed.moved,
        rows = 0,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "Closed empty windows."
    );
    if closed.moved < windows as u64 {
        tracing::info!(
            changed = windows as u64 - closed.moved,
            "DateTimeStart was changed by someone else during the tick; leaving it as they set it."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, crate::domain::datetime::DATETIME_FORMAT).unwrap()
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
