//! systemd's side of the notify protocol, played by the test: the real
//! binary, a real `NOTIFY_SOCKET` datagram socket, a real MariaDB reached
//! through a loopback proxy that can stop forwarding (a database that
//! accepted the connection and never answers).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixDatagram};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::helpers::{TestDb, BIN, PATIENCE, WORKSTATION};

/// How long the test listens for a ping that must not come while the
/// database is stalled: five ticks' worth.
const STALL: Duration = Duration::from_secs(5);

/// A tick whose statement was answered just before the stall may still
/// complete; its ping comes within this long.
const IN_FLIGHT: Duration = Duration::from_millis(500);

#[tokio::test]
async fn systemd_hears_ready_then_watchdog_while_ticks_complete_and_stopping() {
    let db = TestDb::mysql().await;
    let proxy = StallProxy::start(&db.url).await;
    let systemd = NotifySocket::bind();
    let mut rowhook = start(&proxy.url, &systemd);

    let first = systemd.next(PATIENCE).await;
    assert_eq!(
        first.as_deref(),
        Some("READY=1"),
        "READY=1 is the first message"
    );
    for n in 0..3 {
        let ping = systemd.next(Duration::from_secs(5)).await;
        assert_eq!(
            ping.as_deref(),
            Some("WATCHDOG=1"),
            "ping {n} while ticking"
        );
    }

    proxy.stall();
    let stalled = Instant::now();
    while let Some(message) = systemd.next(STALL.saturating_sub(stalled.elapsed())).await {
        assert!(
            message == "WATCHDOG=1" && stalled.elapsed() < IN_FLIGHT,
            "{message} {:?} into the stall: no tick completes while the database does not answer",
            stalled.elapsed()
        );
    }

    proxy.resume();
    let ping = systemd.next(Duration::from_secs(5)).await;
    assert_eq!(
        ping.as_deref(),
        Some("WATCHDOG=1"),
        "pings come again once the database answers"
    );

    terminate(&rowhook);
    let mut stopping = false;
    while let Some(message) = systemd.next(Duration::from_secs(5)).await {
        if message == "STOPPING=1" {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "STOPPING=1 on SIGTERM");
    let status = tokio::time::timeout(PATIENCE, rowhook.wait()).await;
    assert!(
        matches!(status, Ok(Ok(s)) if s.success()),
        "a clean stop: {status:?}"
    );
}

/// A start that finds a migration missing fails with the message that says
/// what to do, and never tells systemd it is ready.
#[tokio::test]
async fn a_start_that_finds_a_migration_missing_is_never_ready() {
    let db = TestDb::mysql().await;
    db.exec("DROP TABLE rowhook_migrations", &[]).await;
    let systemd = NotifySocket::bind();
    let rowhook = start(&db.url, &systemd);

    let out = tokio::time::timeout(PATIENCE, rowhook.wait_with_output())
        .await
        .expect("rowhook exits")
        .expect("rowhook ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("rowhook migrate"), "{stderr}");
    assert_eq!(
        systemd.next(Duration::ZERO).await,
        None,
        "no READY=1 from a start that failed"
    );
}

fn start(url: &str, systemd: &NotifySocket) -> Child {
    Command::new(BIN)
        .arg("run")
        .env("DATABASE_URL", url)
        .env("ROWHOOK_WORKSTATION", WORKSTATION)
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", &systemd.path)
        // As `WatchdogSec=30` sets it. (systemd also sets WATCHDOG_PID,
        // which only the start-up check of its length reads.)
        .env("WATCHDOG_USEC", "30000000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the rowhook binary starts")
}

fn terminate(child: &Child) {
    let pid = child.id().expect("rowhook is running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// The datagram socket systemd would listen on.
pub(crate) struct NotifySocket {
    pub(crate) path: PathBuf,
    socket: UnixDatagram,
}

impl NotifySocket {
    pub(crate) fn bind() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "rowhook-notify-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).expect("a notify socket in the temp dir");
        Self { path, socket }
    }

    /// The next message, trimmed, or None if none comes within `wait`.
    pub(crate) async fn next(&self, wait: Duration) -> Option<String> {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(wait, self.socket.recv(&mut buf))
            .await
            .ok()?
            .expect("the notify socket reads");
        Some(String::from_utf8_lossy(&buf[..n]).trim().to_owned())
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A loopback TCP proxy in front of MariaDB that can stop forwarding in
/// both directions, on every connection, old and new, and later resume
/// (what it read meanwhile is then delivered, nothing lost).
pub(crate) struct StallProxy {
    pub(crate) url: String,
    stalled: watch::Sender<bool>,
    /// The local port of each connection to the server, by which MariaDB's
    /// PROCESSLIST names it (`HOST` is `127.0.0.1:port`).
    ports: Arc<Mutex<Vec<u16>>>,
}

impl StallProxy {
    /// Proxies the server of the database URL `url`; `self.url` is `url`
    /// through the proxy.
    pub(crate) async fn start(url: &str) -> Self {
        let mut parsed = url::Url::parse(url).expect("a database URL");
        let upstream = format!(
            "{}:{}",
            parsed.host_str().expect("a host"),
            parsed.port().unwrap_or(3306)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        parsed.set_host(Some("127.0.0.1")).unwrap();
        parsed.set_port(Some(port)).unwrap();
        let (stalled, watching) = watch::channel(false);
        let ports = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&ports);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let gate = watching.clone();
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    open(gate.clone()).await;
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    if let Ok(local) = server.local_addr() {
                        seen.lock().unwrap().push(local.port());
                    }
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(forward(client_read, server_write, gate.clone()));
                    forward(server_read, client_write, gate).await;
                });
            }
        });
        Self {
            url: parsed.to_string(),
            stalled,
            ports,
        }
    }

    /// The local ports of the connections made to the server so far.
    pub(crate) fn ports(&self) -> Vec<u16> {
        self.ports.lock().unwrap().clone()
    }

    fn stall(&self) {
        self.stalled.send_replace(true);
    }

    fn resume(&self) {
        self.stalled.send_replace(false);
    }
}

/// Waits until the proxy is not stalled.
async fn open(mut gate: watch::Receiver<bool>) {
    let _ = gate.wait_for(|stalled| !stalled).await;
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    gate: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        open(gate.clone()).await;
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Bytes that arrived just as the stall began wait for the resume.
        open(gate.clone()).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
