//! One file per subcommand. Each takes parsed arguments and returns
//! `anyhow::Result`, the only layer where errors become messages for people.

pub mod check;
pub mod demo;
pub mod migrate;
pub mod run;

use anyhow::Context as _;

use crate::db::Database;

/// Connects to `--database-url`, which every command but `demo` needs.
pub async fn connect(url: Option<&str>, max_connections: u32) -> anyhow::Result<Database> {
    let url = url.context("no database: pass --database-url or set DATABASE_URL")?;
    Database::connect(url, max_connections)
        .await
        .context("cannot connect to the database")
}
