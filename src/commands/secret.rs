//! `rowhook secret show|set|rotate N`: a subscription's signing secret.
//!
//! `show` is the one place a secret is printed: it is what the integrator
//! needs to verify signatures. Everything else redacts it.

use anyhow::{bail, Context as _};

use crate::cli::{DbArgs, SecretCommand};
use crate::db::Database;
use crate::domain::secret::SigningSecret;
use crate::domain::subscription::SubscriptionId;

pub async fn run(db_args: &DbArgs, command: &SecretCommand) -> anyhow::Result<()> {
    let db = super::connect(db_args, 1).await?;
    let result = dispatch(&db, command).await;
    db.close().await;
    result
}

async fn dispatch(db: &Database, command: &SecretCommand) -> anyhow::Result<()> {
    let number = match command {
        SecretCommand::Show { subscription }
        | SecretCommand::Set { subscription, .. }
        | SecretCommand::Rotate { subscription, .. } => *subscription,
    };
    let id = SubscriptionId(number);
    if !db.subscription_exists(id).await? {
        bail!("no subscription {number}");
    }
    match command {
        SecretCommand::Show { .. } => {
            let stored = db.secrets(id).await?;
            outln!("{}", stored.current.expose())?;
            if let Some((previous, until)) = &stored.previous {
                let now = chrono::Utc::now().naive_utc();
                if now < *until {
                    eprintln!(
                        "(the previous secret also signs until {until} UTC: {})",
                        previous.expose()
                    );
                }
            }
        }
        SecretCommand::Set { secret, .. } => {
            let secret = SigningSecret::parse(secret).context("the secret was not changed")?;
            db.set_secret(id, &secret).await?;
            outln!("Subscription {number} now signs with the secret given; the old one no longer does.")?;
        }
        SecretCommand::Rotate { grace, .. } => {
            let secret = SigningSecret::generate()?;
            let grace = chrono::Duration::from_std(*grace).context("--grace is too long")?;
            let until = chrono::Utc::now().naive_utc() + grace;
            db.rotate_secret(id, &secret, until).await?;
            outln!("{}", secret.expose())?;
            eprintln!(
                "Subscription {number} signs with this new secret, and with the old one too until {} UTC.",
                until.format(crate::domain::datetime::DATETIME_FORMAT)
            );
        }
    }
    Ok(())
}
