//! The daemon's settings, validated once when the process starts.
//!
//! Every value comes from a `--flag` or its `ROWHOOK_*` environment variable
//! (see [`crate::cli`]); subscriptions themselves are rows, not settings.

use std::path::PathBuf;
use std::time::Duration;

use crate::delivery::destination::NetworkPolicy;
use crate::delivery::sender::HttpOptions;
use crate::domain::body::BodyKind;
use crate::domain::health::RetryPolicy;

/// Open Dental's own batch size, and the most rowhook will send at once.
pub const MAX_BATCH_SIZE: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// This agent's name, matched against `apisubscription.Workstation`.
    pub workstation: String,
    /// Rows per POST, 1..=1000.
    pub batch_size: u32,
    /// How far back a window may reach; `None` is unlimited.
    pub max_lookback: Option<Duration>,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// How many subscriptions are processed at once.
    pub concurrency: usize,
    /// How often `apisubscription` is read.
    pub tick: Duration,
    /// A window's `stop` is at least this far behind the server's `NOW()`:
    /// a statement that began in the previous second may still be writing
    /// rows stamped with it.
    pub safety_lag: Duration,
    /// The lag used instead when the server will not show its open
    /// transactions (no `PROCESS` privilege).
    pub fallback_lag: Duration,
    /// Backoff after failures, and when to deactivate.
    pub retry: RetryPolicy,
    /// How long the delivery log keeps attempts; `None` forever.
    pub delivery_log_retention: Option<Duration>,
    /// The largest request body; a page is cut to fit, and a row larger
    /// than this alone is skipped and reported.
    pub max_request_bytes: usize,
    /// Which receiver addresses may be contacted.
    pub destinations: NetworkPolicy,
    /// Extra certificate authorities (PEM) trusted for HTTPS receivers.
    pub ca_file: Option<PathBuf>,
    /// The body of a subscription that has not chosen one.
    pub body: BodyKind,
}

impl Settings {
    /// What the HTTP client needs of these settings.
    pub fn http(&self) -> HttpOptions<'_> {
        HttpOptions {
            workstation: &self.workstation,
            request_timeout: self.request_timeout,
            destinations: &self.destinations,
            ca_file: self.ca_file.as_deref(),
        }
    }
}

/// 16 MiB: far above a page of ordinary rows (about 1 MB for 1000
/// appointments), far below what would strain the office server.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

impl Default for Settings {
    fn default() -> Self {
        Self {
            workstation: default_workstation(),
            batch_size: MAX_BATCH_SIZE,
            max_lookback: Some(Duration::from_secs(3 * 86_400)),
            request_timeout: Duration::from_secs(30),
            concurrency: 16,
            tick: Duration::from_secs(1),
            safety_lag: Duration::from_millis(100),
            fallback_lag: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            delivery_log_retention: Some(Duration::from_secs(30 * 86_400)),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            destinations: NetworkPolicy::default(),
            ca_file: None,
            body: BodyKind::OpenDental,
        }
    }
}

/// The name Open Dental's `Environment.MachineName` gives this machine:
/// on Windows the NetBIOS computer name (at most 15 characters, usually
/// upper case; the DNS host name may be longer), elsewhere the hostname;
/// "localhost" if the OS will not say.
pub fn default_workstation() -> String {
    #[cfg(windows)]
    if let Some(name) = crate::windows::ffi::netbios_name() {
        return name;
    }
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `--max-lookback`: zero means unlimited.
pub fn lookback(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// Parses a duration given as seconds (`30`) or with units (`30s`, `2m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookback_zero_is_unlimited_and_units_work() {
        assert_eq!(parse_duration("0").map(lookback), Ok(None));
        assert_eq!(
            parse_duration("3d").map(lookback),
            Ok(Some(Duration::from_secs(259_200)))
        );
        assert_eq!(
            parse_duration("90").map(lookback),
            Ok(Some(Duration::from_secs(90)))
        );
        assert!(parse_duration("soon").is_err());
    }
}
