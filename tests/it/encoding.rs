//! The raw-column body (`--body columns`): one key per column, dates in
//! Open Dental's text format, numbers as numbers, NULL as null, and every
//! odd column type MariaDB (and SQLite) can hold, encoded as
//! `src/db/encode.rs` documents. (Open Dental's own bodies, which differ,
//! are `opendental.rs`'s.)

use crate::helpers::{run_once, settings, Sub, TestDb};
use base64::Engine;
use rowhook::config::Settings;
use rowhook::domain::body::BodyKind;
use rowhook::receiver::Receiver;
use serde_json::{json, Value};

/// Settings that send every column.
fn columns() -> Settings {
    Settings {
        body: BodyKind::Columns,
        ..settings()
    }
}

async fn delivered_rows(db: &TestDb, table: &str) -> Vec<Value> {
    let rx = Receiver::start().await.unwrap();
    let url = rx.url("/");
    db.subscribe(Sub {
        table,
        ..Sub::new(&url)
    })
    .await;
    run_once(db, columns()).await;
    rx.accepted().iter().flat_map(|r| r.rows()).collect()
}

#[tokio::test]
async fn the_column_body_sends_zero_dates_nulls_and_numbers_as_documented() {
    let db = TestDb::mysql().await;
    let stamp = db.ago(30).await;
    db.script(&format!(
        "SET SESSION sql_mode = '';
         INSERT INTO appointment (AptNum, PatNum, AptStatus, Pattern, TimeLocked, Note, AptDateTime,
                                  DateTimeArrived, ColorOverride, ProcDescript, DateTStamp)
         VALUES (1, 7, 2, NULL, 1, NULL, '0000-00-00 00:00:00', '2024-03-01 09:15:00', -5, 'Crown', '{stamp}');
         INSERT INTO patient (PatNum, LName, FName, Birthdate, EstBalance, DateFirstVisit, DateTStamp)
         VALUES (3, 'Molar', NULL, '0000-00-00', 12.5, '1850-01-01', '{stamp}');"
    ))
    .await;

    let appointment = delivered_rows(&db, "Appointment").await;
    let a = &appointment[0];
    assert_eq!(a["AptNum"], json!(1));
    assert_eq!(a["AptStatus"], json!(2));
    assert_eq!(a["Pattern"], Value::Null);
    assert_eq!(a["Note"], Value::Null);
    assert_eq!(a["TimeLocked"], json!(1));
    assert_eq!(a["ColorOverride"], json!(-5));
    assert_eq!(a["ProcDescript"], json!("Crown"));
    assert_eq!(a["AptDateTime"], json!("0001-01-01 00:00:00"));
    assert_eq!(a["DateTimeArrived"], json!("2024-03-01 09:15:00"));
    assert_eq!(a["SecDateTEntry"], json!("0001-01-01 00:00:00"));
    assert_eq!(a["DateTStamp"], json!(stamp));
    let object = a.as_object().unwrap();
    assert_eq!(object.len(), 36, "one key per column");
    assert_eq!(
        object.keys().next().map(String::as_str),
        Some("AptNum"),
        "columns in table order"
    );

    let patient = delivered_rows(&db, "Patient").await;
    let p = &patient[0];
    assert_eq!(p["Birthdate"], json!("0001-01-01"));
    assert_eq!(p["DateFirstVisit"], json!("0001-01-01"));
    assert_eq!(p["FName"], Value::Null);
    assert_eq!(p["EstBalance"], json!(12.5));
    assert_eq!(p["BillingCycleDay"], json!(1));
}

