//! `rowhook migrate`: numbered SQL files per backend, embedded in the
//! binary, applied once each and recorded in `rowhook_migrations`.
//!
//! A hand-rolled runner rather than `sqlx::migrate!`, because sqlx's runner
//! records its history in `_sqlx_migrations`, and rowhook must add nothing to
//! a practice database that is not prefixed `rowhook_`.
//!
//! `apisubscription` is created only if missing, with Open Dental's DDL; an
//! Open Dental database keeps its own. `rowhook run` refuses to start while
//! a migration is pending (`Database::check_migrated`).

use sqlx::{MySqlPool, SqlitePool};

use super::DbError;

/// (version, name, SQL) for each backend, in order. Never edit an applied
/// migration: add a new one.
const MYSQL: &[(i64, &str, &str)] = &[
    (
        1,
        "apisubscription",
        include_str!("../../migrations/mysql/0001_apisubscription.sql"),
    ),
    (
        2,
        "rowhook_progress",
        include_str!("../../migrations/mysql/0002_rowhook_progress.sql"),
    ),
    (
        3,
        "health_and_deliveries",
        include_str!("../../migrations/mysql/0003_health_and_deliveries.sql"),
    ),
    (
        4,
        "rowhook_secret",
        include_str!("../../migrations/mysql/0004_rowhook_secret.sql"),
    ),
    (
        5,
        "cursor_fractions",
        include_str!("../../migrations/mysql/0005_cursor_fractions.sql"),
    ),
    (
        6,
        "rowhook_body",
        include_str!("../../migrations/mysql/0006_rowhook_body.sql"),
    ),
    (
        7,
        "rowhook_lease",
        include_str!("../../migrations/mysql/0007_rowhook_lease.sql"),
    ),
];

const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "apisubscription",
        include_str!("../../migrations/sqlite/0001_apisubscription.sql"),
    ),
    (
        2,
        "rowhook_progress",
        include_str!("../../migrations/sqlite/0002_rowhook_progress.sql"),
    ),
    (
        3,
        "health_and_deliveries",
        include_str!("../../migrations/sqlite/0003_health_and_deliveries.sql"),
    ),
    (
        4,
        "rowhook_secret",
        include_str!("../../migrations/sqlite/0004_rowhook_secret.sql"),
    ),
    (
        5,
        "rowhook_body",
        include_str!("../../migrations/sqlite/0005_rowhook_body.sql"),
    ),
];

/// Names of the migrations this binary knows that `done` lacks.
fn pending(all: &[(i64, &str, &str)], done: &[i64]) -> Vec<String> {
    all.iter()
        .filter(|(v, ..)| !done.contains(v))
        .map(|(v, name, _)| format!("{v:04}_{name}"))
        .collect()
}

/// Applied versions, or none when `rowhook_migrations` does not exist yet.
async fn applied_mysql(pool: &MySqlPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM rowhook_migrations")
        .fetch_all(pool)
        .await
        .unwrap_or_default()
}

async fn applied_sqlite(pool: &SqlitePool) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM rowhook_migrations")
        .fetch_all(pool)
        .await
        .unwrap_or_default()
}

pub(super) async fn pending_mysql(pool: &MySqlPool) -> Result<Vec<String>, DbError> {
    Ok(pending(MYSQL, &applied_mysql(pool).await))
}

pub(super) async fn pending_sqlite(pool: &SqlitePool) -> Result<Vec<String>, DbError> {
    Ok(pending(SQLITE, &applied_sqlite(pool).await))
}

pub(super) async fn mysql(pool: &MySqlPool) -> Result<Vec<String>, DbError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS rowhook_migrations (
           version bigint NOT NULL PRIMARY KEY,
           name varchar(255) NOT NULL,
           applied_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .execute(pool)
    .await?;
    let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM rowhook_migrations")
        .fetch_all(pool)
        .await?;
    let mut applied = Vec::new();
    for (version, name, sql) in MYSQL.iter().filter(|(v, ..)| !done.contains(v)) {
        sqlx::raw_sql(sql).execute(pool).await?;
        sqlx::query("INSERT INTO rowhook_migrations (version, name) VALUES (?, ?)")
            .bind(version)
            .bind(name)
            .execute(pool)
            .await?;
        applied.push(format!("{version:04}_{name}"));
    }
    Ok(applied)
}

pub(super) async fn sqlite(pool: &SqlitePool) -> Result<Vec<String>, DbError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS rowhook_migrations (
           version INTEGER NOT NULL PRIMARY KEY,
           name TEXT NOT NULL,
           applied_at TEXT NOT NULL DEFAULT (datetime('now', 'localtime'))
         )",
    )
    .execute(pool)
    .await?;
    let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM rowhook_migrations")
        .fetch_all(pool)
        .await?;
    let mut applied = Vec::new();
    for (version, name, sql) in SQLITE.iter().filter(|(v, ..)| !done.contains(v)) {
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO rowhook_migrations (version, name) VALUES (?, ?)")
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        applied.push(format!("{version:04}_{name}"));
    }
    Ok(applied)
}
