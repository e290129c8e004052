//! Where rowhook will and will not send: the network policy (checked for
//! names and literal addresses alike), endless responses, and `--ca-file`.

use std::time::Duration;

use rowhook::config::Settings;
use rowhook::delivery::destination::{parse_network, NetworkPolicy};
use rowhook::domain::attempt::FailureClass;
use rowhook::domain::subscription::SubscriptionId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app::TestApp;
use crate::helpers::{keys, run, run_once, settings, Sub, TestDb};

/// The default policy plus loopback.
fn denying_loopback() -> Settings {
    let mut destinations = NetworkPolicy::default();
    destinations
        .deny
        .push(parse_network("127.0.0.0/8").unwrap());
    destinations.deny.push(parse_network("::1").unwrap());
    Settings {
        destinations,
        ..settings()
    }
}

/// Loopback stands in for a metadata address here: it is the only address
/// a test can listen on, so the test denies it and shows the receiver is
/// never contacted, by name or by number. The default policy's link-local
/// networks are checked in `destination.rs`'s unit tests.
#[tokio::test]
async fn a_refused_network_is_never_contacted_by_name_or_by_address() {
    let app = TestApp::mysql().await;
    let (db, rx) = (&app.db, &app.rx);
    db.insert_appointments(2, &db.ago(30).await).await;
    let by_address = rx.url("/");
    let by_name = by_address.replace("127.0.0.1", "localhost");
    let numbered = db.subscribe(Sub::new(&by_address)).await;
    let named = db.subscribe(Sub::new(&by_name)).await;
    let metadata = db
        .subscribe(Sub::new("http://169.254.169.254/latest/meta-data/"))
        .await;
    let before = db.watermark(numbered).await;

    let summary = app.run_once(denying_loopback()).await;

    assert_eq!(summary.failed, 3);
    assert!(rx.requests().is_empty(), "nothing reached the receiver");
    assert_eq!(db.watermark(numbered).await, before);
    for id in [numbered, named, metadata] {
        let log = db
            .db
            .deliveries(Some(SubscriptionId(id)), true, 5)
            .await
            .unwrap();
        assert_eq!(log.len(), 1, "{id}");
        assert_eq!(
            log[0].error_class,
            Some(FailureClass::Blocked),
            "{id}: {}",
            log[0].error
        );
        assert!(log[0].error.contains("allow-network"), "{}", log[0].error);
    }

    // An explicit allow wins over the deny list; the rows then arrive.
    let allowing = Settings {
        destinations: NetworkPolicy {
            allow: vec![parse_network("127.0.0.1").unwrap()],
            ..denying_loopback().destinations
        },
        ..settings()
    };
    app.run_once(allowing).await;
    assert_eq!(
        keys(&rx.accepted(), "AptNum"),
        [1, 2, 1, 2],
        "both loopback subscriptions"
    );
}

/// A receiver that answers 200 and then streams a body forever: rowhook
/// reads a little of it, counts the 200, and moves on; one that trickles
/// its headers forever is cut by the request timeout.
#[tokio::test]
async fn endless_or_stalled_responses_are_cut() {
    let db = TestDb::mysql().await;
    let endless = serve_raw(|mut socket| async move {
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n")
            .await;
        let chunk = vec![b'x'; 64 * 1024];
        while socket.write_all(&chunk).await.is_ok() {}
    })
    .await;
    let stalled = serve_raw(|mut socket| async move {
        let _ = socket.write_all(b"HTTP/1.1 200").await;
        tokio::time::sleep(Duration::from_secs(600)).await;
    })
    .await;
    db.insert_appointments(1, &db.ago(30).await).await;
    let (endless_url, stalled_url) = (format!("http://{endless}/"), format!("http://{stalled}/"));
    let endless_sub = db.subscribe(Sub::new(&endless_url)).await;
    let stalled_sub = db.subscribe(Sub::new(&stalled_url)).await;
    let before = db.watermark(endless_sub).await;
    let quick = Settings {
        request_timeout: Duration::from_secs(2),
        ..settings()
    };

    let summary = tokio::time::timeout(Duration::from_secs(60), run_once(&db, quick))
        .await
        .expect("the run finished: nothing waited forever");

    assert_eq!(summary.failed, 1, "only the stalled one failed");
    assert!(db.watermark(endless_sub).await > before, "200 counted");
    let log = db
        .db
        .deliveries(Some(SubscriptionId(stalled_sub)), true, 5)
        .await
        .unwrap();
    assert_eq!(log[0].error_class, Some(FailureClass::Timeout));
}

/// Accepts connections on loopback, reads the request head, then hands the
/// socket to `reply`. Returns the address.
async fn serve_raw<F, Fut>(reply: F) -> std::net::SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 8192];
            let _ = socket.read(&mut buf).await;
            tokio::spawn(reply(socket));
        }
    });
    addr
}

/// `--ca-file` that cannot be used stops the daemon at start with a clear
/// message, instead of failing every HTTPS delivery later.
#[tokio::test]
async fn an_unusable_ca_file_is_refused_at_start() {
    let db = TestDb::mysql().await;
    let not_pem = std::env::temp_dir().join(format!("rowhook-not-pem-{}.txt", std::process::id()));
    std::fs::write(&not_pem, "hello").unwrap();
    for path in [
        not_pem.display().to_string(),
        "/nonexistent/ca.pem".to_owned(),
    ] {
        let (code, _, err) = run(Some(&db.url), &["run", "--once", "--ca-file", &path]).await;
        assert_ne!(code, 0, "{path}");
        assert!(err.contains("--ca-file") && err.contains(&path), "{err}");
    }
    let _ = std::fs::remove_file(not_pem);
}
