//! One column's value, and how each of Open Dental's value rules writes it
//! as JSON bytes.
//!
//! Every function here appends to a `Vec<u8>` and cannot fail: a value that
//! does not fit its rule (which the 24.3 schema never produces) is written
//! the way Open Dental's own readers (`SIn`/`PIn`) treat unreadable input
//! where that is defined — NULL or blank is 0, `""`, `0001-01-01`,
//! `00:00:00` — and otherwise keeps its information (an integer column
//! holding text sends the text) rather than inventing a number.

use std::io::Write;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use super::enums::EnumTable;

/// One column's value as a backend read it. Backend-neutral and borrowed,
/// so a reader can hand over a row without copying its text.
///
/// * `Null`: SQL NULL.
/// * `Int`: any integer column (`tinyint` bools and enum codes included;
///   a `BIGINT UNSIGNED` past `i64::MAX` as `Text`).
/// * `Float`: `double`/`float` read as a number (a `float` column's value
///   widened to `f64` is fine: the `FloatAsString` rule narrows it back).
/// * `Text`: anything read as text — strings, and also dates, datetimes
///   and `time` as the server prints them (`0000-00-00 00:00:00`,
///   `838:59:59`), numbers as text. Each rule parses what it needs.
/// * `DateTime`: a valid date or datetime already decoded (a `date` as its
///   midnight). Zero and invalid dates cannot be a `NaiveDateTime`: pass
///   them as `Text` or `Null`; both render as Open Dental's minimum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SourceValue<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(&'a str),
    DateTime(NaiveDateTime),
}

impl SourceValue<'_> {
    /// The value as Open Dental's integer readers see it: NULL and blank
    /// are 0; `None` when it is not an integer at all.
    pub fn integer(self) -> Option<i64> {
        match self {
            SourceValue::Null => Some(0),
            SourceValue::Int(i) => Some(i),
            SourceValue::Float(x) if x.fract() == 0.0 && x.abs() < 9.2e18 => Some(x as i64),
            SourceValue::Float(_) | SourceValue::DateTime(_) => None,
            SourceValue::Text(s) if s.trim().is_empty() => Some(0),
            SourceValue::Text(s) => s.trim().parse().ok(),
        }
    }

    /// The value as a double (`SIn.Double`: blank or unreadable is 0).
    fn double(self) -> f64 {
        match self {
            SourceValue::Int(i) => i as f64,
            SourceValue::Float(x) => x,
            SourceValue::Text(s) => s.trim().parse().unwrap_or(0.0),
            SourceValue::Null | SourceValue::DateTime(_) => 0.0,
        }
    }
}

/// A `DATE`/`DATETIME`/`TIMESTAMP` in MySQL's binary protocol (a length
/// byte, then year, month, day[, hour, minute, second[, microseconds]]) as
/// a [`SourceValue`]: a valid value as `DateTime`, a zero or invalid one
/// (and an absent one) as `Null`, which the date rules send as Open
/// Dental's minimum. `None` when `raw` does not have that shape (text from
/// the text protocol: pass it as `Text`). Unlike `db::encode::binary_date`
/// it keeps years before 1880, as Open Dental does when it reads.
pub fn from_mysql_binary_date(raw: Option<&[u8]>) -> Option<SourceValue<'static>> {
    let Some(raw) = raw else {
        return Some(SourceValue::Null);
    };
    let (&len, parts) = raw.split_first()?;
    if parts.len() != usize::from(len) || ![0, 4, 7, 11].contains(&len) {
        return None;
    }
    let part = |i: usize| parts.get(i).copied().map_or(0, u32::from);
    let micros = part(7) | part(8) << 8 | part(9) << 16 | part(10) << 24;
    let year = i32::try_from(part(0) | part(1) << 8).ok()?;
    let at = NaiveDate::from_ymd_opt(year, part(2), part(3))
        .filter(|d| d.year() >= 1)
        .and_then(|d| d.and_hms_micro_opt(part(4), part(5), part(6), micros));
    Some(at.map_or(SourceValue::Null, SourceValue::DateTime))
}

