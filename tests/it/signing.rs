//! Signatures checked by the official Standard Webhooks implementation (the
//! `standardwebhooks` crate, which rowhook does not use to sign), secrets
//! managed through the real binary, and secrets kept out of every output.

use rowhook::delivery::signing::Signer;
use rowhook::domain::secret::SigningSecret;
use rowhook::domain::subscription::SubscriptionId;
use rowhook::receiver::{Behaviour, Receiver, Request};
use standardwebhooks::{Webhook, WebhookError};

use crate::app::TestApp;
use crate::helpers::{run, run_once, settings, Sub, TestDb, BIN, BOTH, PATIENCE, WORKSTATION};

/// `rowhook secret ARGS` for subscription `id`; returns stdout, trimmed.
async fn secret(db: &TestDb, args: &[&str]) -> String {
    let (code, out, err) = run(Some(&db.url), &[&["secret"], args].concat()).await;
    assert_eq!(code, 0, "secret {args:?}: {err}");
    out.trim().to_owned()
}

fn verify(secret: &str, request: &Request) -> Result<(), WebhookError> {
    Webhook::new(secret)
        .expect("a Standard Webhooks secret")
        .verify(&request.body, &request.headers)
}

/// Delivers one more appointment row and returns its request.
async fn next_request(db: &TestDb, rx: &Receiver) -> Request {
    let seen = rx.requests().len();
    db.exec(
        "INSERT INTO appointment (PatNum, AptStatus, Note) VALUES (1, 1, 'x')",
        &[],
    )
    .await;
    // Stamped now: it is in a window once it is older than the safety lag.
    let arrived = crate::helpers::eventually(|| async {
        run_once(db, settings()).await;
        rx.requests().len() > seen
    })
    .await;
    assert!(arrived, "a request arrived");
    rx.requests().pop().expect("a request")
}

#[tokio::test]
async fn requests_verify_with_the_official_implementation_and_tampering_fails() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(3, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db.subscribe(Sub::new(&url)).await;
    let whsec = secret(db, &["show", &id.to_string()]).await;
    assert!(whsec.starts_with("whsec_"), "{whsec}");

    app.run_once(settings()).await;
    let request = rx.requests().pop().expect("a request");
    verify(&whsec, &request).expect("a valid signature");
    assert_eq!(
        request.header("webhook-id"),
        request.header("Rowhook-Batch-Id"),
        "webhook-id is the batch id"
    );
    assert_eq!(
        request.header("Authorization"),
        Some("key123"),
        "Open Dental's headers stay"
    );

    let mut tampered = request.clone();
    tampered.body = String::from_utf8_lossy(&request.body)
        .replace("\"AptNum\":1", "\"AptNum\":9")
        .into_bytes()
        .into();
    assert_ne!(tampered.body, request.body);
    assert!(matches!(
        verify(&whsec, &tampered),
        Err(WebhookError::InvalidSignature)
    ));

    let mut old = request.clone();
    let stamp: i64 = request
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    old.headers
        .insert("webhook-timestamp", (stamp - 600).into());
    assert!(
        verify(&whsec, &old).is_err(),
        "a timestamp ten minutes old is refused (and the signature no longer matches)"
    );

    let other = secret(
        db,
        &["show", &db.subscribe(Sub::new(&url)).await.to_string()],
    )
    .await;
    assert_ne!(other, whsec, "each subscription has its own secret");
    assert!(matches!(
        verify(&other, &request),
        Err(WebhookError::InvalidSignature)
    ));
}

