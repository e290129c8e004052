//! HTTPS receivers: certificates are verified, and `--ca-file` makes an
//! office's private certificate authority trusted. The receiver is a real
//! TLS server on loopback with a certificate issued, for the test, by a CA
//! that no system trusts.

use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rowhook::config::Settings;
use rowhook::domain::subscription::SubscriptionId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

use crate::helpers::{run_once, settings, Sub, TestDb};

/// A private CA (its PEM) and a TLS server for 127.0.0.1 whose certificate
/// it issued; the server answers every request 200 and keeps the bodies.
struct PrivateTls {
    ca_pem: String,
    url: String,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

async fn private_tls_server() -> PrivateTls {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, kept) = (acceptor.clone(), Arc::clone(&kept));
            tokio::spawn(async move {
                // A failed handshake (rowhook refusing the certificate) ends here.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let body = read_request_body(&mut tls).await;
                kept.lock().unwrap().push(body);
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = tls.write_all(reply).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    PrivateTls {
        ca_pem: ca.pem(),
        url,
        bodies,
    }
}

/// Reads one HTTP/1.1 request with a `content-length` body; returns the body.
async fn read_request_body<S: AsyncReadExt + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return data[end + 4..end + 4 + length].to_vec();
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return data,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_private_ca_is_refused_until_given_with_ca_file() {
    let db = TestDb::mysql().await;
    let server = private_tls_server().await;
    db.insert_appointments(2, &db.ago(30).await).await;
    let id = db.subscribe(Sub::new(&server.url)).await;
    let before = db.watermark(id).await;

    run_once(&db, settings()).await;

    assert!(
        server.bodies.lock().unwrap().is_empty(),
        "no request over an unverified connection"
    );
    assert_eq!(db.watermark(id).await, before);
    let log = db
        .db
        .deliveries(Some(SubscriptionId(id)), true, 5)
        .await
        .unwrap();
    assert_eq!(
        log[0].error_class,
        Some(rowhook::domain::attempt::FailureClass::Tls),
        "{}",
        log[0].error
    );

    let ca_file =
        std::env::temp_dir().join(format!("rowhook-test-ca-{}-{id}.pem", std::process::id()));
    std::fs::write(&ca_file, &server.ca_pem).unwrap();
    let trusting = Settings {
        ca_file: Some(ca_file.clone()),
        ..settings()
    };
    run_once(&db, trusting).await;
    let _ = std::fs::remove_file(ca_file);

    let bodies = server.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&bodies[0]).unwrap();
    assert_eq!(rows.len(), 2, "the rows arrived over HTTPS");
    assert!(db.watermark(id).await > before);
}
