//! Turning column values into Open Dental-shaped JSON.
//!
//! Both backends reduce every column to one of a few wire shapes (integer,
//! float-as-text, text, bytes) and call these functions, so a datetime or a
//! zero date looks the same whichever database it came from.

use base64::Engine;
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde_json::Value;

/// How a column is read and rendered. Chosen from the column's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Int,
    UInt,
    /// FLOAT, DOUBLE, DECIMAL: read as text, sent as a JSON number.
    Number,
    /// YEAR: sent as a number.
    Year,
    Date,
    DateTime,
    /// Text, TIME, ENUM, SET, JSON: sent as a string.
    Text,
    /// BINARY, VARBINARY, BLOB: sent as base64.
    Bytes,
}

/// Renders a DATE as `yyyy-MM-dd`; zero, invalid and pre-1880 dates as
/// Open Dental's minimum, `0001-01-01`.
pub fn date(text: &str) -> Value {
    let day = text
        .get(..10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    Value::String(match day {
        Some(d) if d.year() >= 1880 => d.format("%Y-%m-%d").to_string(),
        _ => "0001-01-01".to_owned(),
    })
}

/// Renders a DATETIME/TIMESTAMP as `yyyy-MM-dd HH:mm:ss` (fraction
/// truncated, as Open Dental's `SOut.DateT` does); zero, invalid and
/// pre-1880 values as `0001-01-01 00:00:00`.
pub fn datetime(text: &str) -> Value {
    let whole = text.split('.').next().unwrap_or(text);
    let time = NaiveDateTime::parse_from_str(whole, crate::DATETIME_FORMAT).ok();
    Value::String(match time {
        Some(t) if t.year() >= 1880 => t.format(crate::DATETIME_FORMAT).to_string(),
        _ => "0001-01-01 00:00:00".to_owned(),
    })
}

/// A numeric text as a JSON number; a value JSON cannot hold (NaN, or text
/// that is not a number) stays a string rather than being lost.
pub fn number(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    match text
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        Some(n) => Value::Number(n),
        None => Value::String(text.to_owned()),
    }
}

pub fn bytes(raw: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(raw))
}

/// Renders a text value for `kind`.
pub fn text_as(kind: ColumnKind, text: &str) -> Value {
    match kind {
        ColumnKind::Date => date(text),
        ColumnKind::DateTime => datetime(text),
        ColumnKind::Number | ColumnKind::Year | ColumnKind::Int | ColumnKind::UInt => number(text),
        ColumnKind::Text | ColumnKind::Bytes => Value::String(text.to_owned()),
    }
}

/// Maps a declared SQL type (`DATA_TYPE` in MySQL, the declared type in
/// SQLite) to a [`ColumnKind`].
pub fn kind_of(data_type: &str, unsigned: bool) -> ColumnKind {
    let t = data_type.to_ascii_lowercase();
    let has = |s: &str| t.contains(s);
    if t == "datetime"
        || t == "timestamp"
        || t.starts_with("datetime")
        || t.starts_with("timestamp")
    {
        ColumnKind::DateTime
    } else if t == "date" {
        ColumnKind::Date
    } else if t == "year" {
        ColumnKind::Year
    } else if has("int") || t == "bit" || t == "bool" || t == "boolean" {
        if unsigned || t == "bit" {
            ColumnKind::UInt
        } else {
            ColumnKind::Int
        }
    } else if has("float") || has("double") || has("decimal") || has("numeric") || has("real") {
        ColumnKind::Number
    } else if has("blob") || has("binary") {
        ColumnKind::Bytes
    } else {
        ColumnKind::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_render_like_open_dental() {
        assert_eq!(
            datetime("2024-03-01 10:00:07.250"),
            json!("2024-03-01 10:00:07")
        );
        assert_eq!(
            datetime("0000-00-00 00:00:00"),
            json!("0001-01-01 00:00:00")
        );
        assert_eq!(
            datetime("1850-06-01 00:00:00"),
            json!("0001-01-01 00:00:00")
        );
        assert_eq!(date("1980-02-29"), json!("1980-02-29"));
        assert_eq!(date("0000-00-00"), json!("0001-01-01"));
        assert_eq!(date("2023-02-30"), json!("0001-01-01"));
    }

    #[test]
    fn numbers_stay_numbers() {
        assert_eq!(number("12"), json!(12));
        assert_eq!(number("12.50"), json!(12.5));
        assert_eq!(number("NaN"), json!("NaN"));
    }

    #[test]
    fn declared_types_map_to_kinds() {
        assert_eq!(kind_of("bigint", false), ColumnKind::Int);
        assert_eq!(kind_of("tinyint", true), ColumnKind::UInt);
        assert_eq!(kind_of("double", false), ColumnKind::Number);
        assert_eq!(kind_of("timestamp", false), ColumnKind::DateTime);
        assert_eq!(kind_of("DATE", false), ColumnKind::Date);
        assert_eq!(kind_of("mediumblob", false), ColumnKind::Bytes);
        assert_eq!(kind_of("varchar", false), ColumnKind::Text);
        assert_eq!(kind_of("time", false), ColumnKind::Text);
    }
}
