//! One file per subcommand. Each takes parsed arguments and returns
//! `anyhow::Result`, the only layer where errors become messages for people.

pub mod check;
pub mod demo;
pub mod migrate;
pub mod run;

use anyhow::Context as _;

use crate::cli::DbArgs;
use crate::db::Database;

/// Connects to `--database-url`, which every command but `demo` needs.
pub async fn connect(args: &DbArgs, max_connections: u32) -> anyhow::Result<Database> {
    let url = args
        .database_url
        .as_deref()
        .context("no database: pass --database-url or set DATABASE_URL")?;
    Database::connect_in_zone(url, max_connections, args.time_zone.as_deref())
        .await
        .context("cannot connect to the database")
}
