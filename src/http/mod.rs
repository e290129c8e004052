//! The daemon's HTTP endpoint (`--http ADDR`, off unless given):
//! `/healthz`, `/readyz`, `/metrics` and a status page with operator
//! actions.
//!
//! It runs as one more task on the daemon's runtime, reading what the
//! daemon shares ([`Metrics`]) and the database through a pool of its own
//! (two connections), so a page being loaded can never take a connection a
//! tick or a window is waiting for. `/healthz` and `/readyz` read only
//! memory.
//!
//! Access: `/healthz` and `/readyz` are open (probes carry no secrets).
//! With a token (`--http-token-file`) everything else needs it, as
//! `Authorization: Bearer …` or, for a browser, a `token` query parameter
//! (pages) or form field (actions). Without one (loopback only, see
//! [`HttpSettings`]) pages are open to this machine and actions are
//! refused. Actions are POST forms and no cookie is ever set, so another
//! site cannot make a browser act: it would have to know the token.

mod metrics;
mod pages;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::HttpSettings;
use crate::db::Database;
use crate::window::metrics::Metrics;

/// What every request handler shares.
#[derive(Clone)]
pub struct Web {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    metrics: Arc<Metrics>,
    workstation: String,
    tick: Duration,
    /// SHA-256 of the token: compared digest to digest, so the time a
    /// comparison takes says nothing about the token's characters.
    token: Option<[u8; 32]>,
}

impl Web {
    /// `db` should be a pool of its own; `metrics` the daemon's.
    pub fn new(
        db: Database,
        metrics: Arc<Metrics>,
        settings: &HttpSettings,
        workstation: String,
        tick: Duration,
    ) -> Self {
        let token = settings.token.as_deref().map(digest);
        Self {
            inner: Arc::new(Inner {
                db,
                metrics,
                workstation,
                tick,
                token,
            }),
        }
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The routes.
pub fn router(web: Web) -> Router {
    Router::new()
        .route("/healthz", get(metrics::healthz))
        .route("/readyz", get(metrics::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/", get(pages::index))
        .route("/subscriptions/{id}", get(pages::subscription))
        .route("/subscriptions/{id}/batches/{batch}", get(pages::batch))
        .route("/subscriptions/{id}/retry", post(pages::retry))
        .route("/subscriptions/{id}/reactivate", post(pages::reactivate))
        .route("/subscriptions/{id}/replay", post(pages::replay))
        .with_state(web)
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, web: Web, shutdown: CancellationToken) {
    let stop = async move { shutdown.cancelled().await };
    let served = axum::serve(listener, router(web))
        .with_graceful_shutdown(stop)
        .await;
    if let Err(error) = served {
        tracing::error!(%error, "The HTTP endpoint stopped.");
    }
}

/// The `name` parameter of a query string or form body.
fn param(encoded: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(encoded)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The bearer token of an `Authorization` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Who may see a page: open (no token configured), or the token given,
/// which a browser's links then carry on (`Some` when it came in the
/// query string).
pub(crate) enum Reader {
    Open,
    Token(Option<String>),
}

impl Web {
    fn token_matches(&self, given: Option<&str>) -> bool {
        match (&self.inner.token, given) {
            (Some(expected), Some(given)) => digest(given) == *expected,
            _ => false,
        }
    }

    /// Admits a read, or answers 401.
    pub(crate) fn reader(&self, headers: &HeaderMap, uri: &Uri) -> Result<Reader, Refusal> {
        if self.inner.token.is_none() {
            return Ok(Reader::Open);
        }
        if self.token_matches(bearer(headers)) {
            return Ok(Reader::Token(None));
        }
        let query = param(uri.query().unwrap_or_default().as_bytes(), "token");
        if self.token_matches(query.as_deref()) {
            return Ok(Reader::Token(query));
        }
        Err(Refusal::Unauthorized)
    }

    /// Admits an action (a POST with the token as bearer or form field),
    /// or answers 403 (no token configured) or 401.
    pub(crate) fn actor(&self, headers: &HeaderMap, form: &[u8]) -> Result<(), Refusal> {
        if self.inner.token.is_none() {
            return Err(Refusal::NoToken);
        }
        let field = param(form, "token");
        if self.token_matches(bearer(headers)) || self.token_matches(field.as_deref()) {
            return Ok(());
        }
        Err(Refusal::Unauthorized)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No token is configured, so no action is allowed (403).
    NoToken,
    /// The token is missing or wrong (401).
    Unauthorized,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::NoToken => (
                StatusCode::FORBIDDEN,
                "Actions need a token: start rowhook with --http-token-file.\n",
            )
                .into_response(),
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "This needs rowhook's HTTP token (Authorization: Bearer, or the token field).\n",
            )
                .into_response(),
        }
    }
}
