//! `WatchTable` names, and how each maps to SQL.
//!
//! Open Dental stores the name of an `EnumWatchTable` member in
//! `apisubscription.WatchTable`. Each member is one table plus a change
//! column (`DateTStamp` or `SecDateTEdit`); `AppointmentDeleted` also filters
//! `histappointment` to deleted rows. Any other name may watch an existing
//! table directly, provided it passes [`TableName::parse`], is not
//! `apisubscription` or one of rowhook's own `rowhook_` tables, and the
//! schema has such a table with a change column — the database layer checks
//! that.
//!
//! Identifiers from data are never pasted into SQL: a name must first pass a
//! character check (`[A-Za-z0-9_$]{1,64}`), then be found in
//! `information_schema` / `sqlite_master`, and only the schema's own
//! spelling, quoted, reaches a statement. `AppointmentDeleted`'s filter is a
//! constant ([`RowFilter`]). `apisubscription` and `rowhook_` tables are
//! refused because they hold integrators' keys and signing secrets.

use std::fmt;

/// A fixed SQL predicate from this file's allow-list. Never built from data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFilter {
    /// `histappointment` rows whose `HistApptAction` is 4 (Deleted).
    DeletedAppointments,
}

/// Where a `WatchTable` name points before it is checked against the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTarget {
    /// The name as the subscription stores it; sent back in `Event-Type`.
    pub name: String,
    /// The table to read.
    pub table: TableName,
    /// The change column Open Dental uses, or `None` to find one
    /// (`DateTStamp`, then `SecDateTEdit`).
    pub change_column: Option<&'static str>,
    pub filter: Option<RowFilter>,
}

/// Open Dental's `EnumWatchTable` members (reference §2): name, table,
/// change column, filter.
const OPEN_DENTAL: &[(&str, &str, &str, Option<RowFilter>)] = &[
    ("Appointment", "appointment", "DateTStamp", None),
    (
        "AppointmentDeleted",
        "histappointment",
        "DateTStamp",
        Some(RowFilter::DeletedAppointments),
    ),
    ("Patient", "patient", "DateTStamp", None),
    ("PatField", "patfield", "SecDateTEdit", None),
    ("Operatory", "operatory", "DateTStamp", None),
    ("Provider", "provider", "DateTStamp", None),
    ("Schedule", "schedule", "DateTStamp", None),
    ("ToothInitial", "toothinitial", "SecDateTEdit", None),
];

/// A table name that is safe to quote: letters, digits, `_` and `$`, at most
/// 64 characters (MySQL's limit). Anything else — spaces, quotes, `;` — is
/// refused before the schema is even consulted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName(String);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WatchTableError {
    #[error("WatchTable is blank (a UI-event subscription)")]
    Blank,
    #[error(
        "WatchTable {0:?} is not a table name (only letters, digits, '_' and '$', at most 64)"
    )]
    InvalidName(String),
    #[error(
        "WatchTable {0:?} is apisubscription or one of rowhook's own tables, which hold \
         integrators' keys and signing secrets; they are never watched"
    )]
    Reserved(String),
}

/// Tables whose rows must never leave the database as events, whatever
/// columns a later version gives them: `apisubscription` (every
/// integrator's `CustomerKey`) and rowhook's own (`rowhook_secret` holds the
/// signing secrets).
fn is_reserved(table: &str) -> bool {
    let lower = table.to_ascii_lowercase();
    lower == "apisubscription" || lower.starts_with("rowhook_")
}

impl TableName {
    pub fn parse(name: &str) -> Result<Self, WatchTableError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(WatchTableError::InvalidName(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl WatchTarget {
    /// Maps a stored `WatchTable` value. Open Dental names match
    /// case-insensitively (integrators type them by hand); other names must
    /// be valid table names.
    pub fn parse(raw: &str) -> Result<Self, WatchTableError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(WatchTableError::Blank);
        }
        if let Some((od, table, column, filter)) = OPEN_DENTAL
            .iter()
            .find(|(od, ..)| od.eq_ignore_ascii_case(name))
        {
            return Ok(Self {
                name: (*od).to_owned(),
                table: TableName((*table).to_owned()),
                change_column: Some(column),
                filter: *filter,
            });
        }
        let table = TableName::parse(name)?;
        if is_reserved(table.as_str()) {
            return Err(WatchTableError::Reserved(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            table,
            change_column: None,
            filter: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_dental_names_map_to_their_tables_case_insensitively() {
        let t = WatchTarget::parse("appointmentdeleted").unwrap();
        assert_eq!(t.name, "AppointmentDeleted");
        assert_eq!(t.table.as_str(), "histappointment");
        assert_eq!(t.filter, Some(RowFilter::DeletedAppointments));
        assert_eq!(
            WatchTarget::parse("PatField").unwrap().change_column,
            Some("SecDateTEdit")
        );
    }

    #[test]
    fn other_names_are_table_names_or_refused() {
        assert_eq!(
            WatchTarget::parse("payment").unwrap().table.as_str(),
            "payment"
        );
        assert_eq!(WatchTarget::parse("  "), Err(WatchTableError::Blank));
        for bad in [
            "appointment; DROP TABLE patient",
            "a`b",
            "x'y",
            "t t",
            &"a".repeat(65),
        ] {
            assert!(matches!(
                WatchTarget::parse(bad),
                Err(WatchTableError::InvalidName(_))
            ));
        }
    }

    #[test]
    fn credential_tables_are_never_watched() {
        for reserved in [
            "apisubscription",
            "ApiSubscription",
            "rowhook_secret",
            "ROWHOOK_progress",
        ] {
            assert_eq!(
                WatchTarget::parse(reserved),
                Err(WatchTableError::Reserved(reserved.to_owned()))
            );
        }
        assert!(WatchTarget::parse("rowhookish").is_ok());
    }
}