/// `NOT NULL` dates are read in the binary protocol, where sqlx sees a zero
/// date as NULL; a nullable one is cast to text, so NULL stays null and a
/// zero date still becomes Open Dental's minimum.
#[tokio::test]
async fn mysql_nullable_dates_keep_null_apart_from_zero() {
    let db = TestDb::mysql().await;
    let stamp = db.ago(30).await;
    db.script(&format!(
        "SET SESSION sql_mode = '';
         CREATE TABLE visit (VisitNum BIGINT PRIMARY KEY, Seen DATETIME NULL, Due DATE NULL,
                             Made DATETIME NOT NULL, DateTStamp DATETIME NOT NULL,
                             INDEX (DateTStamp)) ENGINE=MyISAM;
         INSERT INTO visit VALUES
           (1, NULL, NULL, '2024-03-05 06:07:08', '{stamp}'),
           (2, '0000-00-00 00:00:00', '0000-00-00', '0000-00-00 00:00:00', '{stamp}'),
           (3, '2024-03-05 06:07:08', '2024-03-05', '1850-01-01 00:00:00', '{stamp}');"
    ))
    .await;

    let rows = delivered_rows(&db, "visit").await;
    let fields: Vec<_> = rows
        .iter()
        .map(|r| (r["Seen"].clone(), r["Due"].clone(), r["Made"].clone()))
        .collect();
    let min = "0001-01-01 00:00:00";
    assert_eq!(
        fields,
        [
            (Value::Null, Value::Null, json!("2024-03-05 06:07:08")),
            (json!(min), json!("0001-01-01"), json!(min)),
            (
                json!("2024-03-05 06:07:08"),
                json!("2024-03-05"),
                json!(min)
            ),
        ]
    );
}

#[tokio::test]
async fn sqlite_rows_encode_the_same_way() {
    let db = TestDb::sqlite().await;
    let stamp = db.ago(30).await;
    db.exec(
        "INSERT INTO patient (PatNum, LName, FName, Birthdate, EstBalance, DateTStamp) VALUES (3, 'Molar', NULL, '0000-00-00', 12.5, ?)",
        &[&stamp],
    )
    .await;

    let rows = delivered_rows(&db, "Patient").await;
    let p = &rows[0];
    assert_eq!(p["PatNum"], json!(3));
    assert_eq!(p["FName"], Value::Null);
    assert_eq!(p["Birthdate"], json!("0001-01-01"));
    assert_eq!(p["EstBalance"], json!(12.5));
    assert_eq!(p["DateTStamp"], json!(stamp));
}

// ---------------------------------------------------------------------------
// Watched rows
// ---------------------------------------------------------------------------

/// One watched row: the column written (`*` for none: every column NULL),
/// the SQL value written to it, what the JSON must hold. Every other
/// column of the row is NULL and must arrive as `null`.
struct Cell {
    column: &'static str,
    sql: String,
    expect: Value,
}

fn cell(column: &'static str, sql: &str, expect: Value) -> Cell {
    Cell {
        column,
        sql: sql.to_owned(),
        expect,
    }
}

fn b64(bytes: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A table with a column of each odd type, MyISAM like most of Open
/// Dental's.
const ODDITY: &str = "CREATE TABLE oddity (
    Id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    DateTStamp timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    c_latin1 varchar(50) CHARACTER SET latin1 NULL,
    c_utf8mb3 varchar(50) CHARACTER SET utf8mb3 NULL,
    c_ucs2 varchar(10) CHARACTER SET ucs2 NULL,
    c_char char(10) NULL,
    c_text mediumtext CHARACTER SET utf8mb4 NULL,
    c_blob longblob NULL,
    c_varbin varbinary(16) NULL,
    c_bin binary(4) NULL,
    c_tinybin tinytext CHARACTER SET binary NULL,
    c_dec decimal(20,2) NULL,
    c_dec65 decimal(65,30) NULL,
    c_bit1 bit(1) NULL,
    c_bit8 bit(8) NULL,
    c_bit64 bit(64) NULL,
    c_enum enum('a','b') NULL,
    c_set set('x','y','z') NULL,
    c_json json NULL,
    c_year year NULL,
    c_time time NULL,
    c_time6 time(6) NULL,
    c_double double NULL,
    c_float float NULL,
    c_ubig bigint unsigned NULL,
    c_big bigint NULL,
    c_tiny tinyint(1) NULL,
    c_date date NULL,
    c_dt datetime NULL,
    c_ts timestamp NULL DEFAULT NULL,
    c_point point NULL,
    c_geom geometry NULL,
    c_inet6 inet6 NULL,
    c_uuid uuid NULL,
    KEY DateTStamp (DateTStamp)

) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4";

