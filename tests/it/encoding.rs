//! Row JSON: one key per column, Open Dental's date formats, numbers as
//! numbers, NULL as null.

use rowhook::receiver::Receiver;
use serde_json::{json, Value};

use crate::helpers::{run_once, settings, Sub, TestDb};

async fn delivered_rows(db: &TestDb, table: &str) -> Vec<Value> {
    let rx = Receiver::start().await.unwrap();
    let url = rx.url("/");
    db.subscribe(Sub {
        table,
        ..Sub::new(&url)
    })
    .await;
    run_once(db, settings()).await;
    rx.accepted().iter().flat_map(|r| r.rows()).collect()
}

#[tokio::test]
async fn mysql_zero_dates_nulls_and_numbers_encode_like_open_dental() {
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
    db.drop().await;
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
    db.drop().await;
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
    db.drop().await;
}
