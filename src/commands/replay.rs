//! `rowhook replay N --since TIME`: re-send a subscription's changes. It is
//! Open Dental's own method — move `DateTimeStart` back — so a running
//! daemon sees an operator edit, stops any window in progress at the next
//! batch, and starts again from the new value.

use anyhow::{bail, Context as _};

use crate::cli::{DbArgs, ReplayArgs};
use crate::domain::subscription::SubscriptionId;

pub async fn run(db_args: &DbArgs, args: &ReplayArgs) -> anyhow::Result<()> {
    let since = chrono::NaiveDateTime::parse_from_str(
        args.since.trim(),
        crate::domain::datetime::DATETIME_FORMAT,
    )
    .with_context(|| format!("--since {:?} is not 'YYYY-MM-DD HH:MM:SS'", args.since))?;
    let db = super::connect(db_args, 1).await?;
    let found = db.replay(SubscriptionId(args.subscription), since).await;
    db.close().await;
    if !found? {
        bail!("no subscription {}", args.subscription);
    }
    outln!(
        "Subscription {} will re-send changes since {since} (subject to --max-lookback).",
        args.subscription
    )?;
    Ok(())
}
