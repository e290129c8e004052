//! The demo's practice (`rowhook demo`): SQLite tables shaped like Open
//! Dental's, a few sample rows, the subscriptions, and a front desk that
//! changes rows every second. Kept here so that the demo command, like every
//! other, runs no SQL of its own.

use super::{Database, DbError};

const SCHEMA: &str = include_str!("../../fixtures/sqlite/schema.sql");
const SAMPLE: &str = include_str!("../../fixtures/sqlite/sample.sql");

/// The front desk's changes, one list per step of four: a patient
/// arrives; an appointment is confirmed; a payment is taken and a follow-up
/// booked; an appointment is deleted (its history row first, as Open Dental
/// writes it). `?1` is the step's number.
const FRONT_DESK: [&[&str]; 4] = [
    &["INSERT INTO patient (LName, FName, Birthdate) VALUES ('Newcomer', 'Nat', '1990-01-0' || (?1 % 9 + 1))"],
    &["UPDATE appointment SET Confirmed = ?1 WHERE AptNum = 1"],
    &["INSERT INTO payment (PayDate, PayAmt, PayNote, PatNum) VALUES (date('now','localtime'), 20 + ?1, 'Visit', 2)",
      "INSERT INTO appointment (PatNum, AptStatus, Op, Note, AptDateTime) VALUES (2, 1, 1, 'Follow-up ' || ?1, datetime('now','localtime','+7 days'))"],
    &["INSERT INTO histappointment (HistApptAction, AptNum, PatNum, AptStatus, Note, AptDateTime) \
       SELECT 4, AptNum, PatNum, AptStatus, Note, AptDateTime FROM appointment WHERE AptNum = (SELECT MAX(AptNum) FROM appointment) AND AptNum > 2",
      "DELETE FROM appointment WHERE AptNum = (SELECT MAX(AptNum) FROM appointment) AND AptNum > 2"],
];

impl Database {
    /// Creates the demo's tables and rowhook's own, and adds the sample
    /// rows. SQLite only: the demo never touches a practice's database.
    pub async fn create_demo_practice(&self) -> Result<(), DbError> {
        let Self::Sqlite(pool) = self else {
            return Err(DbError::UnsupportedUrl(
                "the demo runs on SQLite only".into(),
            ));
        };
        sqlx::raw_sql(SCHEMA).execute(pool).await?;
        self.migrate().await?;
        sqlx::raw_sql(SAMPLE).execute(pool).await?;
        Ok(())
    }

    /// Subscribes `url` to `watch_table`, from a minute ago, for any
    /// workstation.
    pub async fn add_demo_subscription(&self, watch_table: &str, url: &str) -> Result<(), DbError> {
        let Self::Sqlite(pool) = self else {
            return Err(DbError::UnsupportedUrl(
                "the demo runs on SQLite only".into(),
            ));
        };
        sqlx::query(
            "INSERT INTO apisubscription (EndPointUrl, Workstation, CustomerKey, WatchTable, \
             PollingSeconds, UiEventType, DateTimeStart, DateTimeStop, Note) \
             VALUES (?, '', 'demo-key', ?, 1, '', datetime('now', 'localtime', '-1 minute'), \
             '0001-01-01 00:00:00', 'rowhook demo')",
        )
        .bind(url)
        .bind(watch_table)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// Step `n` of the front desk: runs each of its statements, and returns
    /// the errors of those that failed (the others still ran).
    pub async fn demo_front_desk(&self, n: i64) -> Vec<DbError> {
        let Self::Sqlite(pool) = self else {
            return vec![DbError::UnsupportedUrl(
                "the demo runs on SQLite only".into(),
            )];
        };
        let mut errors = Vec::new();
        let step = usize::try_from(n.rem_euclid(4)).unwrap_or_default();
        for sql in FRONT_DESK[step] {
            if let Err(error) = sqlx::query(sql).bind(n).execute(pool).await {
                errors.push(error.into());
            }
        }
        errors
    }
}