/// A JSON string, escaped as Newtonsoft.Json escapes by default: `"`, `\`,
/// control characters (`\b \t \n \f \r` short, the rest `\u00xx` with
/// lowercase hex), and also U+0085, U+2028 and U+2029, which serde_json
/// leaves raw. Byte for byte what Open Dental writes for the same text.
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (escape, width): (Escape, usize) = match bytes[i] {
            b'"' => (Escape::Short(b'"'), 1),
            b'\\' => (Escape::Short(b'\\'), 1),
            b'\n' => (Escape::Short(b'n'), 1),
            b'\r' => (Escape::Short(b'r'), 1),
            b'\t' => (Escape::Short(b't'), 1),
            0x08 => (Escape::Short(b'b'), 1),
            0x0c => (Escape::Short(b'f'), 1),
            c @ 0..=0x1f => (Escape::Unicode(u32::from(c)), 1),
            0xc2 if bytes.get(i + 1) == Some(&0x85) => (Escape::Unicode(0x85), 2),
            0xe2 if bytes.get(i + 1) == Some(&0x80) => match bytes.get(i + 2) {
                Some(0xa8) => (Escape::Unicode(0x2028), 3),
                Some(0xa9) => (Escape::Unicode(0x2029), 3),
                _ => (Escape::None, 1),
            },
            _ => (Escape::None, 1),
        };
        if !matches!(escape, Escape::None) {
            out.extend_from_slice(&bytes[copied..i]);
            match escape {
                Escape::Short(c) => out.extend_from_slice(&[b'\\', c]),
                Escape::Unicode(c) => {
                    write!(out, "\\u{c:04x}").ok();
                }
                Escape::None => {}
            }
            copied = i + width;
        }
        i += width;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

enum Escape {
    None,
    Short(u8),
    Unicode(u32),
}

/// `Int`: a JSON integer (an unsigned one past `i64::MAX` may come as
/// text). A double or text that is not an integer (never in Open Dental's
/// schema) is written as a double or a string.
pub fn write_int(out: &mut Vec<u8>, v: SourceValue) {
    match (v.integer(), v) {
        // serde_json writes integers with itoa, faster than `write!`; into a
        // Vec it cannot fail.
        (Some(i), _) => {
            serde_json::to_writer(&mut *out, &i).ok();
        }
        (None, SourceValue::Float(x)) => write_double(out, x),
        // A `BIGINT UNSIGNED` past i64, handed over as text.
        (None, SourceValue::Text(s)) if s.trim().parse::<u64>().is_ok() => {
            out.extend_from_slice(s.trim().as_bytes());
        }
        (None, other) => write_text(out, other),
    }
}

/// `Text`: a JSON string; NULL is `""` (Open Dental's strings are never
/// null).
pub fn write_text(out: &mut Vec<u8>, v: SourceValue) {
    match v {
        SourceValue::Null => out.extend_from_slice(b"\"\""),
        SourceValue::Text(s) => write_json_string(out, s),
        SourceValue::Int(i) => {
            write!(out, "\"{i}\"").ok();
        }
        SourceValue::Float(x) => {
            write!(out, "\"{x}\"").ok();
        }
        SourceValue::DateTime(t) => write_datetime(out, SourceValue::DateTime(t)),
    }
}

/// `Bool`: the string `"true"` or `"false"` (`ApiInOut.BoolToString`). As
/// `SIn.Bool` reads it: NULL, blank, `0` and `false` are false, anything
/// else (`2` too) true.
pub fn write_bool(out: &mut Vec<u8>, v: SourceValue) {
    let truth = match v {
        SourceValue::Null => false,
        SourceValue::Int(i) => i != 0,
        SourceValue::Float(x) => x != 0.0,
        SourceValue::Text(s) => !(s.is_empty() || s == "0" || s.eq_ignore_ascii_case("false")),
        SourceValue::DateTime(_) => true,
    };
    out.extend_from_slice(if truth { b"\"true\"" } else { b"\"false\"" });
}

/// `Enum`: the member's name; a value with no member as its decimal digits
/// (`"9"`), as C#'s `Enum.ToString()` does.
pub fn write_enum(out: &mut Vec<u8>, table: &EnumTable, v: SourceValue) {
    match v.integer() {
        Some(i) => match table.name_of(i) {
            Some(name) => write_json_string(out, name),
            None => {
                write!(out, "\"{i}\"").ok();
            }
        },
        None => write_text(out, v),
    }
}

