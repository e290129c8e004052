//! Each value rule, on the values Open Dental's schema holds and on the odd
//! ones a backend can still hand over.

use chrono::NaiveDate;

use super::*;
use crate::domain::opendental::enums::{APPT_STATUS, TOOTH_INITIAL_TYPE};
use SourceValue::{DateTime, Float, Int, Null, Text};

/// What `write` appends for `v`, as text.
fn rendered(write: impl Fn(&mut Vec<u8>, SourceValue), v: SourceValue) -> String {
    let mut out = Vec::new();
    write(&mut out, v);
    String::from_utf8(out).unwrap()
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, s)
        .unwrap()
}

#[test]
fn integers_are_numbers_and_null_is_zero() {
    assert_eq!(rendered(write_int, Int(42)), "42");
    assert_eq!(rendered(write_int, Int(-7)), "-7");
    assert_eq!(rendered(write_int, Int(i64::MAX)), "9223372036854775807");
    assert_eq!(rendered(write_int, Null), "0");
    assert_eq!(rendered(write_int, Text("17")), "17");
    assert_eq!(rendered(write_int, Float(3.0)), "3");
    assert_eq!(
        rendered(write_int, Text("18446744073709551615")),
        "18446744073709551615"
    );
    // Not integers at all: kept, not turned into 0.
    assert_eq!(rendered(write_int, Float(2.5)), "2.5");
    assert_eq!(rendered(write_int, Text("abc")), "\"abc\"");
}

#[test]
fn text_is_a_string_and_null_text_is_empty() {
    assert_eq!(rendered(write_text, Text("Crown")), "\"Crown\"");
    assert_eq!(rendered(write_text, Null), "\"\"");
    assert_eq!(rendered(write_text, Text("")), "\"\"");
    assert_eq!(rendered(write_text, Int(5)), "\"5\"");
}

