//! `rowhook deliveries`: recent attempts from the delivery log.

use serde_json::json;

use crate::cli::{DbArgs, DeliveriesArgs};
use crate::domain::attempt::DeliveryRecord;
use crate::domain::datetime;
use crate::domain::subscription::SubscriptionId;

pub async fn run(db_args: &DbArgs, args: &DeliveriesArgs) -> anyhow::Result<()> {
    let db = super::connect(db_args, 1).await?;
    let records = db
        .deliveries(
            args.subscription.map(SubscriptionId),
            args.failed,
            args.limit,
        )
        .await?;
    db.close().await;
    if args.json {
        print_json(&records)
    } else {
        print_table(&records)?;
        Ok(())
    }
}

fn print_json(records: &[DeliveryRecord]) -> anyhow::Result<()> {
    let list: Vec<_> = records
        .iter()
        .map(|r| {
            json!({
                "attempted_at": datetime::format(r.attempted_at),
                "subscription": r.subscription.0,
                "table": r.watch_table,
                "status": r.status.as_str(),
                "http_status": r.http_status,
                "error_class": r.error_class.map(|c| c.as_str()),
                "error": r.error,
                "rows": r.rows,
                "first_key": r.first_key,
                "last_key": r.last_key,
                "attempt": r.attempt,
                "elapsed_ms": r.elapsed_ms,
                "batch_id": r.batch_id,
                "window_start": datetime::format(r.window_start),
                "window_stop": datetime::format(r.window_stop),
            })
        })
        .collect();
    outln!("{}", serde_json::to_string_pretty(&list)?)?;
    Ok(())
}

fn print_table(records: &[DeliveryRecord]) -> std::io::Result<()> {
    let headers = [
        "ATTEMPTED AT",
        "SUB",
        "TABLE",
        "STATUS",
        "HTTP",
        "ROWS",
        "KEYS",
        "TRY",
        "MS",
        "BATCH",
        "ERROR",
    ];
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let keys = match (r.first_key, r.last_key) {
                (Some(a), Some(b)) => format!("{a}..{b}"),
                _ => "-".to_owned(),
            };
            vec![
                datetime::format(r.attempted_at),
                r.subscription.to_string(),
                r.watch_table.clone(),
                r.status.to_string(),
                r.http_status
                    .map_or_else(|| "-".to_owned(), |s| s.to_string()),
                r.rows.to_string(),
                keys,
                r.attempt.to_string(),
                r.elapsed_ms.to_string(),
                r.batch_id.clone(),
                if r.error.is_empty() {
                    "-".to_owned()
                } else {
                    r.error.clone()
                },
            ]
        })
        .collect();
    outln!("{}", super::table(&headers, &rows))
}
