//! `rowhook status`: one line per subscription, from the same tables the
//! daemon reads and writes, with the agent holding its lease where agents
//! share the database.

use chrono::NaiveDateTime;
use serde_json::{json, Value};

use crate::cli::{DbArgs, StatusArgs};
use crate::config::default_workstation;
use crate::domain::datetime;
use crate::domain::health::Health;
use crate::domain::status;
use crate::domain::subscription::SubscriptionRow;

/// Prints the status table (or JSON).
pub async fn run(db_args: &DbArgs, args: &StatusArgs) -> anyhow::Result<()> {
    let default_body = args.default.body;
    let db = super::connect(db_args, 1).await?;
    let snapshot = db.snapshot().await?;
    db.close().await;
    let ours = args.workstation.clone().unwrap_or_else(default_workstation);
    let now = snapshot.clock.local;
    let lines: Vec<Value> = snapshot
        .subscriptions
        .iter()
        .map(|row| {
            let health = snapshot.health.get(&row.id()).cloned().unwrap_or_default();
            let mut line = describe(row, &health, now, &ours);
            line["body"] = json!(super::body_shown(
                row,
                snapshot.bodies.get(&row.id()),
                default_body
            ));
            let holder = status::holder(snapshot.leases.get(&row.id()), snapshot.clock);
            line["holder"] = json!(holder.as_ref().map(status::Holder::shown));
            line["holder_since"] = json!(holder.map(|h| datetime::format(h.since)));
            line
        })
        .collect();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&lines)?)?;
        return Ok(());
    }
    let headers = [
        "SUB",
        "STATE",
        "WORKSTATION",
        "TABLE",
        "BODY",
        "HOLDER",
        "SINCE",
        "POLL",
        "LAG",
        "LAST SUCCESS",
        "LAST FAILURE",
        "FAILS",
        "NEXT RETRY",
        "URL",
        "REASON",
    ];
    let text = |v: &Value, k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let keys = [
        "subscription",
        "state",
        "workstation",
        "table",
        "body",
        "holder",
        "holder_since",
        "polling_seconds",
        "lag",
        "last_success",
        "last_failure",
        "consecutive_failures",
        "next_retry",
        "url",
        "reason",
    ];
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| keys.iter().map(|k| text(l, k)).collect())
        .collect();
    outln!("{}", super::table(&headers, &rows))?;
    Ok(())
}

fn describe(row: &SubscriptionRow, health: &Health, now: NaiveDateTime, ours: &str) -> Value {
    let status = status::describe(row, health, now, ours);
    let lag = status
        .lag
        .map(|d| humantime::format_duration(d).to_string());
    let (state, url, reason) = (status.state.as_str(), status.url, status.reason);
    json!({
        "subscription": row.num,
        "state": state,
        "workstation": row.workstation,
        "table": row.watch_table,
        "polling_seconds": row.polling_seconds,
        "date_time_start": row.date_time_start,
        "lag": lag,
        "last_success": health.last_success_at.map(datetime::format),
        "last_failure": health.last_failure_at.map(datetime::format),
        "last_failure_reason": (!health.last_failure_reason.is_empty()).then(|| health.last_failure_reason.clone()),
        "consecutive_failures": health.consecutive_failures,
        "next_retry": health.next_retry_at.map(datetime::format),
        "url": url,
        "reason": reason,
    })
}
