//! The status page: plain HTML made on the server, no script and no asset
//! from elsewhere (an office server may have no internet), refreshing
//! itself every few seconds.
//!
//! It shows what `rowhook status` and `rowhook deliveries` show, from the
//! same queries and the same [`describe`](crate::domain::status::describe);
//! for an attempt, the rows it carried read again from the database (the
//! delivery log keeps the window and the first and last key, never a
//! payload), labelled as current values. The actions call the database
//! functions the CLI commands of the same name call. Every value written
//! into the page is escaped; URLs are shown through `Endpoint`'s `Display`,
//! which hides passwords, and customer keys and signing secrets are never
//! read here.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use chrono::NaiveDateTime;

use super::{param, Reader, Web};
use crate::db::{Body, DbError, Snapshot};
use crate::domain::attempt::DeliveryRecord;
use crate::domain::datetime;
use crate::domain::health::Health;
use crate::domain::progress::Window;
use crate::domain::status::{self, State as SubState};
use crate::domain::subscription::{SubscriptionId, SubscriptionRow};
use crate::domain::watch_table::WatchTarget;

/// Seconds between the page's own refreshes.
const REFRESH_SECONDS: u32 = 5;
/// Attempts listed on the main page and on a subscription's page.
const RECENT: u32 = 30;
/// Pages of a window read at most to find an attempt's rows again.
const MAX_PAGES: usize = 20;

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What links and forms carry for a reader who came with `?token=`.
struct Carry {
    /// `?token=…` (or empty), for links.
    query: String,
    /// The token itself, to fill the forms' token field.
    token: String,
}

impl Carry {
    fn of(reader: &Reader) -> Self {
        match reader {
            Reader::Token(Some(token)) => {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
                Self {
                    query: format!("?token={encoded}"),
                    token: token.clone(),
                }
            }
            _ => Self {
                query: String::new(),
                token: String::new(),
            },
        }
    }
}

fn when(t: Option<NaiveDateTime>) -> String {
    t.map_or_else(|| "-".to_owned(), datetime::format)
}

