//! Turning column values into Open Dental-shaped JSON.
//!
//! Both backends reduce every column to one of a few wire shapes (integer,
//! float-as-text, text, bytes) and call these functions, so a datetime or a
//! zero date looks the same whichever database it came from.
//!
//! What each odd type becomes (NULL is `null` in every kind):
//!
//! | column | JSON |
//! |---|---|
//! | integers, `TINYINT(1)`, `BIGINT UNSIGNED` up to 2⁶⁴−1 | number, exact |
//! | `BIT(n)` | number (its unsigned value: `b'1'` → 1, `b'10000001'` → 129) |
//! | `YEAR` | number (`0000` → 0) |
//! | `DECIMAL` | number when that number's shortest spelling is the same value (`12.50` → 12.5, as Open Dental sends money); otherwise the exact text (`"123456789012345678.99"`) |
//! | `DOUBLE`/`FLOAT` | number, the same double; NaN and ±infinity (SQLite only; MariaDB refuses them) as the text `"NaN"`, `"inf"`, `"-inf"` |
//! | `DATE`, `DATETIME`, `TIMESTAMP` | `yyyy-MM-dd` / `yyyy-MM-dd HH:mm:ss`, fraction dropped; zero, invalid (`2024-02-30`, `2024-00-00`) and pre-1880 values as Open Dental's minimum `0001-01-01` (`00:00:00`) |
//! | `TIME` | text as the server prints it (`-12:30:00`, `838:59:59`, `12:00:00.500000`) |
//! | `ENUM`, `SET` | text (`"x,z"`; the empty set and an invalid enum value are `""`) |
//! | `JSON` | text, as stored (MariaDB's `JSON` is `LONGTEXT`) |
//! | text | text; bytes that are not UTF-8 (SQLite) become U+FFFD rather than failing the window |
//! | `BINARY`, `VARBINARY`, `BLOB`, spatial types | base64 of the stored bytes |

use base64::Engine;
use chrono::Datelike;
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
    /// BINARY, VARBINARY, BLOB, and spatial types (GEOMETRY, POINT, ...):
    /// sent as base64 of the stored bytes (for spatial values, MariaDB's own
    /// form: a 4-byte little-endian SRID, then WKB).
    Bytes,
}

/// MariaDB's spatial types. They cannot be cast to a number or to text, so
/// they travel as bytes; they are matched before the `int` rule, which
/// `point` would otherwise meet.
const SPATIAL: &[&str] = &[
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
    "geomcollection",
];

/// One row's JSON object, written column by column as the row is decoded.
///
/// Building a `serde_json::Map` first cost, per row, a copied key and a
/// hash-map insert per column and then a second pass to serialize; with
/// ~40 columns a row that was a fifth of a backfill's CPU. Keys are written
/// in column order, as the map kept them.
#[derive(Debug)]
pub struct JsonRow(Vec<u8>);

impl JsonRow {
    pub fn new() -> Self {
        let mut out = Vec::with_capacity(1024);
        out.push(b'{');
        Self(out)
    }

    pub fn field(&mut self, name: &str, value: &Value) {
        self.key(name);
        // Writing into a Vec cannot fail, and neither can serializing a
        // `Value` (its object keys are strings).
        serde_json::to_writer(&mut self.0, value).ok();
    }

    /// A field whose value is `kind` read from text: a text column's is
    /// written as it is, without first becoming a `Value`.
    pub fn text_field(&mut self, name: &str, kind: ColumnKind, text: &str) {
        match kind {
            ColumnKind::Text | ColumnKind::Bytes => {
                self.key(name);
                serde_json::to_writer(&mut self.0, text).ok();
            }
            _ => self.field(name, &text_as(kind, text)),
        }
    }

    fn key(&mut self, name: &str) {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        serde_json::to_writer(&mut self.0, name).ok();
        self.0.push(b':');
    }

    /// The finished object's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.0.push(b'}');
        self.0
    }
}

impl Default for JsonRow {
    fn default() -> Self {
        Self::new()
    }
}

