//! `rowhook migrate`: create what rowhook needs, touching nothing of Open
//! Dental's that already exists.

/// Applies pending migrations and prints what it did.
pub async fn run(db_args: &crate::cli::DbArgs) -> anyhow::Result<()> {
    let db = super::connect(db_args, 1).await?;
    let applied = db.migrate().await?;
    if applied.is_empty() {
        outln!("Database is up to date.")?;
    }
    for name in applied {
        outln!("Applied {name}.")?;
    }
    db.close().await;
    Ok(())
}
