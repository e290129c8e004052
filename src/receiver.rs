//! A small webhook receiver on loopback: the far end of `rowhook demo`, and
//! the real HTTP peer the tests deliver to.
//!
//! It records every request (path, headers, body, the status it answered)
//! and can be told to misbehave: answer another status, answer slowly, or
//! hang past the sender's timeout.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// How the receiver answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 at once.
    Accept,
    /// This status at once (201, 302, 404, 500 ...). Every answer carries
    /// `Location: /redirected`, which a sender must not follow.
    Status(u16),
    /// 200 after a pause.
    Slow(Duration),
    /// A pause, then 503: longer than the sender's timeout, it is a timeout.
    Hang(Duration),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// Path and query string, exactly as requested.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The status this receiver answered (or meant to, for a hang).
    pub status: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON array of rows; empty if the body is not one.
    pub fn rows(&self) -> Vec<Value> {
        match serde_json::from_slice(&self.body) {
            Ok(Value::Array(rows)) => rows,
            _ => Vec::new(),
        }
    }

    pub fn accepted(&self) -> bool {
        self.status == 200
    }
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    log: Mutex<Vec<Request>>,
    changed: Notify,
    feed: Mutex<Option<mpsc::UnboundedSender<Request>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running receiver; it stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Receiver {
    /// Starts on `127.0.0.1` and a free port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(0).await
    }

    /// Starts on `127.0.0.1:port`.
    pub async fn start_on(port: u16) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(Behaviour::Accept),
            log: Mutex::default(),
            changed: Notify::new(),
            feed: Mutex::default(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let serve =
                axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned());
            if let Err(error) = serve.await {
                tracing::error!(%error, "Receiver stopped.");
            }
        });
        Ok(Self { addr, shared, stop })
    }

    /// `http://127.0.0.1:port` + `path` (which may carry a query string).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, behaviour: Behaviour) {
        *lock(&self.shared.behaviour) = behaviour;
    }

    /// A handle that changes the behaviour from another task.
    pub fn setter(&self) -> impl Fn(Behaviour) + Send + Sync + 'static {
        let shared = Arc::clone(&self.shared);
        move |behaviour| *lock(&shared.behaviour) = behaviour
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.log).clone()
    }

    /// The requests answered with 200.
    pub fn accepted(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(Request::accepted)
            .collect()
    }

    /// A channel that gets each request as it arrives (for `rowhook demo`).
    pub fn feed(&self) -> mpsc::UnboundedReceiver<Request> {
        let (tx, rx) = mpsc::unbounded_channel();
        *lock(&self.shared.feed) = Some(tx);
        rx
    }

    /// Waits until `done` holds for the request log, or `limit` passes.
    /// Returns whether it held.
    pub async fn wait_until(&self, limit: Duration, done: impl Fn(&[Request]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.shared.changed.notified();
            if done(&lock(&self.shared.log)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(&lock(&self.shared.log));
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let behaviour = *lock(&shared.behaviour);
    let status = match behaviour {
        Behaviour::Accept => 200,
        Behaviour::Status(code) => code,
        Behaviour::Slow(pause) => {
            tokio::time::sleep(pause).await;
            200
        }
        Behaviour::Hang(_) => 503,
    };
    let target = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.to_string());
    record(
        &shared,
        Request {
            target,
            headers,
            body,
            status,
        },
    );
    if let Behaviour::Hang(pause) = behaviour {
        // Recorded first: the sender gives up before this returns.
        tokio::time::sleep(pause).await;
    }
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // A redirect points back here, so a sender that followed it would show
    // up as a second request.
    (code, [("Location", "/redirected")], "")
}

fn record(shared: &Shared, request: Request) {
    if let Some(feed) = lock(&shared.feed).as_ref() {
        let _ = feed.send(request.clone());
    }
    lock(&shared.log).push(request);
    shared.changed.notify_waiters();
}