/// Renders a DATE as `yyyy-MM-dd`; zero, invalid and pre-1880 dates as
/// Open Dental's minimum, `0001-01-01`.
pub fn date(text: &str) -> Value {
    let day = text
        .get(..10)
        .and_then(|d| crate::domain::datetime::parse_date(d).ok());
    Value::String(match day {
        Some(d) if d.year() >= 1880 => crate::domain::datetime::format_date(d),
        _ => "0001-01-01".to_owned(),
    })
}

/// Renders a DATETIME/TIMESTAMP as `yyyy-MM-dd HH:mm:ss` (fraction
/// truncated, as Open Dental's `SOut.DateT` does); zero, invalid and
/// pre-1880 values as `0001-01-01 00:00:00`.
pub fn datetime(text: &str) -> Value {
    let whole = text.split('.').next().unwrap_or(text);
    let time = crate::domain::datetime::parse(whole).ok();
    Value::String(match time {
        Some(t) if t.year() >= 1880 => crate::domain::datetime::format(t),
        _ => "0001-01-01 00:00:00".to_owned(),
    })
}

/// Renders a `DATETIME` or `DATE` sent in MySQL's binary protocol (a length
/// byte, then year, month, day[, hour, minute, second[, microseconds]]) as
/// [`datetime`] and [`date`] render its text; `None` when `raw` does not
/// have that shape (the text protocol). An absent value is a zero date.
pub fn binary_date(kind: ColumnKind, raw: Option<&[u8]>) -> Option<Value> {
    let raw = raw.unwrap_or(&[0]);
    let (&len, parts) = raw.split_first()?;
    if parts.len() != usize::from(len) || ![0, 4, 7, 11].contains(&len) {
        return None;
    }
    let part = |i: usize| parts.get(i).copied().map_or(0, u32::from);
    let year = i32::try_from(part(0) | part(1) << 8).ok()?;
    let day = chrono::NaiveDate::from_ymd_opt(year, part(2), part(3)).filter(|d| d.year() >= 1880);
    let time = chrono::NaiveTime::from_hms_opt(part(4), part(5), part(6));
    Some(Value::String(match (kind, day, time) {
        (ColumnKind::Date, Some(d), _) => crate::domain::datetime::format_date(d),
        (ColumnKind::Date, None, _) => "0001-01-01".to_owned(),
        (_, Some(d), Some(t)) => crate::domain::datetime::format(d.and_time(t)),
        _ => "0001-01-01 00:00:00".to_owned(),
    }))
}

/// A numeric text as a JSON number; a value JSON cannot hold (NaN, or text
/// that is not a number) stays a string rather than being lost.
pub fn number(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::from(u);
    }
    let exact = |x: f64| text.contains(['e', 'E']) || x.to_string() == plain_decimal(text);
    match text.parse::<f64>() {
        Ok(x) if exact(x) => serde_json::Number::from_f64(x)
            .map_or_else(|| Value::String(text.to_owned()), Value::Number),
        // A DECIMAL with more digits than a double holds (or NaN) goes as
        // its exact text rather than rounded.
        _ => Value::String(text.to_owned()),
    }
}

