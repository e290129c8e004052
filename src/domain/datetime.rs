//! Open Dental's datetime text, `yyyy-MM-dd HH:mm:ss`, read and written
//! quickly.
//!
//! Every row rowhook sends carries a few datetimes, and every tick reads a
//! few per subscription. chrono's `format`/`parse_from_str` interpret their
//! format string on every call, which profiling put at 17 % of a backfill's
//! CPU. Here the canonical 19-character form is handled directly; anything
//! else (other widths, years past 9999, text chrono may still accept) falls
//! through to chrono, so the results are chrono's in every case.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

/// The datetime text format Open Dental uses everywhere: in the database
/// literals it writes, in the JSON it sends, and in `DateTimeStart`.
pub const DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// `t` as `yyyy-MM-dd HH:mm:ss`, exactly as
/// `t.format(DATETIME_FORMAT)` would write it.
pub fn format(t: NaiveDateTime) -> String {
    let Ok(year) = u32::try_from(t.year()) else {
        return t.format(DATETIME_FORMAT).to_string();
    };
    if year > 9999 {
        return t.format(DATETIME_FORMAT).to_string();
    }
    let mut out = [0u8; 19];
    let parts = [
        (0, 4, year),
        (5, 2, t.month()),
        (8, 2, t.day()),
        (11, 2, t.hour()),
        (14, 2, t.minute()),
        (17, 2, t.second()),
    ];
    for (at, width, value) in parts {
        write_digits(&mut out[at..at + width], value);
    }
    for (at, sep) in [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')] {
        out[at] = sep;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `d` as `yyyy-MM-dd`, exactly as `d.format("%Y-%m-%d")` would.
pub fn format_date(d: NaiveDate) -> String {
    // The datetime's text up to its space: the date, however wide the year.
    let mut text = format(d.and_time(chrono::NaiveTime::MIN));
    text.truncate(text.find(' ').unwrap_or(text.len()));
    text
}

/// Reads `yyyy-MM-dd HH:mm:ss`, with chrono's result for any text.
pub fn parse(text: &str) -> chrono::ParseResult<NaiveDateTime> {
    match canonical(text) {
        Some(t) => Ok(t),
        None => NaiveDateTime::parse_from_str(text, DATETIME_FORMAT),
    }
}

/// Reads `yyyy-MM-dd`, with chrono's result for any text.
pub fn parse_date(text: &str) -> chrono::ParseResult<NaiveDate> {
    let fast = text.len() == 10 && is_shape(text.as_bytes(), b"dddd-dd-dd");
    let day = fast.then(|| ymd(text.as_bytes())).flatten();
    match day {
        Some(d) => Ok(d),
        None => NaiveDate::parse_from_str(text, "%Y-%m-%d"),
    }
}

/// The canonical form's value, or `None` to let chrono decide.
fn canonical(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() != 19 || !is_shape(b, b"dddd-dd-dd dd:dd:dd") {
        return None;
    }
    let (h, m, s) = (number(&b[11..13]), number(&b[14..16]), number(&b[17..19]));
    ymd(b)?.and_hms_opt(h, m, s)
}

fn ymd(b: &[u8]) -> Option<NaiveDate> {
    let year = i32::try_from(number(&b[0..4])).ok()?;
    NaiveDate::from_ymd_opt(year, number(&b[5..7]), number(&b[8..10]))
}

/// Whether `b` has a digit wherever `shape` has `d`, and `shape`'s byte
/// elsewhere.
fn is_shape(b: &[u8], shape: &[u8]) -> bool {
    b.len() == shape.len()
        && b.iter().zip(shape).all(|(&c, &s)| match s {
            b'd' => c.is_ascii_digit(),
            s => c == s,
        })
}

/// The value of ASCII digits (checked by [`is_shape`]).
fn number(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0, |n, &d| n * 10 + u32::from(d.wrapping_sub(b'0')))
}

fn write_digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        // value % 10 < 10, so the cast cannot truncate.
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any datetime chrono can hold is written as chrono writes it, and
        /// read back to itself.
        #[test]
        fn format_and_parse_agree_with_chrono(secs in -80_000_000_000i64..300_000_000_000i64) {
            let Some(t) = chrono::DateTime::from_timestamp(secs, 0).map(|t| t.naive_utc()) else {
                return Ok(());
            };
            let want = t.format(DATETIME_FORMAT).to_string();
            prop_assert_eq!(format(t), want.clone());
            prop_assert_eq!(
                parse(&want).ok(),
                NaiveDateTime::parse_from_str(&want, DATETIME_FORMAT).ok()
            );
            let day = want.get(..10).unwrap_or_default();
            prop_assert_eq!(format_date(t.date()), t.date().format("%Y-%m-%d").to_string());
            prop_assert_eq!(parse_date(day).ok(), NaiveDate::parse_from_str(day, "%Y-%m-%d").ok());
        }

        /// Any text, canonical-looking or not, reads as chrono reads it.
        #[test]
        fn parse_is_chronos_on_any_text(text in "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}|[0-9: -]{0,21}|.{0,21}") {
            prop_assert_eq!(
                parse(&text).ok(),
                NaiveDateTime::parse_from_str(&text, DATETIME_FORMAT).ok()
            );
            let day = text.get(..10).unwrap_or(&text);
            prop_assert_eq!(parse_date(day).ok(), NaiveDate::parse_from_str(day, "%Y-%m-%d").ok());
        }
    }
}
