//! Where a subscription stands: the server's clock, the window being read,
//! the keyset cursor inside it, and rowhook's own record of its position.
//!
//! A window is the half-open interval `[start, stop)` of change stamps.
//! `stop` is read from the server's clock before any row is, so a row
//! stamped while the window pages falls in the next window instead of being
//! skipped. Inside a window rows are paged by a [`Cursor`] on (stamp,
//! primary key), which neither repeats nor skips rows when thousands share
//! one second.
//!
//! `DateTimeStart` is moved by compare-and-set on the exact text that was
//! read ([`StartText`]): an operator who edits it meanwhile wins.

use std::fmt;

use chrono::NaiveDateTime;

/// The server's clock at one moment, in both time bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Open Dental's local time: compared with `DateTimeStart`/`DateTimeStop`.
    pub local: NaiveDateTime,
    /// The time base change stamps compare in (UTC on MySQL).
    pub instant: NaiveDateTime,
}

/// The position after the last acknowledged row: the next page starts
/// strictly after (stamp, key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub stamp: NaiveDateTime,
    pub key: i64,
}

/// The interval of change stamps to read, `[start, stop)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveDateTime,
    pub stop: NaiveDateTime,
}

/// `DateTimeStart` exactly as the server printed it: the token of the
/// compare-and-set that moves it, and the text the progress record belongs
/// to. Two texts are equal only when they are the same characters; it is
/// never parsed back for the comparison.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct StartText(String);

impl StartText {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for StartText {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl PartialEq<str> for StartText {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for StartText {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for StartText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StartText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A partly delivered window: its `stop`, and the last acknowledged row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    pub stop: NaiveDateTime,
    pub after: Cursor,
}

/// rowhook's own record of a subscription's position (`rowhook_progress`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The `DateTimeStart` text this record belongs to. When the row holds
    /// another value, an operator moved it and the record is stale.
    pub date_time_start: StartText,
    /// That `DateTimeStart` as an instant, exact even in a repeated DST hour.
    pub watermark: NaiveDateTime,
    /// Set while a window is partly delivered.
    pub window: Option<Resume>,
}

impl Progress {
    /// Moves the record back to `to` after the server's clock stepped back:
    /// a position past it moves to it, and a partly delivered window
    /// acknowledged past it is dropped (read again from its start). The
    /// database layer's `rewind_progress` does the same in SQL.
    pub fn rewind(&mut self, to: NaiveDateTime) {
        let past = self.window.is_some_and(|w| w.after.stamp >= to);
        if self.watermark > to || past {
            self.watermark = self.watermark.min(to);
            self.window = None;
        }
    }
}

/// `DateTimeStart` as stored now, read again between batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recheck {
    pub start: StartText,
    /// Whether `DateTimeStop` has passed.
    pub expired: bool,
}
