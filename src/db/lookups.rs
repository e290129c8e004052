//! The names Open Dental's bodies look up — definitions by category,
//! provider and clinic abbreviations, site descriptions — read the way Open
//! Dental's caches hold them: every row, hidden ones included.
//!
//! These are small tables (a practice has hundreds of definitions, dozens
//! of providers), read whole, at most once per tick and only when a window
//! task sends Open Dental's body (`window/run.rs`; windows plainly empty
//! are closed by the tick without one, `tick/quiet.rs`). A table
//! this database lacks (the demo's SQLite, an older Open Dental) gives no
//! names: its keys read `""`, as Open Dental's do for a missing row.

use std::collections::HashSet;

use sqlx::Row;

use super::sql::quote;
use super::{Database, DbError};
use crate::domain::opendental::{DefCat, LookupKind, Lookups};

/// The four lookups, each with a category column only for definitions.
const KINDS: [LookupKind; 4] = [
    LookupKind::Definition(DefCat(0)),
    LookupKind::ProviderAbbr,
    LookupKind::ClinicAbbr,
    LookupKind::SiteDescription,
];

impl Database {
    /// Every lookup table this database has, read whole.
    pub async fn lookups(&self) -> Result<Lookups, DbError> {
        let present = self.lookup_tables().await?;
        let mut lookups = Lookups::default();
        for kind in KINDS {
            let source = kind.source();
            if !present.contains(&source.table.to_ascii_lowercase()) {
                continue;
            }
            let mark = match self {
                Self::MySql { .. } => '`',
                Self::Sqlite(_) => '"',
            };
            let category = source.category.map_or("0".to_owned(), |c| {
                format!("CAST({} AS SIGNED)", quote(c, mark))
            });
            let sql = format!(
                "SELECT CAST({} AS SIGNED), CAST({} AS CHAR), {category} FROM {}",
                quote(source.key, mark),
                quote(source.value, mark),
                quote(source.table, mark)
            );
            let rows: Vec<(i64, String, i64)> = with_pool!(self, pool => {
                let mut rows = Vec::new();
                for row in sqlx::query(&sql).fetch_all(pool).await? {
                    // Names are read as bytes: one odd name must not stop
                    // every body.
                    let name: Option<Vec<u8>> = row.try_get_unchecked(1)?;
                    let name = String::from_utf8_lossy(&name.unwrap_or_default()).into_owned();
                    rows.push((row.try_get(0)?, name, row.try_get(2)?));
                }
                rows
            });
            add(&mut lookups, kind, rows);
        }
        Ok(lookups)
    }

    /// Which of the lookup tables exist, lower-cased.
    async fn lookup_tables(&self) -> Result<HashSet<String>, DbError> {
        let sql = match self {
            Self::MySql { .. } => {
                "SELECT CAST(LOWER(TABLE_NAME) AS CHAR) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() \
                 AND LOWER(TABLE_NAME) IN ('definition', 'provider', 'clinic', 'site')"
            }
            Self::Sqlite(_) => {
                "SELECT LOWER(name) FROM sqlite_master WHERE type = 'table' \
                 AND LOWER(name) IN ('definition', 'provider', 'clinic', 'site')"
            }
        };
        let names: Vec<String> = with_pool!(self, pool => {
            sqlx::query_scalar(sql).fetch_all(pool).await?
        });
        Ok(names.into_iter().collect())
    }
}

fn add(lookups: &mut Lookups, kind: LookupKind, rows: Vec<(i64, String, i64)>) {
    for (id, name, category) in rows {
        match kind {
            LookupKind::Definition(_) => {
                lookups.definitions.insert((DefCat(category), id), name);
            }
            LookupKind::ProviderAbbr => {
                lookups.provider_abbr.insert(id, name);
            }
            LookupKind::ClinicAbbr => {
                lookups.clinic_abbr.insert(id, name);
            }
            LookupKind::SiteDescription => {
                lookups.site_description.insert(id, name);
            }
        }
    }
}
