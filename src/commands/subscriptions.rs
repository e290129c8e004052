//! `rowhook subscriptions list|add|stop|remove|reactivate|retry|set`:
//! conveniences that write ordinary Open Dental rows (and, for `set`,
//! rowhook's own `rowhook_body`).

use anyhow::{bail, Context as _};
use serde_json::json;

use crate::cli::{AddArgs, BodyChoice, DbArgs, SubscriptionsCommand};
use crate::db::{Database, NewSubscription};
use crate::domain::body::BodyKind;
use crate::domain::subscription::{Parsed, SubscriptionId, SubscriptionRow};

pub async fn run(db_args: &DbArgs, command: &SubscriptionsCommand) -> anyhow::Result<()> {
    let db = super::connect(db_args, 1).await?;
    let result = dispatch(&db, command).await;
    db.close().await;
    result
}

async fn dispatch(db: &Database, command: &SubscriptionsCommand) -> anyhow::Result<()> {
    match command {
        SubscriptionsCommand::List { json, default } => list(db, *json, default.body).await,
        SubscriptionsCommand::Set { subscription, body } => {
            let chosen = match body {
                BodyChoice::Default => None,
                BodyChoice::Chosen(body) => Some(*body),
            };
            let found = db.set_body(SubscriptionId(*subscription), chosen).await?;
            let what = match chosen {
                Some(body) => format!("now receives the {body} body"),
                None => "now receives the daemon's default body (--body)".to_owned(),
            };
            report(found, *subscription, &what)
        }
        SubscriptionsCommand::Add(args) => add(db, args).await,
        SubscriptionsCommand::Stop { subscription } => {
            let found = db.stop_subscription(SubscriptionId(*subscription)).await?;
            report(found, *subscription, "stopped (DateTimeStop set to now)")
        }
        SubscriptionsCommand::Remove { subscription } => {
            let found = db
                .remove_subscription(SubscriptionId(*subscription))
                .await?;
            report(found, *subscription, "removed")
        }
        SubscriptionsCommand::Retry { subscription } => {
            let found = db.retry_now(SubscriptionId(*subscription)).await?;
            report(
                found,
                *subscription,
                "due now: its next retry is not waited for",
            )
        }
        SubscriptionsCommand::Reactivate { subscription } => {
            let found = db.reactivate(SubscriptionId(*subscription)).await?;
            report(
                found,
                *subscription,
                "reactivated: due now, from its DateTimeStart",
            )
        }
    }
}

fn report(found: bool, id: i64, what: &str) -> anyhow::Result<()> {
    if !found {
        bail!("no subscription {id}");
    }
    outln!("Subscription {id} {what}.")?;
    Ok(())
}

async fn list(db: &Database, as_json: bool, default_body: BodyKind) -> anyhow::Result<()> {
    let snapshot = db.snapshot().await?;
    let shown: Vec<[String; 9]> = snapshot
        .subscriptions
        .iter()
        .map(|row| {
            shown(
                row,
                super::body_shown(row, snapshot.bodies.get(&row.id()), default_body),
            )
        })
        .collect();
    if as_json {
        let keys = [
            "subscription",
            "workstation",
            "table",
            "polling_seconds",
            "date_time_start",
            "date_time_stop",
            "url",
            "note",
            "body",
        ];
        let list: Vec<_> = shown
            .iter()
            .map(|cells| {
                keys.iter()
                    .zip(cells)
                    .map(|(k, v)| ((*k).to_owned(), json!(v)))
                    .collect::<serde_json::Map<_, _>>()
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    let headers = [
        "SUB",
        "WORKSTATION",
        "TABLE",
        "POLL",
        "DATETIMESTART",
        "DATETIMESTOP",
        "URL",
        "KEY",
        "BODY",
    ];
    let rows: Vec<Vec<String>> = shown.into_iter().map(Vec::from).collect();
    outln!("{}", super::table(&headers, &rows))?;
    Ok(())
}

/// A row as shown: the URL with any password redacted, the key hidden.
fn shown(row: &SubscriptionRow, body: String) -> [String; 9] {
    let url = match row.parse() {
        Ok(Parsed::Database(s)) => s.endpoint.to_string(),
        _ => "(not a valid URL)".to_owned(),
    };
    let key = if row.customer_key.is_empty() {
        "-"
    } else {
        "(set)"
    };
    [
        row.num.to_string(),
        row.workstation.clone(),
        row.watch_table.clone(),
        row.polling_seconds.to_string(),
        row.date_time_start.clone(),
        row.date_time_stop.clone(),
        url,
        key.to_owned(),
        body,
    ]
}

/// Checks the new row the same way the daemon will, then inserts it.
async fn add(db: &Database, args: &AddArgs) -> anyhow::Result<()> {
    let candidate = SubscriptionRow {
        num: 0,
        endpoint_url: args.url.clone(),
        workstation: args.workstation.clone(),
        customer_key: args.key.clone(),
        watch_table: args.table.clone(),
        polling_seconds: i64::from(args.polling),
        ui_event_type: String::new(),
        date_time_start: "2000-01-01 00:00:00".to_owned(),
        date_time_stop: "0001-01-01 00:00:00".to_owned(),
    };
    let subscription = match candidate
        .parse()
        .context("the subscription would be skipped")?
    {
        Parsed::Database(s) => s,
        Parsed::UiEvent { .. } => bail!("--table is blank"),
    };
    db.resolve(&subscription.target)
        .await
        .context("the table cannot be watched")?;
    let id = db
        .add_subscription(&NewSubscription {
            url: args.url.clone(),
            watch_table: subscription.target.name.clone(),
            polling_seconds: args.polling,
            workstation: args.workstation.clone(),
            customer_key: args.key.clone(),
            note: args.note.clone(),
        })
        .await?;
    outln!(
        "Subscription {id} added: {} -> {}, every {}s.",
        subscription.target.name,
        subscription.endpoint,
        args.polling
    )?;
    Ok(())
}