#[test]
fn strings_are_escaped_as_newtonsoft_escapes_them() {
    let cases = [
        ("plain", r#""plain""#),
        (r#"say "hi""#, r#""say \"hi\"""#),
        (r"back\slash", r#""back\\slash""#),
        ("a\nb\rc\td", r#""a\nb\rc\td""#),
        ("\u{8}\u{c}", r#""\b\f""#),
        ("\u{1}\u{1f}", r#""\u0001\u001f""#),
        ("x\u{85}y\u{2028}z\u{2029}", r#""x\u0085y\u2028z\u2029""#),
        // Other non-ASCII text is raw UTF-8, as Newtonsoft leaves it.
        ("Zoë Ångström €", "\"Zoë Ångström €\""),
        ("\u{7f}\u{2027}\u{202a}", "\"\u{7f}\u{2027}\u{202a}\""),
    ];
    for (text, json) in cases {
        let mut out = Vec::new();
        write_json_string(&mut out, text);
        assert_eq!(String::from_utf8(out.clone()).unwrap(), json, "{text:?}");
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, text, "reads back as the same text");
    }
}

#[test]
fn bools_are_the_strings_true_and_false_as_sin_bool_reads_them() {
    for (v, want) in [
        (Int(1), "true"),
        (Int(2), "true"),
        (Int(-1), "true"),
        (Int(0), "false"),
        (Null, "false"),
        (Text("1"), "true"),
        (Text("0"), "false"),
        (Text(""), "false"),
        (Text("False"), "false"),
        (Text("true"), "true"),
    ] {
        assert_eq!(rendered(write_bool, v), format!("\"{want}\""), "{v:?}");
    }
}

#[test]
fn enums_are_names_and_an_undefined_value_is_its_digits() {
    let status = |v| rendered(|out, v| write_enum(out, &APPT_STATUS, v), v);
    assert_eq!(status(Int(1)), "\"Scheduled\"");
    assert_eq!(status(Int(4)), "\"ASAP\"");
    assert_eq!(status(Null), "\"None\"");
    assert_eq!(status(Text("2")), "\"Complete\"");
    assert_eq!(status(Int(9)), "\"9\"");
    assert_eq!(status(Int(-3)), "\"-3\"");
    let initial = |v| rendered(|out, v| write_enum(out, &TOOTH_INITIAL_TYPE, v), v);
    assert_eq!(initial(Int(10)), "\"Text\"");
    assert_eq!(initial(Int(11)), "\"11\"");
}

#[test]
fn dates_are_as_stored_and_zero_or_invalid_is_the_minimum() {
    let cases = [
        (
            Text("2024-03-01 10:00:07"),
            "2024-03-01 10:00:07",
            "2024-03-01",
        ),
        (
            Text("2024-03-01 10:00:07.250"),
            "2024-03-01 10:00:07",
            "2024-03-01",
        ),
        (Text("2024-03-01"), "2024-03-01 00:00:00", "2024-03-01"),
        // No pre-1880 clamp: Open Dental only parses when it reads.
        (
            Text("1850-01-01 08:00:00"),
            "1850-01-01 08:00:00",
            "1850-01-01",
        ),
        (Text("1850-01-01"), "1850-01-01 00:00:00", "1850-01-01"),
        (
            Text("0000-00-00 00:00:00"),
            "0001-01-01 00:00:00",
            "0001-01-01",
        ),
        (Text("0000-00-00"), "0001-01-01 00:00:00", "0001-01-01"),
        (Text("2023-02-30"), "0001-01-01 00:00:00", "0001-01-01"),
        (Text("0000-01-01"), "0001-01-01 00:00:00", "0001-01-01"),
        (Text(""), "0001-01-01 00:00:00", "0001-01-01"),
        (Null, "0001-01-01 00:00:00", "0001-01-01"),
        (Int(0), "0001-01-01 00:00:00", "0001-01-01"),
        (
            DateTime(at(1999, 12, 31, 23, 59, 58)),
            "1999-12-31 23:59:58",
            "1999-12-31",
        ),
        (
            DateTime(at(1, 1, 1, 0, 0, 0)),
            "0001-01-01 00:00:00",
            "0001-01-01",
        ),
    ];
    for (v, datetime, date) in cases {
        assert_eq!(
            rendered(write_datetime, v),
            format!("\"{datetime}\""),
            "{v:?}"
        );
        assert_eq!(rendered(write_date, v), format!("\"{date}\""), "{v:?}");
    }
}

#[test]
fn times_are_dotnet_timespans() {
    let cases = [
        (Text("08:00:00"), "08:00:00"),
        (Text("17:30:05"), "17:30:05"),
        (Text("8:00:00"), "08:00:00"),
        (Text("00:00:00"), "00:00:00"),
        (Text("25:00:00"), "1.01:00:00"),
        (Text("838:59:59"), "34.22:59:59"),
        (Text("-01:30:00"), "-01:30:00"),
        (Text("-00:00:00"), "00:00:00"),
        (Text("12:00:00.500000"), "12:00:00.5000000"),
        (Text("12:00:00.000000"), "12:00:00"),
        (Text("not a time"), "00:00:00"),
        (Text("12:61:00"), "00:00:00"),
        (Null, "00:00:00"),
        (DateTime(at(2024, 1, 2, 9, 5, 7)), "09:05:07"),
    ];
    for (v, want) in cases {
        assert_eq!(rendered(write_time, v), format!("\"{want}\""), "{v:?}");
    }
}

#[test]
fn doubles_always_carry_a_decimal_point() {
    let cases = [
        (0.0, "0.0"),
        (-0.0, "0.0"),
        (12.5, "12.5"),
        (-3.75, "-3.75"),
        (100.0, "100.0"),
        (1234567.89, "1234567.89"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e15, "1E+15"),
        (123456789012345.0, "123456789012345.0"),
        (0.0001, "0.0001"),
        (0.00001, "1E-05"),
        (1.5e-7, "1.5E-07"),
        (-2.5e20, "-2.5E+20"),
    ];
    for (x, want) in cases {
        assert_eq!(rendered(write_double_value, Float(x)), want, "{x:?}");
        let back: f64 = serde_json::from_str(want).unwrap();
        assert_eq!(back, x, "{want} reads back as the same double");
    }
    assert_eq!(rendered(write_double_value, Int(3)), "3.0");
    assert_eq!(rendered(write_double_value, Null), "0.0");
    assert_eq!(rendered(write_double_value, Text("12.50")), "12.5");
    assert_eq!(rendered(write_double_value, Float(f64::NAN)), "\"NaN\"");
    assert_eq!(
        rendered(write_double_value, Float(f64::NEG_INFINITY)),
        "\"-Infinity\""
    );
}

#[test]
fn floats_are_strings_with_seven_significant_digits() {
    let cases = [
        (Float(0.0), "0"),
        (Float(-20.0), "-20"),
        (Int(-20), "-20"),
        (Float(1.5), "1.5"),
        (Float(f64::from(0.1f32)), "0.1"),
        (Text("0.1"), "0.1"),
        (Float(f64::from(1.0f32 / 3.0)), "0.3333333"),
        (Float(1e7), "1E+07"),
        (Float(1234567.0), "1234567"),
        (Float(0.00001), "1E-05"),
        (Null, "0"),
    ];
    for (v, want) in cases {
        assert_eq!(
            rendered(write_float_as_string, v),
            format!("\"{want}\""),
            "{v:?}"
        );
    }
}

#[test]
fn colours_are_red_green_blue_from_the_argb_int() {
    let cases = [
        (Int(0), "0,0,0"),
        (Int(-5), "255,255,251"),
        (Int(-16_711_936), "0,255,0"),
        (Int(16_711_680), "255,0,0"),
        (Int(-16_776_961), "0,0,255"),
        (Int(0x00ff_ffff), "255,255,255"),
        (Int(i64::from(i32::MIN)), "0,0,0"),
        (Null, "0,0,0"),
        (Text("-5"), "255,255,251"),
    ];
    for (v, want) in cases {
        assert_eq!(rendered(write_colour, v), format!("\"{want}\""), "{v:?}");
    }
}

#[test]
fn binary_protocol_dates_become_values_the_date_rules_read() {
    let cases: [(Option<&[u8]>, Option<&str>); 9] = [
        (
            Some(&[7, 232, 7, 3, 5, 6, 7, 8]),
            Some("2024-03-05 06:07:08"),
        ),
        (
            Some(&[11, 232, 7, 3, 5, 6, 7, 8, 64, 226, 1, 0]),
            Some("2024-03-05 06:07:08"),
        ),
        (Some(&[4, 232, 7, 3, 5]), Some("2024-03-05 00:00:00")),
        // 1850: kept, not clamped.
        (Some(&[4, 58, 7, 1, 1]), Some("1850-01-01 00:00:00")),
        (Some(&[0]), Some("0001-01-01 00:00:00")),
        (None, Some("0001-01-01 00:00:00")),
        (
            Some(&[7, 232, 7, 2, 30, 1, 2, 3]),
            Some("0001-01-01 00:00:00"),
        ),
        // Text, from the text protocol: not this shape.
        (Some(b"2024-03-05"), None),
        (Some(&[232, 7, 3, 5, 6, 7, 8]), None),
    ];
    for (raw, want) in cases {
        let got = from_mysql_binary_date(raw).map(|v| rendered(write_datetime, v));
        assert_eq!(got, want.map(|w| format!("\"{w}\"")), "{raw:?}");
    }
    let with_micros = from_mysql_binary_date(Some(&[11, 232, 7, 3, 5, 6, 7, 8, 64, 226, 1, 0]));
    assert_eq!(
        with_micros,
        Some(DateTime(
            NaiveDate::from_ymd_opt(2024, 3, 5)
                .unwrap()
                .and_hms_micro_opt(6, 7, 8, 123_456)
                .unwrap()
        ))
    );
}