fn page(title: &str, refresh: bool, body: &str) -> Html<String> {
    let refresh = if refresh {
        format!("<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">")
    } else {
        String::new()
    };
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
         <title>{title}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        title = esc(title)
    ))
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 6px;\
text-align:left;vertical-align:top}td.url{word-break:break-all;min-width:12em}td.act{min-width:8em}th{background:#f0f0f0}.active,.SENT{color:#176f2c}\
.backing-off,.deactivated,.invalid,.FAILED{color:#b00020;font-weight:bold}.SKIPPED{color:#a15c00}\
form{display:inline;margin-right:.4em}pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap}\
.note{color:#555}";

fn failed_page(error: &DbError) -> Response {
    let body = format!(
        "<h1>rowhook</h1><p class=\"FAILED\">Cannot read the database: {}</p>",
        esc(&error.to_string())
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        page("rowhook: database error", true, &body),
    )
        .into_response()
}

/// `GET /`: every subscription and the latest attempts.
pub async fn index(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let reader = match web.reader(&headers, &uri) {
        Ok(reader) => reader,
        Err(refused) => return refused.into_response(),
    };
    let carry = Carry::of(&reader);
    let db = &web.inner.db;
    let (snapshot, recent) =
        match tokio::try_join!(db.snapshot(), db.deliveries(None, false, RECENT)) {
            Ok(read) => read,
            Err(error) => return failed_page(&error),
        };
    let mut body = header(&web, &snapshot);
    body.push_str("<h2>Subscriptions</h2>");
    subscriptions_table(&mut body, &web, &snapshot, &snapshot.subscriptions, &carry);
    body.push_str("<h2>Latest attempts</h2>");
    attempts_table(&mut body, &recent, &carry);
    page("rowhook status", true, &body).into_response()
}

fn header(web: &Web, snapshot: &Snapshot) -> String {
    let ready = match web.inner.metrics.readiness(web.inner.tick) {
        Ok(()) => "<span class=\"active\">ready</span>".to_owned(),
        Err(why) => format!("<span class=\"FAILED\">not ready: {}</span>", esc(&why)),
    };
    format!(
        "<h1>rowhook</h1><p>Workstation <b>{}</b> · server time {} · {ready} · \
         refreshes every {REFRESH_SECONDS} s</p>",
        esc(&web.inner.workstation),
        esc(&datetime::format(snapshot.clock.local)),
    )
}

fn subscriptions_table(
    out: &mut String,
    web: &Web,
    snapshot: &Snapshot,
    rows: &[SubscriptionRow],
    carry: &Carry,
) {
    out.push_str(
        "<table><tr><th>#</th><th>State</th><th>Table</th><th>Held by</th><th>Lag</th>\
         <th>Last success</th><th>Last failure</th><th>Failures</th><th>Next retry</th><th>URL</th>\
         <th>Actions</th></tr>",
    );
    let now = snapshot.clock.local;
    for row in rows {
        let health = snapshot.health.get(&row.id()).cloned().unwrap_or_default();
        let status = status::describe(row, &health, now, &web.inner.workstation);
        let state = status.state.as_str();
        let lag = status.lag.map_or_else(
            || "-".to_owned(),
            |d| humantime::format_duration(d).to_string(),
        );
        let failure = match (&health.last_failure_at, &status.reason) {
            (Some(at), reason) => format!(
                "{}<br>{}",
                esc(&datetime::format(*at)),
                esc(reason.as_deref().unwrap_or_default())
            ),
            (None, Some(reason)) => esc(reason),
            (None, None) => "-".to_owned(),
        };
        let held = status::holder(snapshot.leases.get(&row.id()), snapshot.clock).map_or_else(
            || "-".to_owned(),
            |h| {
                format!(
                    "{}<br>since {}",
                    esc(&h.shown()),
                    esc(&datetime::format(h.since))
                )
            },
        );
        let _ = write!(
            out,
            "<tr id=\"sub-{n}\"><td><a href=\"/subscriptions/{n}{q}\">{n}</a></td>\
             <td class=\"{state}\">{state}</td><td>{table}</td><td class=\"holder\">{held}</td>\
             <td>{lag}</td><td>{success}</td>\
             <td class=\"why\">{failure}</td><td>{fails}</td><td>{retry}</td><td class=\"url\">{url}</td><td class=\"act\">",
            n = row.num,
            q = carry.query,
            table = esc(&row.watch_table),
            lag = esc(&lag),
            success = esc(&when(health.last_success_at)),
            fails = health.consecutive_failures,
            retry = esc(&when(health.next_retry_at)),
            url = esc(status.url.as_deref().unwrap_or("-")),
        );
        actions(out, row.id(), &status.state, &health, carry);
        out.push_str("</td></tr>");
    }
    out.push_str("</table>");
}

/// The forms for one subscription: retry now and reactivate.
fn actions(out: &mut String, id: SubscriptionId, state: &SubState, health: &Health, carry: &Carry) {
    if matches!(
        state,
        SubState::UiEvent | SubState::Invalid | SubState::OtherWorkstation
    ) {
        return;
    }
    if health.next_retry_at.is_some() && health.deactivated_at.is_none() {
        form(out, id, "retry", "Retry now", "", carry);
    }
    if health.deactivated_at.is_some() || health.consecutive_failures > 0 {
        form(out, id, "reactivate", "Reactivate", "", carry);
    }
}

fn form(
    out: &mut String,
    id: SubscriptionId,
    action: &str,
    label: &str,
    extra: &str,
    carry: &Carry,
) {
    let _ = write!(
        out,
        "<form method=\"post\" action=\"/subscriptions/{id}/{action}\" class=\"{action}\">{extra}\
         <input type=\"password\" name=\"token\" placeholder=\"token\" size=\"6\" value=\"{token}\" \
         autocomplete=\"off\"><button type=\"submit\">{label}</button></form>",
        token = esc(&carry.token),
        label = esc(label),
    );
}

fn attempts_table(out: &mut String, records: &[DeliveryRecord], carry: &Carry) {
    if records.is_empty() {
        out.push_str("<p class=\"note\">No attempts in the delivery log.</p>");
        return;
    }
    out.push_str(
        "<table><tr><th>Attempted at</th><th>#</th><th>Table</th><th>Status</th><th>HTTP</th>\
         <th>Rows</th><th>Keys</th><th>Try</th><th>ms</th><th>Error</th></tr>",
    );
    for r in records {
        let keys = match (r.first_key, r.last_key) {
            (Some(a), Some(b)) if !r.batch_id.is_empty() => format!(
                "<a href=\"/subscriptions/{}/batches/{}{}\">{a}..{b}</a>",
                r.subscription,
                esc(&url::form_urlencoded::byte_serialize(r.batch_id.as_bytes())
                    .collect::<String>()),
                carry.query
            ),
            (Some(a), Some(b)) => format!("{a}..{b}"),
            _ => "-".to_owned(),
        };
        let error = match r.error_class {
            Some(class) => format!("{class}: {}", r.error),
            None => r.error.clone(),
        };
        let _ = write!(
            out,
            "<tr><td>{at}</td><td>{sub}</td><td>{table}</td><td class=\"{status}\">{status}</td>\
             <td>{http}</td><td>{rows}</td><td>{keys}</td><td>{attempt}</td><td>{ms}</td><td class=\"why\">{error}</td></tr>",
            at = esc(&datetime::format(r.attempted_at)),
            sub = r.subscription,
            table = esc(&r.watch_table),
            status = r.status.as_str(),
            http = r.http_status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            rows = r.rows,
            attempt = r.attempt,
            ms = r.elapsed_ms,
            error = esc(&error),
        );
    }
    out.push_str("</table>");
}

/// `GET /subscriptions/{id}`: one subscription, its attempts, and replay.
pub async fn subscription(
    State(web): State<Web>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let reader = match web.reader(&headers, &uri) {
        Ok(reader) => reader,
        Err(refused) => return refused.into_response(),
    };
    let carry = Carry::of(&reader);
    let db = &web.inner.db;
    let id = SubscriptionId(id);
    let read = tokio::try_join!(db.snapshot(), db.deliveries(Some(id), false, RECENT));
    let (snapshot, recent) = match read {
        Ok(read) => read,
        Err(error) => return failed_page(&error),
    };
    let Some(row) = snapshot.subscriptions.iter().find(|r| r.id() == id) else {
        return not_found(&format!("No subscription {id}."));
    };
    let mut body = header(&web, &snapshot);
    let _ = write!(
        body,
        "<p><a href=\"/{}\">All subscriptions</a></p>",
        carry.query
    );
    let _ = write!(body, "<h2>Subscription {id}</h2>");
    subscriptions_table(
        &mut body,
        &web,
        &snapshot,
        std::slice::from_ref(row),
        &carry,
    );
    body.push_str("<h3>Replay</h3><p>Re-send changes since a time (moves DateTimeStart back; subject to --max-lookback):</p>");
    let since = "<input name=\"since\" placeholder=\"YYYY-MM-DD HH:MM:SS\" size=\"19\" required>";
    form(&mut body, id, "replay", "Replay", since, &carry);
    let _ = write!(body, "<h3>Recent attempts</h3>");
    attempts_table(&mut body, &recent, &carry);
    page(&format!("rowhook: subscription {id}"), true, &body).into_response()
}

fn not_found(what: &str) -> Response {
    let body = format!(
        "<h1>rowhook</h1><p>{}</p><p><a href=\"/\">All subscriptions</a></p>",
        esc(what)
    );
    (
        StatusCode::NOT_FOUND,
        page("rowhook: not found", false, &body),
    )
        .into_response()
}

/// `GET /subscriptions/{id}/batches/{batch}`: the rows an attempt carried,
/// as they are now.
pub async fn batch(
    State(web): State<Web>,
    Path((id, batch)): Path<(i64, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let reader = match web.reader(&headers, &uri) {
        Ok(reader) => reader,
        Err(refused) => return refused.into_response(),
    };
    let carry = Carry::of(&reader);
    let db = &web.inner.db;
    let id = SubscriptionId(id);
    let records = match db.deliveries(Some(id), false, 1000).await {
        Ok(records) => records,
        Err(error) => return failed_page(&error),
    };
    let Some(record) = records.into_iter().find(|r| r.batch_id == batch) else {
        return not_found(&format!(
            "No recent attempt of batch {batch} for subscription {id}."
        ));
    };
    let rows = match carried_rows(&web, &record).await {
        Ok(rows) => rows,
        Err(why) => vec![format!("(cannot read the rows again: {why})")],
    };
    let mut body = format!(
        "<h1>rowhook</h1><p><a href=\"/subscriptions/{id}{}\">Subscription {id}</a></p>",
        carry.query
    );
    let _ =
        write!(
        body,
        "<h2>Batch {batch}</h2><p>{table}, window {start} to {stop} (UTC), keys {first}..{last}, \
         {n} rows, last attempt {at}: <span class=\"{status}\">{status}</span></p>\
         <p class=\"note\"><b>Current values</b>: these rows are read from the database now. \
         rowhook does not keep what it sent; a row changed since shows its new values, or is \
         missing here if its change moved it out of this window.</p>",
        batch = esc(&record.batch_id),
        table = esc(&record.watch_table),
        start = esc(&datetime::format(record.window_start)),
        stop = esc(&datetime::format(record.window_stop)),
        first = record.first_key.map_or_else(|| "-".to_owned(), |k| k.to_string()),
        last = record.last_key.map_or_else(|| "-".to_owned(), |k| k.to_string()),
        n = record.rows,
        at = esc(&datetime::format(record.attempted_at)),
        status = record.status.as_str(),
    );
    if rows.is_empty() {
        body.push_str("<p>None of these rows is in the window any more.</p>");
    }
    for row in &rows {
        let _ = write!(body, "<pre>{}</pre>", esc(row));
    }
    let title = format!("rowhook: batch {}", record.batch_id);
    page(&title, false, &body).into_response()
}

/// The rows of `record`'s window from its first key to its last, read in
/// the order they were sent, as JSON text.
async fn carried_rows(web: &Web, record: &DeliveryRecord) -> Result<Vec<String>, String> {
    let (Some(first), Some(last)) = (record.first_key, record.last_key) else {
        return Ok(Vec::new());
    };
    let db = &web.inner.db;
    let target = WatchTarget::parse(&record.watch_table).map_err(|e| e.to_string())?;
    let table = db.resolve(&target).await.map_err(|e| e.to_string())?;
    let window = Window {
        start: record.window_start,
        stop: record.window_stop,
    };
    let most = usize::try_from(record.rows).unwrap_or(usize::MAX);
    let (mut rows, mut after, mut inside) = (Vec::new(), None, false);
    for _ in 0..MAX_PAGES {
        let page = db
            .fetch_page(&table, Body::Columns, window, after, 1000)
            .await
            .map_err(|e| e.to_string())?;
        for (row, at) in page.rows.iter().zip(&page.keys) {
            inside |= at.key == first;
            if inside {
                rows.push(String::from_utf8_lossy(row).into_owned());
                if at.key == last || rows.len() >= most {
                    return Ok(rows);
                }
            }
        }
        if !page.more {
            break;
        }
        after = page.last();
    }
    Ok(rows)
}

/// `POST /subscriptions/{id}/retry`: as `rowhook subscriptions retry`.
pub async fn retry(
    State(web): State<Web>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    if let Err(refused) = web.actor(&headers, &form) {
        return refused.into_response();
    }
    let done = web.inner.db.retry_now(SubscriptionId(id)).await;
    acted(
        id,
        done,
        "is due now: its next retry is not waited for",
        &form,
    )
}

/// `POST /subscriptions/{id}/reactivate`: as `rowhook subscriptions reactivate`.
pub async fn reactivate(
    State(web): State<Web>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    if let Err(refused) = web.actor(&headers, &form) {
        return refused.into_response();
    }
    let done = web.inner.db.reactivate(SubscriptionId(id)).await;
    acted(
        id,
        done,
        "is reactivated: due now, from its DateTimeStart",
        &form,
    )
}

/// `POST /subscriptions/{id}/replay` with `since`: as `rowhook replay`.
pub async fn replay(
    State(web): State<Web>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    if let Err(refused) = web.actor(&headers, &form) {
        return refused.into_response();
    }
    let since = param(&form, "since").unwrap_or_default();
    let Ok(at) = datetime::parse(since.trim()) else {
        let why = format!("since {since:?} is not 'YYYY-MM-DD HH:MM:SS'");
        return (
            StatusCode::BAD_REQUEST,
            page("rowhook: replay", false, &esc(&why)),
        )
            .into_response();
    };
    let done = web.inner.db.replay(SubscriptionId(id), at).await;
    acted(
        id,
        done,
        &format!("will re-send changes since {}", datetime::format(at)),
        &form,
    )
}

/// The answer to an action; its link back carries the token a browser's
/// form sent, as the page's own links do.
fn acted(id: i64, done: Result<bool, DbError>, what: &str, form: &[u8]) -> Response {
    let carry = Carry::of(&Reader::Token(param(form, "token")));
    match done {
        Ok(true) => {
            tracing::info!(
                subscription = id,
                action = what,
                "Operator action from the status page."
            );
            let body = format!(
                "<h1>rowhook</h1><p>Subscription {id} {}.</p><p><a href=\"/{}\">Back</a></p>",
                esc(what),
                esc(&carry.query)
            );
            page("rowhook: done", false, &body).into_response()
        }
        Ok(false) => not_found(&format!("No subscription {id}.")),
        Err(error) => failed_page(&error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