#[tokio::test]
async fn a_retry_keeps_the_webhook_id_and_is_signed_afresh() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    rx.set(Behaviour::Status(500));
    db.insert_appointments(2, &db.ago(30).await).await;
    let id = app.subscribe_to("/").await;

    app.run_once(settings()).await;
    rx.set(Behaviour::Accept);
    app.run_once(settings()).await;

    let whsec = secret(db, &["show", &id.to_string()]).await;
    let requests = rx.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id")
    );
    for request in &requests {
        verify(&whsec, request).expect("every attempt is signed");
    }
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_until_the_grace_period_ends() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(1, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db.subscribe(Sub::new(&url)).await.to_string();
    let old = secret(db, &["show", &id]).await;

    let new = secret(db, &["rotate", &id, "--grace", "24h"]).await;
    assert!(new.starts_with("whsec_") && new != old);
    assert_eq!(secret(db, &["show", &id]).await, new);
    app.run_once(settings()).await;
    let during = rx.requests().pop().expect("a request");
    verify(&new, &during).expect("the new secret verifies");
    verify(&old, &during).expect("the old secret still verifies");
    assert_eq!(
        during
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );

    // Stands for the 24 hours having passed.
    db.exec(
        "UPDATE rowhook_secret SET previous_until = '2000-01-01 00:00:00'",
        &[],
    )
    .await;
    let after = next_request(db, rx).await;
    verify(&new, &after).expect("the new secret verifies");
    assert!(matches!(
        verify(&old, &after),
        Err(WebhookError::InvalidSignature)
    ));

    let brought = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    secret(db, &["set", &id, brought]).await;
    let with_brought = next_request(db, rx).await;
    verify(brought, &with_brought).expect("the integrator's secret verifies");
    assert!(
        verify(&new, &with_brought).is_err(),
        "set ends the old one at once"
    );

    let (code, _, err) = run(Some(&db.url), &["secret", "set", &id, "not-a-secret"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("whsec_"), "{err}");
    assert_eq!(
        secret(db, &["show", &id]).await,
        brought,
        "a bad secret changes nothing"
    );
}

/// The database password, `CustomerKey`, signing secrets and credentials in
/// URLs appear in no log line, no `status`, `check`, `subscriptions list` or
/// `deliveries` output, and no error message — at debug level too.
#[tokio::test]
async fn secrets_appear_in_no_log_and_no_command_output() {
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
        .await
        .to_string();
    let whsec = secret(db, &["show", &id]).await;
    // A database user with a password, so it could leak.
    let name = format!("rowhook_pw_{}", std::process::id());
    db.script(&format!(
        "CREATE USER IF NOT EXISTS '{name}'@'%' IDENTIFIED BY 'db-pa55word'; \
         GRANT ALL ON *.* TO '{name}'@'%';"
    ))
    .await;
    let server = crate::helpers::mysql_server();
    let db_name = db.url.rsplit('/').next().unwrap().to_owned();
    let with_password = server.replace("root@", &format!("{name}:db-pa55word@")) + "/" + &db_name;
    let wrong_password = with_password.replace("db-pa55word", "db-pa55word-wrong");

    let mut outputs = Vec::new();
    let debug_run = tokio::process::Command::new(BIN)
        .args(["run", "--once"])
        .env("DATABASE_URL", &with_password)
        .env("ROWHOOK_WORKSTATION", WORKSTATION)
        .env("RUST_LOG", "debug")
        .output();
    let out = tokio::time::timeout(PATIENCE, debug_run)
        .await
        .unwrap()
        .unwrap();
    outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(rx.requests().len() == 1, "the run did send");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["check"],
        &["subscriptions", "list", "--json"],
        &["deliveries", "--json"],
    ] {
        let (_, out, err) = run(Some(&with_password), args).await;
        outputs.push(format!("{args:?}\n{out}{err}"));
    }
    let (code, out, err) = run(Some(&wrong_password), &["status"]).await;
    assert_ne!(code, 0);
    outputs.push(format!("{out}{err}"));
    let (_, out, err) = run(
        Some(
            &server
                .replace("127.0.0.1", "127.0.0.1:1")
                .replace("root@", "root:db-pa55word@"),
        ),
        &["status"],
    )
    .await;
    outputs.push(format!("{out}{err}"));

    for text in &outputs {
        for secret in [
            "db-pa55word",
            "url-pa55word",
            "customer-key-s3cret",
            &whsec,
            &whsec[6..],
        ] {
            assert!(!text.contains(secret), "{secret:?} leaked in:\n{text}");
        }
    }
    assert!(
        outputs[0].contains("webhook") || outputs[0].contains("Batch"),
        "the log has content: {}",
        outputs[0]
    );
    db.script(&format!("DROP USER '{name}'@'%'")).await;
}

/// `rowhook secret` on a missing subscription says so.
#[tokio::test]
async fn secret_commands_name_a_missing_subscription() {
    let db = TestDb::mysql().await;
    let (code, _, err) = run(Some(&db.url), &["secret", "show", "4242"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("4242"), "{err}");
}

/// Many subscriptions seen for the first time at once each get a secret in
/// the same tick, without a lock conflict failing any of them.
#[tokio::test]
async fn many_new_subscriptions_get_their_secrets_in_one_tick() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    let url = rx.url("/");
    let mut values = Vec::new();
    let start = db.ago(60).await;
    for _ in 0..300 {
        values.push(format!(
            "('{url}', '{WORKSTATION}', '', 'Appointment', 1, '', '{start}', '0001-01-01 00:00:00', '')"
        ));
    }
    db.exec(
        &format!(
            "INSERT INTO apisubscription (EndPointUrl, Workstation, CustomerKey, WatchTable, \
             PollingSeconds, UiEventType, DateTimeStart, DateTimeStop, Note) VALUES {}",
            values.join(", ")
        ),
        &[],
    )
    .await;

    let summary = app.run_once(settings()).await;

    assert_eq!((summary.processed, summary.failed), (300, 0));
    let secrets = db
        .text(
            "SELECT CAST(COUNT(DISTINCT secret) AS CHAR) FROM rowhook_secret",
            &[],
        )
        .await;
    assert_eq!(secrets.as_deref(), Some("300"));
}

/// A tick reads the secrets of all the windows it starts in one statement;
/// each subscription gets what it would have read alone, rotation included,
/// and one with no secret yet gets none (its window creates it).
#[tokio::test]
async fn secrets_read_together_are_those_read_one_by_one() {
    for backend in BOTH {
        let db = TestDb::new(backend).await;
        let rotated = SubscriptionId(db.subscribe(Sub::new("http://127.0.0.1:9/")).await);
        let plain = SubscriptionId(db.subscribe(Sub::new("http://127.0.0.1:9/")).await);
        let fresh = SubscriptionId(db.subscribe(Sub::new("http://127.0.0.1:9/")).await);
        let until = chrono::Utc::now().naive_utc() + chrono::Duration::hours(1);
        let next = SigningSecret::generate().unwrap();
        db.db.rotate_secret(rotated, &next, until).await.unwrap();
        db.db.secrets(plain).await.unwrap();

        let together = db.db.secrets_of(&[rotated, plain, fresh]).await.unwrap();
        assert_eq!(together.len(), 2, "{backend:?}: no secret yet for {fresh}");
        let now = chrono::Utc::now().naive_utc();
        for id in [rotated, plain] {
            let alone = Signer::at(&db.db.secrets(id).await.unwrap(), now);
            assert_eq!(Signer::at(&together[&id], now), alone, "{backend:?}: {id}");
        }
        assert!(Signer::at(&together[&rotated], now).previous.is_some());
    }
}