/// A decimal's text without the zeros that do not change its value
/// (`12.50` → `12.5`, `-0.0` → `-0`, `7.` → `7`), to compare with how a
/// double prints.
fn plain_decimal(text: &str) -> String {
    let text = text.trim_start_matches('+');
    if !text.contains('.') {
        return text.to_owned();
    }
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    let (sign, digits) = match trimmed.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", trimmed),
    };
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() || digits.starts_with('.') {
        format!("0{digits}")
    } else {
        digits.to_owned()
    };
    format!("{sign}{digits}")
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
    } else if SPATIAL.contains(&t.as_str()) {
        ColumnKind::Bytes
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
    fn binary_dates_render_as_their_text_does() {
        use ColumnKind::{Date, DateTime};
        let at = [232, 7, 3, 5, 6, 7, 8];
        let cases: [(ColumnKind, Option<&[u8]>, &str); 9] = [
            (
                DateTime,
                Some(&[7, 232, 7, 3, 5, 6, 7, 8]),
                "2024-03-05 06:07:08",
            ),
            (
                DateTime,
                Some(&[11, 232, 7, 3, 5, 6, 7, 8, 64, 226, 1, 0]),
                "2024-03-05 06:07:08",
            ),
            (DateTime, Some(&[4, 232, 7, 3, 5]), "2024-03-05 00:00:00"),
            (Date, Some(&[4, 232, 7, 3, 5]), "2024-03-05"),
            (DateTime, None, "0001-01-01 00:00:00"),
            (Date, None, "0001-01-01"),
            (
                DateTime,
                Some(&[7, 232, 7, 2, 30, 1, 2, 3]),
                "0001-01-01 00:00:00",
            ),
            (Date, Some(&[4, 232, 7, 0, 0]), "0001-01-01"),
            (
                DateTime,
                Some(&[7, 8, 7, 3, 5, 6, 7, 8]),
                "0001-01-01 00:00:00",
            ),
        ];
        for (kind, raw, want) in cases {
            assert_eq!(binary_date(kind, raw), Some(json!(want)), "{raw:?}");
        }
        // Text (the text protocol) is not taken for the binary shape.
        assert_eq!(binary_date(DateTime, Some(b"2024-03-05 06:07:08")), None);
        assert_eq!(binary_date(Date, Some(b"2024-03-05")), None);
        assert_eq!(binary_date(DateTime, Some(&at)), None, "no length byte");
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
        assert_eq!(kind_of("point", false), ColumnKind::Bytes);
        assert_eq!(kind_of("multipoint", false), ColumnKind::Bytes);
        assert_eq!(kind_of("geometry", false), ColumnKind::Bytes);
        assert_eq!(kind_of("inet6", false), ColumnKind::Text);
    }

    #[test]
    fn exact_decimals_are_numbers_and_long_ones_stay_exact_text() {
        assert_eq!(number("-0.01"), json!(-0.01));
        assert_eq!(number("100.00"), json!(100.0));
        assert_eq!(number("18446744073709551615"), json!(u64::MAX));
        assert_eq!(number("1e300"), json!(1e300));
        assert_eq!(
            number("123456789012345678.99"),
            json!("123456789012345678.99")
        );
    }
}

/// Property tests (proptest) over every wire shape: for any input the
/// encoder neither panics nor produces JSON a receiver cannot read, and it
/// keeps what it must keep — integers exactly, doubles as the same double,
/// decimals as the same value or as their exact text, text as the same
/// text (invalid UTF-8 as U+FFFD), bytes through base64, dates in Open
/// Dental's two formats.
#[cfg(test)]
mod properties {
    use super::*;
    use chrono::{NaiveDate, NaiveDateTime};
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    const KINDS: [ColumnKind; 8] = [
        ColumnKind::Int,
        ColumnKind::UInt,
        ColumnKind::Number,
        ColumnKind::Year,
        ColumnKind::Date,
        ColumnKind::DateTime,
        ColumnKind::Text,
        ColumnKind::Bytes,
    ];