fn mysql_cells() -> Vec<Cell> {
    let mb = "é".repeat(1 << 19);
    // MariaDB's geometry: SRID (4 bytes LE), then WKB.
    let point = unhex("000000000101000000000000000000F03F0000000000000040");
    let mut line = vec![0, 0, 0, 0, 1, 2, 0, 0, 0, 2, 0, 0, 0];
    for x in [0f64, 0.0, 1.0, 1.0] {
        line.extend(x.to_le_bytes());
    }
    vec![
        cell("*", "", Value::Null),
        // Text in other character sets: the server converts it.
        cell("c_latin1", "_latin1 X'E9'", json!("é")),
        cell("c_latin1", "_latin1 X'80'", json!("€")),
        cell("c_latin1", "_latin1 X'81'", json!("\u{81}")),
        cell("c_ucs2", "'Ω'", json!("Ω")),
        cell("c_char", "'ab  '", json!("ab")),
        // MariaDB will not store invalid UTF-8: outside strict mode it
        // keeps '?' for each bad sequence; the row arrives as stored.
        cell("c_text", "X'C328E9'", json!("?(?")),
        cell("c_utf8mb3", "'a😀b'", json!("a?b")),
        cell("c_text", "'日本語 😀'", json!("日本語 😀")),
        cell("c_text", "X'6100621B7F'", json!("a\u{0}b\u{1b}\u{7f}")),
        cell("c_text", "''", json!("")),
        cell("c_text", "REPEAT('é', 524288)", json!(mb)),
        cell(
            "c_text",
            "'{\"not\": \"json\"'",
            json!("{\"not\": \"json\""),
        ),
        // Binary: base64.
        cell("c_blob", "X'00FF10'", b64(&[0, 255, 16])),
        cell("c_blob", "REPEAT('x', 1048576)", b64(&vec![b'x'; 1 << 20])),
        cell("c_varbin", "X'DEADBEEF'", b64(&[0xDE, 0xAD, 0xBE, 0xEF])),
        cell("c_varbin", "''", json!("")),
        cell("c_bin", "X'01'", b64(&[1, 0, 0, 0])),
        cell("c_tinybin", "X'E9'", b64(&[0xE9])),
        cell("c_point", "POINT(1, 2)", b64(&point)),
        cell(
            "c_geom",
            "ST_GeomFromText('LINESTRING(0 0,1 1)')",
            b64(&line),
        ),
        // DECIMAL: a number when that is the same value, else exact text.
        cell("c_dec", "12.50", json!(12.5)),
        cell("c_dec", "-0.01", json!(-0.01)),
        cell("c_dec", "0.00", json!(0.0)),
        cell(
            "c_dec",
            "123456789012345678.99",
            json!("123456789012345678.99"),
        ),
        cell(
            "c_dec65",
            "12345678901234567890123456789012345.123456789012345678901234567890",
            json!("12345678901234567890123456789012345.123456789012345678901234567890"),
        ),
        // BIT: its unsigned value.
        cell("c_bit1", "b'1'", json!(1)),
        cell("c_bit1", "b'0'", json!(0)),
        cell("c_bit8", "b'10000001'", json!(129)),
        cell(
            "c_bit64",
            &format!("b'{}'", "1".repeat(64)),
            json!(u64::MAX),
        ),
        // ENUM, SET, JSON: text as the server prints it.
        cell("c_enum", "'b'", json!("b")),
        cell("c_enum", "'zzz'", json!("")),
        cell("c_set", "'z,x'", json!("x,z")),
        cell("c_set", "''", json!("")),
        cell("c_json", "'{\"a\": [1, 2]}'", json!("{\"a\": [1, 2]}")),
        cell("c_json", "'\"\\\\u00e9\"'", json!("\"\\u00e9\"")),
        cell("c_year", "2024", json!(2024)),
        cell("c_year", "0", json!(0)),
        // TIME: text, including negative and past 24 hours.
        cell("c_time", "'-12:30:00'", json!("-12:30:00")),
        cell("c_time", "'838:59:59'", json!("838:59:59")),
        cell("c_time", "'-838:59:59'", json!("-838:59:59")),
        cell("c_time6", "'12:00:00.5'", json!("12:00:00.500000")),
        // Floating point: the same double.
        cell("c_double", "1e300", json!(1e300)),
        cell("c_double", "0.1", json!(0.1)),
        cell("c_double", "1.7976931348623157e308", json!(f64::MAX)),
        cell("c_double", "5e-324", json!(5e-324)),
        cell("c_double", "-0e0", json!(0)),
        cell("c_float", "1.5", json!(1.5)),
        cell("c_float", "3.4e38", json!(3.4e38)),
        // Integers: exact.
        cell("c_ubig", "18446744073709551615", json!(u64::MAX)),
        cell("c_big", "-9223372036854775808", json!(i64::MIN)),
        cell("c_tiny", "1", json!(1)),
        cell("c_tiny", "-128", json!(-128)),
        // Dates: Open Dental's formats; zero, invalid and pre-1880 as its
        // minimum.
        cell("c_date", "'0000-00-00'", json!("0001-01-01")),
        cell("c_date", "'2024-00-00'", json!("0001-01-01")),
        cell("c_date", "'2024-02-29'", json!("2024-02-29")),
        cell("c_date", "'9999-12-31'", json!("9999-12-31")),
        cell(
            "c_dt",
            "'0000-00-00 00:00:00'",
            json!("0001-01-01 00:00:00"),
        ),
        cell(
            "c_dt",
            "'2024-02-30 10:00:00'",
            json!("0001-01-01 00:00:00"),
        ),
        cell(
            "c_dt",
            "'1000-01-01 00:00:00'",
            json!("0001-01-01 00:00:00"),
        ),
        cell(
            "c_dt",
            "'9999-12-31 23:59:59'",
            json!("9999-12-31 23:59:59"),
        ),
        cell(
            "c_dt",
            "'2024-03-10 02:30:00.750'",
            json!("2024-03-10 02:30:00"),
        ),
        cell("c_ts", "0", json!("0001-01-01 00:00:00")),
        // MariaDB's own types: text.
        cell("c_inet6", "'::1'", json!("::1")),
        cell(
            "c_uuid",
            "'123e4567-e89b-12d3-a456-426655440000'",
            json!("123e4567-e89b-12d3-a456-426655440000"),
        ),
    ]
}