/// The day and time a date rule reads from `v`; `None` for a zero, invalid
/// or absent date, which Open Dental reads as `DateTime.MinValue`. Years
/// before 1880 are kept: the clamp is on Open Dental's write path only.
fn moment(v: SourceValue) -> Option<NaiveDateTime> {
    match v {
        SourceValue::DateTime(t) => Some(t),
        SourceValue::Text(s) => {
            let whole = s.split('.').next().unwrap_or(s);
            crate::domain::datetime::parse(whole).ok().or_else(|| {
                let day = crate::domain::datetime::parse_date(s.get(..10)?).ok()?;
                Some(day.and_time(chrono::NaiveTime::MIN))
            })
        }
        SourceValue::Null | SourceValue::Int(_) | SourceValue::Float(_) => None,
    }
    .filter(|t| (1..=9999).contains(&t.year()))
}

/// `Date`: `"yyyy-MM-dd"`; zero or invalid as `"0001-01-01"`.
pub fn write_date(out: &mut Vec<u8>, v: SourceValue) {
    out.push(b'"');
    put_date(out, moment(v).map(|t| t.date()));
    out.push(b'"');
}

/// `DateTime`: `"yyyy-MM-dd HH:mm:ss"` (fraction dropped); zero or invalid
/// as `"0001-01-01 00:00:00"`.
pub fn write_datetime(out: &mut Vec<u8>, v: SourceValue) {
    let t = moment(v);
    out.push(b'"');
    put_date(out, t.map(|t| t.date()));
    let (h, m, s) = t.map_or((0, 0, 0), |t| (t.hour(), t.minute(), t.second()));
    for (sep, part) in [(b' ', h), (b':', m), (b':', s)] {
        out.push(sep);
        put_digits(out, part, 2);
    }
    out.push(b'"');
}

/// `yyyy-MM-dd`, digit by digit: a body carries several dates a row, and
/// `write!` costs several times this.
fn put_date(out: &mut Vec<u8>, day: Option<NaiveDate>) {
    let (y, m, d) = day.map_or((1, 1, 1), |d| (d.year(), d.month(), d.day()));
    // `moment` keeps years in 1..=9999, so four digits hold every one.
    put_digits(out, u32::try_from(y).unwrap_or(1), 4);
    out.push(b'-');
    put_digits(out, m, 2);
    out.push(b'-');
    put_digits(out, d, 2);
}

/// `value`'s last `width` decimal digits, zero-padded.
fn put_digits(out: &mut Vec<u8>, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10u32.pow(place) % 10;
        out.push(b'0' + digit as u8);
    }
}

/// `Time`: a `time` column as .NET's `TimeSpan.ToString()` writes it,
/// `[-][d.]hh:mm:ss[.fffffff]` (`25:00:00` is `"1.01:00:00"`). NULL or
/// unreadable text is `"00:00:00"`, as `SIn.Time` reads it.
pub fn write_time(out: &mut Vec<u8>, v: SourceValue) {
    let span = match v {
        SourceValue::Text(s) => TimeSpan::parse(s).unwrap_or_default(),
        SourceValue::DateTime(t) => TimeSpan {
            negative: false,
            seconds: u64::from(t.num_seconds_from_midnight()),
            ticks: t.nanosecond().min(999_999_999) / 100,
        },
        SourceValue::Null | SourceValue::Int(_) | SourceValue::Float(_) => TimeSpan::default(),
    };
    out.push(b'"');
    span.write(out);
    out.push(b'"');
}

/// A `TIME` value: sign, whole seconds, and 100 ns ticks (.NET's unit).
#[derive(Debug, Default, PartialEq)]
struct TimeSpan {
    negative: bool,
    seconds: u64,
    ticks: u32,
}

impl TimeSpan {
    /// `[-]h:mm:ss[.f…]`, hours of any width, as MariaDB prints a `TIME`.
    fn parse(text: &str) -> Option<Self> {
        let (negative, rest) = match text.trim().strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.trim()),
        };
        let (whole, fraction) = rest.split_once('.').unwrap_or((rest, ""));
        let mut parts = whole.split(':');
        let mut next = || parts.next()?.parse::<u64>().ok();
        let (h, m, s) = (next()?, next()?, next()?);
        if m > 59 || s > 59 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // .NET keeps seven fractional digits: pad or cut to that.
        let digits: String = fraction.chars().chain("0000000".chars()).take(7).collect();
        Some(Self {
            negative,
            seconds: h.checked_mul(3600)?.checked_add(m * 60 + s)?,
            ticks: digits.parse().ok()?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        if self.negative && (self.seconds > 0 || self.ticks > 0) {
            out.push(b'-');
        }
        let days = self.seconds / 86_400;
        if days > 0 {
            write!(out, "{days}.").ok();
        }
        let rest = self.seconds % 86_400;
        let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
        write!(out, "{h:02}:{m:02}:{s:02}").ok();
        if self.ticks > 0 {
            write!(out, ".{:07}", self.ticks).ok();
        }
    }
}

