//! The HTTP endpoint (`--http`) of the real binary: metrics after
//! deliveries and failures, readiness while the database is away, the
//! token on actions, the page in headless Chromium, and no secret on any
//! page or metric.

use std::path::PathBuf;
use std::time::Duration;

use rowhook::receiver::Behaviour;

use crate::app::TestApp;
use crate::cut_proxy::CutProxy;
use crate::helpers::{eventually, run, Process, Sub, PATIENCE};

const TOKEN: &str = "http-t0ken-for-tests";

/// A daemon with `--http 127.0.0.1:0` and the address it reported.
struct Served {
    process: Process,
    base: String,
}

impl Served {
    async fn start(app: &TestApp, extra: &[&str]) -> Self {
        let mut args = vec!["run", "--http", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let process = Process::start(&app.db, &args);
        let mut base = None;
        let found = eventually(|| {
            base = listening(&process.log());
            std::future::ready(base.is_some())
        })
        .await;
        assert!(
            found,
            "the endpoint says where it listens:\n{}",
            process.log()
        );
        Self {
            process,
            base: base.unwrap_or_default(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> (u16, String) {
        answer(client().get(self.url(path))).await
    }

    async fn get_with_token(&self, path: &str) -> (u16, String) {
        answer(client().get(self.url(path)).bearer_auth(TOKEN)).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        answer(client().post(self.url(path)).form(form)).await
    }

    async fn stop(mut self) {
        self.process.signal("-TERM").await;
        assert_eq!(
            self.process.exit_code().await,
            Some(0),
            "{}",
            self.process.log()
        );
    }
}

/// Gets `path` until `ok` holds of the answer, up to [`PATIENCE`];
/// returns whether it did and the last body.
async fn until(served: &Served, path: &str, ok: impl Fn(u16, &str) -> bool) -> (bool, String) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, text) = served.get(path).await;
        if ok(status, &text) {
            return (true, text);
        }
        if tokio::time::Instant::now() >= deadline {
            return (false, text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `http://ADDR` from the "HTTP endpoint listening" line.
fn listening(log: &str) -> Option<String> {
    let line = log
        .lines()
        .find(|l| l.contains("HTTP endpoint listening"))?;
    let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
    Some(format!("http://{addr}"))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.expect("the endpoint answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// The value of the series whose line starts with `name{labels`.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

fn token_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "rowhook_http_token_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::write(&path, format!("{TOKEN}\n")).expect("the token file is written");
    path
}

#[tokio::test]
async fn metrics_count_failures_by_class_and_growing_lag_and_recovery_resets_them() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    rx.set(Behaviour::Status(500));
    db.insert_appointments(5, &db.ago(30).await).await;
    let id = app.subscribe_to("/").await;
    let served = Served::start(&app, &["--retry-base", "1s", "--retry-max", "1s"]).await;
    let labels = format!("{{subscription=\"{id}\",table=\"Appointment\"");
    let series = |name: &str| format!("rowhook_{name}{labels}");
    let failed = format!("rowhook_failed_attempts_total{labels},class=\"non-200\"}}");

    let (failing, text) = until(&served, "/metrics", |_, text| {
        value(text, &failed) >= Some(2.0)
            && value(text, &series("consecutive_failures")) >= Some(2.0)
    })
    .await;
    assert!(failing, "failures counted by class:\n{text}");
    assert_eq!(
        value(
            &text,
            &format!("rowhook_failed_attempts_total{labels},class=\"timeout\"}}")
        ),
        None,
        "a class that never happened has no series"
    );
    let lag_then = value(&text, &series("lag_seconds")).expect("a lag");
    let (grown, text) = until(&served, "/metrics", |_, text| {
        value(text, &series("lag_seconds")) > Some(lag_then + 1.0)
    })
    .await;
    assert!(
        grown,
        "the lag grows while failing (was {lag_then}):\n{text}"
    );
    assert!(value(&text, "rowhook_ticks_total") > Some(1.0), "{text}");
    assert!(
        text.contains("rowhook_request_duration_seconds_bucket"),
        "{text}"
    );

    rx.set(Behaviour::Accept);
    let (recovered, text) = until(&served, "/metrics", |_, text| {
        value(text, &series("rows_delivered_total")) == Some(5.0)
            && value(text, &series("consecutive_failures")) == Some(0.0)
            && value(text, &series("backing_off")) == Some(0.0)
            && value(text, &series("lag_seconds")).is_some_and(|lag| lag < lag_then)
    })
    .await;
    assert!(recovered, "recovery resets failures and lag:\n{text}");
    assert_eq!(value(&text, &series("batches_delivered_total")), Some(1.0));
    assert!(
        !text.contains("key123") && !text.contains(&rx.url("/")),
        "{text}"
    );

    // On loopback without a token, pages are open and actions are not.
    assert_eq!(served.get("/healthz").await.0, 200);
    assert_eq!(served.get("/").await.0, 200);
    let (status, _) = served
        .post(&format!("/subscriptions/{id}/retry"), &[])
        .await;
    assert_eq!(status, 403, "no token configured: no action");
    served.stop().await;
}

#[tokio::test]
async fn readyz_is_503_with_a_reason_while_the_database_is_away_and_200_after() {
    let app = TestApp::mysql().await;
    let proxy = CutProxy::start(&app.db.url).await;
    let served = Served::start(&app, &["--database-url", &proxy.url]).await;

    let (ready, body) = until(&served, "/readyz", |status, _| status == 200).await;
    assert!(ready, "ready once a tick has read the database: {body}");
    proxy.cut();
    let (unready, body) = until(&served, "/readyz", |status, _| status == 503).await;
    assert!(unready, "503 while the database is away: {body}");
    assert!(
        body.contains("the last tick that read the database was"),
        "{body}"
    );
    assert!(body.contains("last database error"), "{body}");
    assert_eq!(
        served.get("/healthz").await.0,
        200,
        "the process is still up"
    );
    let (_, metrics) = served.get("/metrics").await;
    assert!(
        value(&metrics, "rowhook_database_errors_total") >= Some(1.0),
        "{metrics}"
    );

    proxy.restore();
    let (ready, body) = until(&served, "/readyz", |status, _| status == 200).await;
    assert!(ready, "ready again once the database is back: {body}");
    served.stop().await;
}

#[tokio::test]
async fn binding_beyond_loopback_without_a_token_refuses_to_start() {
    let (code, _, err) = run(None, &["run", "--http", "0.0.0.0:0"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is not a loopback address") && err.contains("--http-token-file"),
        "{err}"
    );
}

/// Runs headless Chromium on `url`; returns the DOM it rendered.
async fn chromium(args: &[&str], url: &str) -> String {
    let profile = std::env::temp_dir().join(format!("rowhook_chromium_{}", rand::random::<u32>()));
    let run = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(PATIENCE * 2, run)
        .await
        .expect("chromium finished in time")
        .expect("Debian's `chromium` is installed (apt-get install -y chromium)");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn the_page_in_chromium_shows_a_failing_subscription_and_its_retry_needs_the_token() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    rx.set(Behaviour::Status(503));
    db.insert_appointments(3, &db.ago(30).await).await;
    let id = app.subscribe_to("/").await;
    let tokens = token_file();
    let served = Served::start(
        &app,
        &[
            "--http-token-file",
            tokens.to_str().unwrap(),
            "--retry-base",
            "10m",
        ],
    )
    .await;
    let next_retry = || async {
        db.text(
            "SELECT CAST(next_retry_at AS CHAR) FROM rowhook_health WHERE subscription_num = ?",
            &[&id.to_string()],
        )
        .await
    };
    assert!(
        eventually(|| async { next_retry().await.is_some() }).await,
        "the failure backs off"
    );
    let sent_before = rx.requests().len();

    // Pages need the token too, here (a header, or ?token= for a browser).
    assert_eq!(served.get("/").await.0, 401);
    assert_eq!(served.get("/metrics").await.0, 401);
    assert_eq!(served.get("/readyz").await.0, 200, "probes stay open");
    let (status, page) = served.get_with_token("/").await;
    assert_eq!(status, 200, "{page}");

    let dom = chromium(&["--dump-dom"], &served.url(&format!("/?token={TOKEN}"))).await;
    let row = dom
        .split(&format!("<tr id=\"sub-{id}\">"))
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("subscription {id} is listed:\n{dom}"));
    assert!(row.contains("backing-off"), "shown as failing: {row}");
    assert!(row.contains("HTTP 503"), "with its reason: {row}");
    let retry = format!("action=\"/subscriptions/{id}/retry\"");
    assert!(row.contains(&retry), "a Retry form: {row}");
    let holder = format!("<td class=\"holder\">{}:", crate::helpers::WORKSTATION);
    assert!(row.contains(&holder), "the agent holding its lease: {row}");
    if let Ok(path) = std::env::var("ROWHOOK_SCREENSHOT") {
        chromium(
            &[&format!("--screenshot={path}"), "--window-size=1200,800"],
            &served.url(&format!("/?token={TOKEN}")),
        )
        .await;
    }

    let path = format!("/subscriptions/{id}/retry");
    assert_eq!(served.post(&path, &[]).await.0, 401, "no token: refused");
    assert_eq!(served.post(&path, &[("token", "wrong")]).await.0, 401);
    assert!(
        next_retry().await.is_some(),
        "a refused action changes nothing"
    );
    assert!(rx.requests().len() == sent_before, "and sends nothing");
    let (status, done) = served.post(&path, &[("token", TOKEN)]).await;
    assert_eq!(status, 200, "{done}");
    let again = rx.wait_until(PATIENCE, |r| r.len() > sent_before).await;
    assert!(again, "Retry now makes it due at once, not in 10 minutes");
    served.stop().await;
    let _ = std::fs::remove_file(tokens);
}

#[tokio::test]
async fn secrets_appear_in_no_page_and_no_metric() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    rx.set(Behaviour::Status(500));
    db.insert_appointments(2, &db.ago(30).await).await;
    let url = rx
        .url("/hook?token=1")
        .replace("http://", "http://webuser:url-pa55word@");
    let id = db
        .subscribe(Sub {
            key: "customer-key-s3cret",
            ..Sub::new(&url)
        })
        .await;
    let (_, whsec, _) = run(Some(&db.url), &["secret", "show", &id.to_string()]).await;
    let whsec = whsec.trim().to_owned();
    assert!(whsec.starts_with("whsec_"), "{whsec}");
    let served = Served::start(&app, &[]).await;
    assert!(
        eventually(|| async {
            db.text(
                "SELECT batch_id FROM rowhook_delivery WHERE subscription_num = ?",
                &[&id.to_string()],
            )
            .await
            .is_some()
        })
        .await
    );
    let batch = db
        .text(
            "SELECT batch_id FROM rowhook_delivery WHERE subscription_num = ?",
            &[&id.to_string()],
        )
        .await
        .unwrap();
    let mut pages = Vec::new();
    for path in [
        "/".to_owned(),
        "/metrics".to_owned(),
        "/readyz".to_owned(),
        format!("/subscriptions/{id}"),
        format!("/subscriptions/{id}/batches/{batch}"),
    ] {
        let (status, text) = served.get(&path).await;
        assert_eq!(status, 200, "{path}: {text}");
        pages.push((path, text));
    }
    let rows = &pages[4].1;
    assert!(
        rows.contains("Current values") && rows.contains("AptNum"),
        "the batch's rows, read again: {rows}"
    );
    assert!(
        pages[0].1.contains("webuser"),
        "the URL is shown, redacted: {}",
        pages[0].1
    );
    for (path, text) in &pages {
        for secret in ["url-pa55word", "customer-key-s3cret", &whsec, &whsec[6..]] {
            assert!(
                !text.contains(secret),
                "{secret:?} leaked in {path}:\n{text}"
            );
        }
    }
    served.stop().await;
}

/// The page's Retry now is `rowhook subscriptions retry`: the next retry
/// goes, the failure count stays.
#[tokio::test]
async fn subscriptions_retry_clears_the_wait_and_keeps_the_count() {
    let app = TestApp::mysql().await;
    let db = &app.db;
    let id = app.subscribe_to("/").await.to_string();
    db.exec(
        "INSERT INTO rowhook_health (subscription_num, consecutive_failures, last_failure_at, \
         last_failure_reason, next_retry_at) VALUES (?, 3, NOW(), 'HTTP 500', NOW() + INTERVAL 1 HOUR)",
        &[&id],
    )
    .await;
    let (code, out, err) = run(Some(&db.url), &["subscriptions", "retry", &id]).await;
    assert_eq!(code, 0, "{out}{err}");
    let health = db
        .text(
            "SELECT CONCAT(consecutive_failures, ' ', COALESCE(next_retry_at, 'none')) \
             FROM rowhook_health WHERE subscription_num = ?",
            &[&id],
        )
        .await;
    assert_eq!(health.as_deref(), Some("3 none"));
    let (code, _, err) = run(Some(&db.url), &["subscriptions", "retry", "999999"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("no subscription 999999"), "{err}");
}

#[tokio::test]
async fn an_open_transaction_holding_windows_back_is_counted() {
    let app = TestApp::mysql().await;
    let db = &app.db;
    db.script("ALTER TABLE appointment ENGINE = InnoDB").await;
    app.subscribe_to("/").await;
    let served = Served::start(&app, &[]).await;
    let (ticked, text) = until(&served, "/metrics", |_, text| {
        value(text, "rowhook_ticks_total") >= Some(2.0)
    })
    .await;
    assert!(ticked, "{text}");
    assert_eq!(
        value(&text, "rowhook_windows_held_back_total"),
        Some(0.0),
        "{text}"
    );
    let writer = sqlx::MySqlPool::connect(&db.url).await.expect("a writer");
    let mut open = writer.begin().await.unwrap();
    sqlx::query("INSERT INTO appointment (PatNum, Note) VALUES (1, 'open')")
        .execute(&mut *open)
        .await
        .unwrap();
    let (held, text) = until(&served, "/metrics", |_, text| {
        value(text, "rowhook_windows_held_back_total") >= Some(1.0)
    })
    .await;
    open.commit().await.unwrap();
    writer.close().await;
    assert!(
        held,
        "a tick held back by the open transaction is counted:\n{text}"
    );
    served.stop().await;
}