    /// Serializes a value as a receiver would get it and reads it back with
    /// an exact parser: strings compare equal, numbers as the same
    /// integer or the same double.
    fn survives_the_wire(value: &Value) -> Result<(), TestCaseError> {
        let wire = serde_json::to_string(value)
            .map_err(|e| TestCaseError::fail(format!("{value:?}: {e}")))?;
        let back: Value =
            serde_json::from_str(&wire).map_err(|e| TestCaseError::fail(format!("{wire}: {e}")))?;
        match value {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    prop_assert_eq!(wire.parse::<i64>().ok(), Some(i));
                } else if let Some(u) = n.as_u64() {
                    prop_assert_eq!(wire.parse::<u64>().ok(), Some(u));
                } else {
                    let x = n.as_f64();
                    prop_assert!(x.is_some_and(f64::is_finite), "{wire}");
                    prop_assert_eq!(wire.parse::<f64>().ok(), x);
                }
            }
            Value::String(_) | Value::Null => prop_assert_eq!(&back, value),
            other => prop_assert!(false, "a column became {other:?}"),
        }
        Ok(())
    }

    /// A decimal's value in one spelling: no sign on zero, no leading zeros
    /// in the integer part, no trailing zeros in the fraction. Written
    /// apart from `plain_decimal` so the two check each other.
    fn canonical(text: &str) -> String {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let int = match int.trim_start_matches('0') {
            "" => "0",
            rest => rest,
        };
        let frac = frac.trim_end_matches('0');
        let body = if frac.is_empty() {
            int.to_owned()
        } else {
            format!("{int}.{frac}")
        };
        if negative && body != "0" {
            format!("-{body}")
        } else {
            body
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn any_text_in_any_kind_is_valid_json(
            text in any::<String>(),
            kind in proptest::sample::select(KINDS.to_vec()),
        ) {
            survives_the_wire(&text_as(kind, &text))?;
        }

        #[test]
        fn number_like_text_is_a_number_of_the_same_value_or_kept_as_given(
            text in "[-+0-9.eE]{0,12}|[-+]?(NaN|nan|inf|Infinity|INF)|[0-9]{1,30}\\.?[0-9]{0,30}",
        ) {
            let value = number(&text);
            survives_the_wire(&value)?;
            match &value {
                Value::Number(n) => {
                    let exact: f64 = text.parse().map_err(|_| {
                        TestCaseError::fail(format!("{text:?} became {n} but is no number"))
                    })?;
                    prop_assert_eq!(n.as_f64(), Some(exact), "{:?} changed value", text);
                    if let Ok(i) = text.parse::<i64>() {
                        prop_assert_eq!(n.as_i64(), Some(i));
                    }
                }
                Value::String(kept) => prop_assert_eq!(kept, &text),
                other => prop_assert!(false, "{text:?} became {other:?}"),
            }
        }

        #[test]
        fn integers_stay_equal(i in any::<i64>(), u in any::<u64>()) {
            let signed = text_as(ColumnKind::Int, &i.to_string());
            prop_assert_eq!(signed.as_i64(), Some(i));
            survives_the_wire(&signed)?;
            let unsigned = text_as(ColumnKind::UInt, &u.to_string());
            prop_assert_eq!(unsigned.as_u64(), Some(u));
            survives_the_wire(&unsigned)?;
        }

        /// Doubles as SQLite's driver prints them (`Display`) and in the
        /// exponent form MariaDB uses: the same double, or (NaN, ±inf,
        /// which JSON cannot hold) the text as given.
        #[test]
        fn doubles_stay_the_same_double(x in any::<f64>()) {
            for text in [x.to_string(), format!("{x:e}")] {
                let value = number(&text);
                survives_the_wire(&value)?;
                if x.is_finite() {
                    prop_assert_eq!(value.as_f64(), Some(x), "{}", text);
                } else {
                    prop_assert_eq!(value, Value::String(text));
                }
            }
        }

        /// DECIMAL text of any precision: a JSON number only if that
        /// number's shortest spelling is the same decimal value (12.50 →
        /// 12.5), otherwise the exact text.
        #[test]
        fn decimals_are_exact_numbers_or_their_own_text(
            int in "-?[0-9]{1,40}",
            frac in proptest::option::of("[0-9]{0,30}"),
        ) {
            let text = match frac {
                Some(frac) => format!("{int}.{frac}"),
                None => int,
            };
            let value = number(&text);
            survives_the_wire(&value)?;
            match &value {
                Value::Number(n) if n.is_f64() => {
                    let x = n.as_f64().unwrap_or(f64::NAN);
                    prop_assert_eq!(canonical(&x.to_string()), canonical(&text));
                }
                Value::Number(n) => prop_assert_eq!(canonical(&n.to_string()), canonical(&text)),
                Value::String(kept) => prop_assert_eq!(kept, &text),
                other => prop_assert!(false, "{text:?} became {other:?}"),
            }
        }

        #[test]
        fn text_stays_equal(text in any::<String>()) {
            prop_assert_eq!(text_as(ColumnKind::Text, &text), Value::String(text.clone()));
        }

        /// Bytes that are not UTF-8, decoded as both backends decode text:
        /// valid sequences stay, each invalid one becomes U+FFFD, nothing
        /// fails.
        #[test]
        fn invalid_utf8_is_replaced_not_fatal(raw in proptest::collection::vec(any::<u8>(), 0..256)) {
            let lossy = String::from_utf8_lossy(&raw);
            let value = text_as(ColumnKind::Text, &lossy);
            survives_the_wire(&value)?;
            match std::str::from_utf8(&raw) {
                Ok(valid) => prop_assert_eq!(value.as_str(), Some(valid)),
                Err(_) => prop_assert!(
                    value.as_str().is_some_and(|t| t.contains(char::REPLACEMENT_CHARACTER))
                ),
            }
        }

        #[test]
        fn bytes_come_back_from_base64(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let value = bytes(&raw);
            survives_the_wire(&value)?;
            let back = value
                .as_str()
                .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok());
            prop_assert_eq!(back, Some(raw));
        }

        /// Any text in a DATE or DATETIME column renders in Open Dental's
        /// format; real dates from 1880 on are kept (the fraction of a
        /// second dropped), anything else is 0001-01-01.
        #[test]
        fn dates_are_kept_or_open_dentals_minimum(
            year in 0i32..=9999,
            day in 1u32..=366,
            second in 0u32..86_400,
            fraction in proptest::option::of("[0-9]{1,6}"),
        ) {
            let Some(d) = NaiveDate::from_yo_opt(year, day) else {
                return Ok(());
            };
            let t = d.and_hms_opt(second / 3600, second / 60 % 60, second % 60).unwrap_or_default();
            let shown = t.format(crate::domain::datetime::DATETIME_FORMAT).to_string();
            let text = match &fraction {
                Some(f) => format!("{shown}.{f}"),
                None => shown.clone(),
            };
            let (want_date, want_time) = if year >= 1880 {
                (d.format("%Y-%m-%d").to_string(), shown)
            } else {
                ("0001-01-01".to_owned(), "0001-01-01 00:00:00".to_owned())
            };
            prop_assert_eq!(date(&text), Value::String(want_date));
            prop_assert_eq!(datetime(&text), Value::String(want_time));
        }

        #[test]
        fn garbage_dates_are_open_dentals_minimum(text in "[0-9: .-]{0,26}|.{0,26}") {
            for value in [date(&text), datetime(&text)] {
                let shown = value.as_str().unwrap_or_default();
                let ok = NaiveDate::parse_from_str(shown, "%Y-%m-%d").is_ok()
                    || NaiveDateTime::parse_from_str(shown, crate::domain::datetime::DATETIME_FORMAT).is_ok();
                prop_assert!(ok, "{:?} -> {:?}", text, shown);
            }
        }

        /// A whole row (any kinds, any values, NULLs) is one JSON object a
        /// receiver reads back with the same keys in the same order.
        #[test]
        fn a_row_of_anything_is_one_json_object(
            cells in proptest::collection::vec(
                (
                    proptest::sample::select(KINDS.to_vec()),
                    proptest::option::of(any::<String>()),
                ),
                0..24,
            ),
        ) {
            let mut row = serde_json::Map::new();
            let mut written = JsonRow::new();
            for (i, (kind, text)) in cells.iter().enumerate() {
                let value = match text {
                    None => Value::Null,
                    Some(t) if *kind == ColumnKind::Bytes => bytes(t.as_bytes()),
                    Some(t) => text_as(*kind, t),
                };
                // Column names may hold anything a schema allows.
                let name = format!("c{i}\"é");
                written.field(&name, &value);
                row.insert(name, value);
            }
            let mut wire = b"[".to_vec();
            wire.extend(written.finish());
            wire.push(b']');
            let back: Vec<serde_json::Map<String, Value>> = serde_json::from_slice(&wire)
                .map_err(|e| TestCaseError::fail(format!("{}: {e}", String::from_utf8_lossy(&wire))))?;
            prop_assert_eq!(back.len(), 1);
            let keys: Vec<&String> = back[0].keys().collect();
            let want: Vec<&String> = row.keys().collect();
            prop_assert_eq!(keys, want);
            prop_assert_eq!(&back[0], &row, "same values as the map would have sent");
        }
    }
}
