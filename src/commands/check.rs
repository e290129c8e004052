//! `rowhook check`: validate every subscription this agent would process,
//! one line each, without sending anything.

use chrono::NaiveDateTime;

use crate::cli::{AgentArgs, DbArgs};
use crate::db::Database;
use crate::domain::subscription::{Parsed, SubscriptionRow};

/// Prints one line per subscription; returns how many are wrong.
pub async fn run(db_args: &DbArgs, args: &AgentArgs) -> anyhow::Result<usize> {
    let settings = args.settings();
    let default_body = settings.body;
    let db = super::connect(db_args, 2).await?;
    let snapshot = db.snapshot().await?;
    let (now, rows) = (snapshot.clock.local, &snapshot.subscriptions);
    // Say where the name came from: a subscription meant for this machine
    // is skipped silently when the default is not the name it was given.
    let source = if args.workstation.is_some() {
        "from --workstation, ROWHOOK_WORKSTATION or the config file"
    } else if cfg!(windows) {
        "this computer's NetBIOS name, the default"
    } else {
        "this machine's hostname, the default"
    };
    outln!(
        "workstation {:?} ({source}), server time {now}, {} subscription(s)",
        settings.workstation,
        rows.len()
    )?;
    let mut wrong = 0;
    for row in rows {
        let Checked {
            ok,
            mut line,
            watched,
        } = check_one(&db, row, now, &settings.workstation).await;
        if watched {
            let body = super::body_shown(row, snapshot.bodies.get(&row.id()), default_body);
            line.push_str(&format!(", body {body}"));
        }
        wrong += usize::from(!ok);
        outln!(
            "{} subscription {}: {line}",
            if ok { "ok  " } else { "FAIL" },
            row.num
        )?;
    }
    db.close().await;
    Ok(wrong)
}

/// What `check` says of one row.
struct Checked {
    /// False only for a row that cannot run (rows for other workstations,
    /// UI events and expired rows are reported but are not errors).
    ok: bool,
    line: String,
    /// Its table was found: this agent would deliver it, in some body.
    watched: bool,
}

impl Checked {
    fn said(ok: bool, line: String) -> Self {
        Self {
            ok,
            line,
            watched: false,
        }
    }
}

async fn check_one(
    db: &Database,
    row: &SubscriptionRow,
    now: NaiveDateTime,
    ours: &str,
) -> Checked {
    let subscription = match row.parse() {
        Ok(Parsed::Database(s)) => *s,
        Ok(Parsed::UiEvent { .. }) => {
            return Checked::said(
                true,
                "UI-event subscription (blank WatchTable), ignored".into(),
            )
        }
        Err(error) => return Checked::said(false, error.to_string()),
    };
    if !subscription.workstation.matches(ours) {
        return Checked::said(
            true,
            format!("for workstation {:?}, not this one", row.workstation),
        );
    }
    if subscription.is_expired(now) {
        return Checked::said(true, format!("expired at {}", row.date_time_stop));
    }
    match db.resolve(&subscription.target).await {
        Err(error) => Checked::said(
            false,
            format!("WatchTable {:?}: {error}", subscription.target.name),
        ),
        Ok(table) => {
            // A missing index is slow, not wrong: warn, do not fail.
            let index = if table.change_column_indexed {
                "indexed"
            } else {
                "WARNING not indexed: every poll scans the table"
            };
            let stamp = if table.change_column_auto {
                ""
            } else {
                " WARNING the server does not set this column on update: changed rows may never be sent"
            };
            let line = format!(
                "{} -> {}.{} ({index}){stamp}, every {}s, from {}, to {}",
                subscription.target.name,
                table.table,
                table.change_column,
                subscription.polling.as_secs(),
                row.date_time_start,
                subscription.endpoint
            );
            Checked {
                ok: true,
                line,
                watched: true,
            }
        }
    }
}
