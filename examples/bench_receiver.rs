//! A webhook receiver for benchmarks: the cheapest far end rowhook can talk
//! to, so a benchmark measures the sender and not the receiver.
//!
//! ```text
//! cargo run --release --example bench_receiver -- PORT [IDLE_SECS] [--lag]
//! ```
//!
//! * Binds `127.0.0.1:PORT` (`0` = any free port) and prints
//!   `LISTENING <port>` as its first line on stdout.
//! * Answers every POST with 200 as soon as its body has been read (anything
//!   else gets 405 and is not counted). Bodies are streamed and counted,
//!   not kept (but for `--lag`, one body at a time), so memory stays flat.
//! * Stops on SIGTERM or SIGINT, or after `IDLE_SECS` seconds without a
//!   request (`0`, the default: never), and then prints one line of JSON:
//!   `{"requests":N,"bytes":N}`: POSTs answered and body bytes read.
//! * With `--lag` (bench/steady.sh), every `lag@SECONDS` found in a body (a
//!   column the writers set to `CONCAT('lag@', UNIX_TIMESTAMP(NOW(6)))`) is
//!   compared with the clock when the body has arrived, and the JSON line
//!   also has `lag_rows`, `lag_p50_ms`, `lag_p99_ms` and `lag_max_ms`.

use std::error::Error;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, HttpBody as _};
use axum::extract::State;
use axum::http::{Method, StatusCode};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;

/// What was received; read once, at the end.
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    /// Milliseconds after `started` at which the last request ended.
    last_ms: AtomicU64,
    started: Instant,
    /// With `--lag`: each marked row's delay, in microseconds.
    lags: Option<Mutex<Vec<u64>>>,
}

impl Counters {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().as_deref().unwrap_or("0").parse()?;
    let idle_secs: u64 = args.next().as_deref().unwrap_or("0").parse()?;
    let lag = args.next().as_deref() == Some("--lag");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "LISTENING {}", listener.local_addr()?.port())?;
    out.flush()?;
    drop(out);

    let counters = Arc::new(Counters {
        requests: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        last_ms: AtomicU64::new(0),
        started: Instant::now(),
        lags: lag.then(Mutex::default),
    });
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(Arc::clone(&counters));
    let stop = stop_signal(Arc::clone(&counters), idle_secs)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await?;

    print!(
        r#"{{"requests":{},"bytes":{}"#,
        counters.requests.load(Ordering::Relaxed),
        counters.bytes.load(Ordering::Relaxed)
    );
    if let Some(lags) = &counters.lags {
        let mut lags = lags.lock().unwrap_or_else(|e| e.into_inner());
        lags.sort_unstable();
        let ms = |q: f64| {
            let i = ((lags.len() as f64 - 1.0) * q).round() as usize;
            lags.get(i).map_or(0.0, |&us| us as f64 / 1000.0)
        };
        print!(
            r#","lag_rows":{},"lag_p50_ms":{:.0},"lag_p99_ms":{:.0},"lag_max_ms":{:.0}"#,
            lags.len(),
            ms(0.5),
            ms(0.99),
            ms(1.0)
        );
    }
    println!("}}");
    Ok(())
}

/// The delays of every `lag@SECONDS` marker in `body`, arrived `now`
/// (seconds since the epoch), in microseconds.
fn marker_lags(body: &[u8], now: f64, into: &mut Vec<u64>) {
    const MARK: &[u8] = b"lag@";
    let mut at = 0;
    while let Some(found) = body[at..].windows(MARK.len()).position(|w| w == MARK) {
        let digits = at + found + MARK.len();
        let end = body[digits..]
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'.'))
            .map_or(body.len(), |n| digits + n);
        if let Some(written) = std::str::from_utf8(&body[digits..end])
            .ok()
            .and_then(|text| text.parse::<f64>().ok())
        {
            into.push(((now - written).max(0.0) * 1e6) as u64);
        }
        at = end;
    }
}

/// Reads the body frame by frame, counting and dropping each one.
async fn receive(
    State(counters): State<Arc<Counters>>,
    method: Method,
    mut body: Body,
) -> StatusCode {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED;
    }
    let mut read = 0u64;
    // Only --lag keeps the body, to look for markers once it is complete.
    let mut kept = counters.lags.as_ref().map(|_| Vec::new());
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    read += data.len() as u64;
                    if let Some(kept) = &mut kept {
                        kept.extend_from_slice(data);
                    }
                }
            }
            // The client went away mid-body: nothing was delivered.
            Err(_) => return StatusCode::BAD_REQUEST,
        }
    }
    if let (Some(kept), Some(lags)) = (kept, &counters.lags) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut found = Vec::new();
        marker_lags(&kept, now, &mut found);
        lags.lock().unwrap_or_else(|e| e.into_inner()).extend(found);
    }
    counters.bytes.fetch_add(read, Ordering::Relaxed);
    counters.requests.fetch_add(1, Ordering::Relaxed);
    counters.touch();
    StatusCode::OK
}

/// Resolves on SIGTERM, SIGINT, or after `idle_secs` without a request.
fn stop_signal(
    counters: Arc<Counters>,
    idle_secs: u64,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    // Registered now, before any request, so an early SIGTERM is not lost.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let idle = async move {
        if idle_secs == 0 {
            return std::future::pending().await;
        }
        let limit = Duration::from_secs(idle_secs);
        loop {
            let last = Duration::from_millis(counters.last_ms.load(Ordering::Relaxed));
            let deadline = counters.started + last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            () = idle => {}
        }
    })
}
