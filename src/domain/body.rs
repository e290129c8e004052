//! Which body a subscription receives.
//!
//! `opendental`: the element Open Dental itself sends for the WatchTable
//! (see [`super::opendental`]), so a receiver written for Open Dental works
//! unchanged; tables Open Dental has no event for get their columns anyway.
//! `columns`: every column of the row, as `db/encode.rs` documents, for
//! integrators who want all of them. The daemon has a default (`--body`),
//! and a subscription may choose otherwise (`rowhook subscriptions set N
//! --body …`, kept in rowhook's own `rowhook_body`, never in Open Dental's
//! tables).

use std::fmt;
use std::str::FromStr;

/// The body a subscription asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BodyKind {
    /// Open Dental's own element for its WatchTables.
    #[default]
    OpenDental,
    /// Every column of the row.
    Columns,
}

impl BodyKind {
    /// What a subscription on `watch_table` that asks for this body
    /// receives: Open Dental's element only where Open Dental has one.
    pub fn for_watch_table(self, watch_table: &str) -> Self {
        match super::opendental::shape_for(watch_table) {
            Some(_) => self,
            None => Self::Columns,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenDental => "opendental",
            Self::Columns => "columns",
        }
    }
}

impl fmt::Display for BodyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A body name that is neither `opendental` nor `columns`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("body {0:?} is not opendental or columns")]
pub struct UnknownBody(pub String);

impl FromStr for BodyKind {
    type Err = UnknownBody;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "opendental" => Ok(Self::OpenDental),
            "columns" => Ok(Self::Columns),
            _ => Err(UnknownBody(text.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_names_read_back_and_others_are_refused() {
        for kind in [BodyKind::OpenDental, BodyKind::Columns] {
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
        assert_eq!(" Columns ".parse(), Ok(BodyKind::Columns));
        assert!("json".parse::<BodyKind>().is_err());
    }
}
