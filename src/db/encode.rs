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

    /// A property test over random inputs (seeded, so a failure repeats):
    /// the encoder never panics, always yields a value that serializes, and
    /// keeps what it must — integers exactly, decimals as the same value or
    /// as their exact text, bytes through base64, dates in Open Dental's
    /// two formats.
    #[test]
    fn random_values_encode_without_panics_or_loss() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED);
        let alphabet = b"0123456789.-+eE:  abcNaInf";
        for _ in 0..20_000 {
            let len = rng.gen_range(0..24);
            let text: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
                .collect();
            for kind in [
                ColumnKind::Number,
                ColumnKind::Int,
                ColumnKind::Date,
                ColumnKind::DateTime,
                ColumnKind::Text,
            ] {
                let value = text_as(kind, &text);
                assert!(serde_json::to_string(&value).is_ok(), "{kind:?} {text:?}");
            }
            match number(&text) {
                Value::Number(n) => {
                    let parsed: f64 = text.trim_start_matches('+').parse().unwrap_or(f64::NAN);
                    assert_eq!(n.as_f64(), Some(parsed), "{text:?} changed value");
                    if let Ok(i) = text.parse::<i64>() {
                        assert_eq!(n.as_i64(), Some(i), "{text:?}");
                    }
                }
                Value::String(kept) => assert_eq!(kept, text, "not a number: kept as given"),
                other => panic!("{text:?} became {other:?}"),
            }
            let day = date(&text);
            let day = day.as_str().unwrap_or_default();
            assert!(
                NaiveDate::parse_from_str(day, "%Y-%m-%d").is_ok(),
                "{text:?} -> {day}"
            );
            let time = datetime(&text);
            let time = time.as_str().unwrap_or_default();
            assert!(
                NaiveDateTime::parse_from_str(time, crate::DATETIME_FORMAT).is_ok(),
                "{text:?} -> {time}"
            );

            let raw: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect();
            let Value::String(encoded) = bytes(&raw) else {
                panic!("bytes are a string")
            };
            let back = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap();
            assert_eq!(back, raw);
        }
    }

    /// Random decimal texts of every length: exact ones stay numbers with
    /// the same value; ones a double cannot hold come back as the same text.
    #[test]
    fn random_decimals_round_trip() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for _ in 0..20_000 {
            let int_digits = rng.gen_range(1..22);
            let frac_digits = rng.gen_range(0..6);
            let digit = |rng: &mut rand::rngs::StdRng| char::from(b'0' + rng.gen_range(0..10u8));
            let mut text: String = (0..int_digits).map(|_| digit(&mut rng)).collect();
            if frac_digits > 0 {
                text.push('.');
                text.extend((0..frac_digits).map(|_| digit(&mut rng)));
            }
            if rng.gen_bool(0.5) {
                text.insert(0, '-');
            }
            match number(&text) {
                Value::Number(n) => {
                    let exact: f64 = text.parse().unwrap();
                    assert_eq!(n.as_f64(), Some(exact), "{text}");
                }
                Value::String(kept) => assert_eq!(kept, text),
                other => panic!("{text} became {other:?}"),
            }
        }
    }
}