/// `Double`: a JSON number as Newtonsoft writes a `double`: .NET's `"R"`
/// text, with `.0` added when it has no point or exponent (`0.0`, `12.5`,
/// `1E+15`). NaN and the infinities, which MariaDB cannot store, as the
/// strings Newtonsoft writes for them.
pub fn write_double(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        });
    } else {
        let text = dotnet_round_trip(x);
        out.extend_from_slice(text.as_bytes());
        if !text.contains(['.', 'E']) {
            out.extend_from_slice(b".0");
        }
    }
}

/// `Double` read from a column value (NULL and blank are 0).
pub fn write_double_value(out: &mut Vec<u8>, v: SourceValue) {
    write_double(out, v.double());
}

/// `FloatAsString`: a `float` column as `Single.ToString()` writes it on
/// .NET Framework (seven significant digits, general format): `"0"`,
/// `"-20"`, `"1.5"`, `"1E+07"`.
pub fn write_float_as_string(out: &mut Vec<u8>, v: SourceValue) {
    // Narrowed first: a `float` read as a double carries binary noise
    // (0.1f32 is 0.10000000149…) that seven digits round away.
    let x = v.double() as f32;
    out.push(b'"');
    out.extend_from_slice(dotnet_general(f64::from(x), 7).as_bytes());
    out.push(b'"');
}

/// `Colour`: an ARGB `int` as `"R,G,B"` (alpha dropped), as
/// `Color.FromArgb(int)` reads it: R = bits 16–23, G = 8–15, B = 0–7.
pub fn write_colour(out: &mut Vec<u8>, v: SourceValue) {
    // An `int(11)` column: only its low 32 bits are the colour.
    let argb = v.integer().unwrap_or(0) as u32;
    let (r, g, b) = ((argb >> 16) & 255, (argb >> 8) & 255, argb & 255);
    write!(out, "\"{r},{g},{b}\"").ok();
}

/// .NET Framework's `double.ToString("R")`: fifteen significant digits
/// when they read back as the same double, else seventeen.
fn dotnet_round_trip(x: f64) -> String {
    // Rust's `{:e}` is the shortest text that reads back as `x`; when that
    // has at most 15 digits it is what G15 gives too.
    let shortest = format!("{x:e}");
    let digits = shortest
        .split('e')
        .next()
        .unwrap_or("")
        .bytes()
        .filter(u8::is_ascii_digit)
        .count();
    if digits <= 15 {
        dotnet_general(x, 15)
    } else {
        dotnet_general(x, 17)
    }
}

/// .NET's general format `G<precision>` (invariant culture): at most
/// `precision` significant digits, trailing zeros dropped, fixed-point
/// while the decimal exponent is in (-5, precision), else `d.dddE±xx`.
fn dotnet_general(x: f64, precision: usize) -> String {
    if x == 0.0 {
        // .NET Framework writes no sign on negative zero.
        return "0".to_owned();
    }
    let scientific = format!("{:.*e}", precision.saturating_sub(1), x.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let sign = if x < 0.0 { "-" } else { "" };
    let fixed = exponent > -5 && exponent < i32::try_from(precision).unwrap_or(i32::MAX);
    if fixed {
        format!("{sign}{}", place_point(digits, exponent))
    } else {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{first}{point}{rest}E{exp_sign}{:02}", exponent.abs())
    }
}

/// Significant `digits` (no point) with the decimal exponent `exponent`,
/// written in fixed-point.
fn place_point(digits: &str, exponent: i32) -> String {
    let whole_len = exponent + 1;
    if whole_len <= 0 {
        let zeros = "0".repeat(usize::try_from(-whole_len).unwrap_or(0));
        return format!("0.{zeros}{digits}");
    }
    let whole_len = usize::try_from(whole_len).unwrap_or(0);
    if digits.len() <= whole_len {
        format!("{digits}{}", "0".repeat(whole_len - digits.len()))
    } else {
        let (whole, fraction) = digits.split_at(whole_len);
        format!("{whole}.{fraction}")
    }
}

#[cfg(test)]
mod tests;