/// Runs one subscription over `table`, into which `cells` were written one
/// row each (in key order), and checks every row: its cell as expected,
/// every other column `null`, the run error-free, `DateTimeStart` moved.
async fn check_cells(db: &TestDb, table: &str, cells: &[Cell], key: &str, stamp: &str) -> usize {
    let rx = Receiver::start().await.unwrap();
    let url = rx.url("/");
    let id = db
        .subscribe(Sub {
            table,
            ..Sub::new(&url)
        })
        .await;
    let before = db.watermark(id).await;

    // The test receiver takes bodies up to axum's default 2 MB: one huge
    // row per request.
    let one_huge_row_each = Settings {
        max_request_bytes: 1_500_000,
        ..settings()
    };
    let summary = run_once(db, one_huge_row_each).await;

    assert_eq!(summary.failed, 0, "{:?}: the window completed", db.backend);
    assert!(
        db.watermark(id).await > before,
        "{:?}: DateTimeStart moved",
        db.backend
    );
    let rows: Vec<Value> = rx.accepted().iter().flat_map(|r| r.rows()).collect();
    assert_eq!(
        rows.len(),
        cells.len(),
        "{:?}: every row arrived",
        db.backend
    );
    for (n, (row, c)) in rows.iter().zip(cells).enumerate() {
        assert_eq!(row[key], json!(n + 1), "rows arrive in key order");
        let shown: String = c.sql.chars().take(60).collect();
        let object = row.as_object().unwrap();
        for (column, value) in object {
            if column == key || column == "DateTStamp" {
                continue;
            }
            let want = if column == c.column {
                &c.expect
            } else {
                &Value::Null
            };
            assert_eq!(
                value, want,
                "{:?} {column} in the row for {} = {shown}",
                db.backend, c.column
            );
        }
        assert_eq!(row["DateTStamp"], json!(stamp));
        if c.column != "*" {
            assert!(object.contains_key(c.column), "{}", c.column);
        }
    }
    cells.len()
}

