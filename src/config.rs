//! The daemon's settings, validated once when the process starts.
//!
//! Every value comes from a `--flag` or its `ROWHOOK_*` environment variable
//! (see [`crate::cli`]); subscriptions themselves are rows, not settings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::delivery::destination::NetworkPolicy;
use crate::delivery::sender::HttpOptions;
use crate::domain::body::BodyKind;
use crate::domain::health::RetryPolicy;
use crate::domain::lease::{DEFAULT_LEASE, MIN_LEASE};

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
    /// How long a subscription's lease lasts without renewal (MariaDB);
    /// another agent takes it over within this plus two ticks.
    pub lease: Duration,
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

/// The HTTP endpoint's settings (`--http`, `--http-token-file`).
///
/// On loopback a token is optional: only this machine can connect, as only
/// it can run `rowhook status`. Elsewhere anyone on the network could read
/// the status page (which shows rows, patient data) and act, so a token is
/// required and rowhook refuses to start without one.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    /// The bearer token; `None` on loopback without `--http-token-file`.
    pub token: Option<String>,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// Why the HTTP endpoint's settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HttpSettingsError {
    #[error(
        "--http {0} is not a loopback address: anyone on the network could read the status page \
         and act on subscriptions; give --http-token-file (a file holding a bearer token), or \
         bind 127.0.0.1"
    )]
    TokenRequired(SocketAddr),
    #[error("cannot read --http-token-file {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("--http-token-file {0} is empty")]
    EmptyToken(String),
}

impl HttpSettings {
    /// Checks the address against the token file, reading the token.
    pub fn new(addr: SocketAddr, token_file: Option<&Path>) -> Result<Self, HttpSettingsError> {
        let token = match token_file {
            None => None,
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| {
                    HttpSettingsError::Unreadable {
                        path: shown.clone(),
                        source,
                    }
                })?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(HttpSettingsError::EmptyToken(shown));
                }
                Some(token.to_owned())
            }
        };
        if token.is_none() && !addr.ip().is_loopback() {
            return Err(HttpSettingsError::TokenRequired(addr));
        }
        Ok(Self { addr, token })
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
            lease: DEFAULT_LEASE,
        }
    }
}

/// The name Open Dental's `Environment.MachineName` gives this machine:
/// on Windows the NetBIOS computer name (at most 15 characters, usually
/// upper case; the DNS host name may be longer), elsewhere the hostname;
/// "localhost" if the OS will not say.
pub fn default_workstation() -> String {
    #[cfg(windows)]
    if let Some(name) = crate::win32::netbios_name() {
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

/// `--lease`: a duration of at least [`MIN_LEASE`], whose renewals (every
/// quarter of it) then fit between one-second ticks.
pub fn parse_lease(text: &str) -> Result<Duration, String> {
    let lease = parse_duration(text)?;
    if lease < MIN_LEASE {
        return Err(format!(
            "{text:?} is shorter than the shortest lease, {}s",
            MIN_LEASE.as_secs()
        ));
    }
    Ok(lease)
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

    #[test]
    fn a_lease_is_at_least_two_seconds() {
        assert_eq!(parse_lease("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_lease("2"), Ok(Duration::from_secs(2)));
        assert!(parse_lease("1500ms").is_err());
        assert!(parse_lease("0").is_err());
    }

    #[test]
    fn http_off_loopback_needs_a_token() {
        let lan: SocketAddr = "0.0.0.0:9464".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:9464".parse().unwrap();
        assert!(matches!(
            HttpSettings::new(lan, None),
            Err(HttpSettingsError::TokenRequired(_))
        ));
        assert_eq!(HttpSettings::new(local, None).unwrap().token, None);
        let file = std::env::temp_dir().join(format!("rowhook_token_{}", std::process::id()));
        std::fs::write(&file, "  s3cret\n").unwrap();
        let with = HttpSettings::new(lan, Some(&file)).unwrap();
        std::fs::write(&file, "\n").unwrap();
        let empty = HttpSettings::new(lan, Some(&file));
        std::fs::remove_file(&file).unwrap();
        assert_eq!(with.token.as_deref(), Some("s3cret"));
        assert!(matches!(empty, Err(HttpSettingsError::EmptyToken(_))));
    }
}
