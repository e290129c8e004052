//! The SQL kit both backends build their statements from: identifier
//! quoting, a window's `FROM … WHERE …`, its binds, and the text forms of
//! times the server reads and prints. Only identifiers the schema spelled
//! are ever quoted into a statement.
//!
//! Keyset paging, not OFFSET: a page is the first n rows of `stamp >=
//! max(start, cursor.stamp) AND stamp < stop AND (stamp > cursor.stamp OR
//! key > cursor.key)` in (stamp, key) order. The range on the stamp keeps
//! its index usable; the tie-break on the integer primary key pages
//! thousands of rows of one second exactly, and a row updated meanwhile
//! moves to a later window instead of shifting every offset. The cursor
//! keeps the stamp's fraction of a second ([`parse_stamp`]). A watched table
//! therefore needs a single-column integer primary key (all of Open
//! Dental's have one); `rowhook check` says when it does not.

use chrono::{NaiveDateTime, Timelike};

use super::error::DbError;
use super::model::WatchedTable;
use crate::domain::progress::{Cursor, Window};
use crate::domain::watch_table::RowFilter;

/// Parses the server's clock as printed by the server.
pub(super) fn parse_server_time(text: &str) -> Result<NaiveDateTime, DbError> {
    let whole = text.split('.').next().unwrap_or(text);
    crate::domain::datetime::parse(whole).map_err(|_| DbError::BadServerTime(text.to_owned()))
}

pub(super) fn format_time(t: NaiveDateTime) -> String {
    crate::domain::datetime::format(t)
}

/// Parses a row's change stamp as the server prints it, keeping any
/// fraction of a second (to the microsecond, MySQL's finest): a cursor that
/// dropped it would start the next page before rows already sent, and a page
/// that ended inside such a second would be read again forever.
pub(super) fn parse_stamp(text: &str) -> Result<NaiveDateTime, DbError> {
    let bad = || DbError::BadServerTime(text.to_owned());
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let at = crate::domain::datetime::parse(whole).map_err(|_| bad())?;
    if fraction.is_empty() {
        return Ok(at);
    }
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(6)
        .collect();
    let micros: u32 = digits.parse().map_err(|_| bad())?;
    at.with_nanosecond(micros * 1000).ok_or_else(bad)
}

/// A change stamp as the server reads it: [`format_time`], then the
/// microseconds when there are any.
pub(super) fn format_stamp(t: NaiveDateTime) -> String {
    let whole = format_time(t);
    match t.nanosecond() / 1000 {
        0 => whole,
        micros => format!("{whole}.{micros:06}"),
    }
}

/// Quotes an identifier the schema gave us, for MySQL (backticks) or SQLite
/// (double quotes), doubling any quote inside it.
pub(super) fn quote(ident: &str, mark: char) -> String {
    let doubled = ident.replace(mark, &format!("{mark}{mark}"));
    format!("{mark}{doubled}{mark}")
}

/// Builds the backend-neutral `FROM ... WHERE ...` of a window query, with
/// `?` placeholders bound by the caller in [`page_binds`] order.
pub(super) fn window_from(table: &WatchedTable, after: Option<Cursor>, mark: char) -> String {
    let stamp = quote(&table.change_column, mark);
    let key = quote(&table.key_column, mark);
    let mut sql = format!(
        " FROM {} WHERE {stamp} >= ? AND {stamp} < ?",
        quote(&table.table, mark)
    );
    if let Some(filter) = filter_sql(table.filter) {
        sql.push_str(" AND ");
        sql.push_str(filter);
    }
    if after.is_some() {
        // stamp >= cursor.stamp is implied by the first bind (see page_binds),
        // so "after (stamp, key)" reduces to this and keeps the index range.
        sql.push_str(&format!(" AND ({stamp} > ? OR {key} > ?)"));
    }
    sql
}

/// The ordering that makes the keyset cursor exact, then the page size.
pub(super) fn order_and_limit(table: &WatchedTable, mark: char) -> String {
    let stamp = quote(&table.change_column, mark);
    let key = quote(&table.key_column, mark);
    format!(" ORDER BY {stamp}, {key} LIMIT ?")
}

/// The values for [`window_from`]'s placeholders, as text.
pub(super) struct PageBinds {
    /// The window's start, or the cursor's stamp when later.
    pub from: String,
    pub stop: String,
    /// The cursor's stamp and key, when the page follows one.
    pub after: Option<(String, i64)>,
}

impl PageBinds {
    pub(super) fn new(window: Window, after: Option<Cursor>) -> Self {
        let from = match after {
            Some(c) if c.stamp > window.start => c.stamp,
            _ => window.start,
        };
        Self {
            from: format_stamp(from),
            stop: format_time(window.stop),
            after: after.map(|c| (format_stamp(c.stamp), c.key)),
        }
    }
}

pub(super) fn filter_sql(filter: Option<RowFilter>) -> Option<&'static str> {
    filter.map(|f| match f {
        RowFilter::DeletedAppointments => "HistApptAction = 4",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_keeps_its_fraction_of_a_second_both_ways() {
        for (text, printed) in [
            ("2024-03-05 06:07:08", "2024-03-05 06:07:08"),
            ("2024-03-05 06:07:08.100", "2024-03-05 06:07:08.100000"),
            ("2024-03-05 06:07:08.000001", "2024-03-05 06:07:08.000001"),
            ("2024-03-05 06:07:08.000", "2024-03-05 06:07:08"),
            ("2024-03-05 06:07:08.1234567", "2024-03-05 06:07:08.123456"),
        ] {
            let at = parse_stamp(text).unwrap();
            assert_eq!(format_stamp(at), printed, "{text}");
            assert_eq!(parse_stamp(printed).unwrap(), at, "{text}");
        }
        assert!(parse_stamp("2024-03-05 06:07:08.x").is_err());
        assert!(parse_stamp("yesterday").is_err());
    }
}