#[tokio::test]
async fn every_odd_mariadb_column_type_arrives_encoded_as_documented() {
    let db = TestDb::mysql().await;
    db.script(ODDITY).await;
    let cells = mysql_cells();
    let stamp = db.ago(30).await;
    // Zero and invalid dates, truncated enums and unconvertible text need a
    // permissive mode, as old Open Dental databases have.
    let mut script = String::from("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'; ");
    for c in &cells {
        if c.column == "*" {
            script.push_str(&format!(
                "INSERT INTO oddity (DateTStamp) VALUES ('{stamp}'); "
            ));
        } else {
            script.push_str(&format!(
                "INSERT INTO oddity ({}, DateTStamp) VALUES ({}, '{stamp}'); ",
                c.column, c.sql
            ));
        }
    }
    script.push_str("SET SESSION sql_mode = DEFAULT;");
    db.script(&script).await;

    let n = check_cells(&db, "oddity", &cells, "Id", &stamp).await;
    println!("{n} MariaDB column cases");
}

fn sqlite_cells() -> Vec<Cell> {
    vec![
        cell("*", "", Value::Null),
        // TEXT holds any bytes: invalid UTF-8 becomes U+FFFD.
        cell(
            "c_text",
            "CAST(X'C328E9' AS TEXT)",
            json!("\u{FFFD}(\u{FFFD}"),
        ),
        cell("c_text", "CAST(X'610062' AS TEXT)", json!("a\u{0}b")),
        cell("c_text", "X'00FF'", b64(&[0, 255])),
        cell(
            "c_text",
            "replace(hex(zeroblob(524288)), '00', 'é')",
            json!("é".repeat(1 << 19)),
        ),
        // Values keep their own storage class, whatever the column says.
        cell("c_int", "9223372036854775807", json!(i64::MAX)),
        cell("c_int", "(-9223372036854775807 - 1)", json!(i64::MIN)),
        cell("c_int", "'abc'", json!("abc")),
        cell("c_int", "3.5", json!(3.5)),
        cell("c_real", "0.1", json!(0.1)),
        cell("c_real", "1e300", json!(1e300)),
        cell("c_real", "5", json!(5)),
        // JSON has no infinity: the text SQLite's double prints as.
        cell("c_real", "9e999", json!("inf")),
        cell("c_real", "-9e999", json!("-inf")),
        cell("c_blob", "X''", json!("")),
        cell("c_blob", "zeroblob(3)", b64(&[0, 0, 0])),
        cell("c_date", "'yesterday'", json!("0001-01-01")),
        cell("c_date", "'2024-02-29'", json!("2024-02-29")),
        cell("c_date", "20240229", json!(20_240_229)),
        cell(
            "c_dt",
            "'2024-03-01 10:00:00.123'",
            json!("2024-03-01 10:00:00"),
        ),
        cell(
            "c_dt",
            "'0000-00-00 00:00:00'",
            json!("0001-01-01 00:00:00"),
        ),
        cell("c_num", "'12.50'", json!(12.5)),
    ]
}

#[tokio::test]
async fn odd_sqlite_values_arrive_and_invalid_utf8_is_replaced_not_fatal() {
    let db = TestDb::sqlite().await;
    db.script(
        "CREATE TABLE oddity (Id INTEGER PRIMARY KEY, DateTStamp TIMESTAMP NOT NULL, \
         c_text TEXT, c_int INTEGER, c_real REAL, c_blob BLOB, c_date DATE, \
         c_dt DATETIME, c_num NUMERIC); \
         CREATE INDEX oddity_stamp ON oddity (DateTStamp);",
    )
    .await;
    let cells = sqlite_cells();
    let stamp = db.ago(30).await;
    let mut script = String::new();
    for c in &cells {
        if c.column == "*" {
            script.push_str(&format!(
                "INSERT INTO oddity (DateTStamp) VALUES ('{stamp}'); "
            ));
        } else {
            script.push_str(&format!(
                "INSERT INTO oddity ({}, DateTStamp) VALUES ({}, '{stamp}'); ",
                c.column, c.sql
            ));
        }
    }
    db.script(&script).await;

    let n = check_cells(&db, "oddity", &cells, "Id", &stamp).await;
    println!("{n} SQLite value cases");
}
