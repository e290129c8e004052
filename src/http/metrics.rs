//! `/healthz`, `/readyz` and `/metrics`: memory only, no database.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::Web;

/// 200 while the process serves requests at all.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when a tick read the database within the last few ticks; else 503
/// and why.
pub async fn readyz(State(web): State<Web>) -> Response {
    match web.inner.metrics.readiness(web.inner.tick) {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// Every metric, in the OpenMetrics text format Prometheus reads.
pub async fn metrics(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(refused) = web.reader(&headers, &uri) {
        return refused.into_response();
    }
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        web.inner.metrics.encode(),
    )
        .into_response()
}
