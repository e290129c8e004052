//! Where a batch is sent: one POST, and what its reply means.
//!
//! Success is HTTP 200 exactly, as in Open Dental. Every other outcome —
//! another 2xx, a redirect (never followed), 4xx, 5xx, a timeout, a refused
//! connection — is a [`Failure`], and the caller leaves the watermark alone.
//!
//! Proxies are disabled: a proxy would resolve the receiver's name out of
//! sight of the address check in [`crate::delivery::destination`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::redirect::Policy;

use crate::delivery::destination::{CheckedResolver, NetworkPolicy, Refused};
use crate::delivery::signing::Signer;
use crate::domain::attempt::{FailureClass, Verdict};
use crate::domain::lease::Hold;
use crate::domain::subscription::Subscription;

/// What the HTTP client is built from (the daemon's settings hand these
/// over; this layer does not see the rest).
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions<'a> {
    /// This agent's name, sent as Open Dental's `Workstation` header.
    pub workstation: &'a str,
    pub request_timeout: Duration,
    pub destinations: &'a NetworkPolicy,
    /// Extra certificate authorities (PEM) trusted for HTTPS receivers.
    pub ca_file: Option<&'a Path>,
}

/// How much of a response body is read (and thrown away) so the connection
/// can be reused; anything longer is cut.
const RESPONSE_READ_LIMIT: usize = 64 * 1024;

/// Why a batch was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("HTTP {0} (only 200 counts as delivered)")]
    Status(u16),
    #[error("no reply within the request timeout")]
    Timeout,
    #[error("destination refused: {0}")]
    Blocked(String),
    #[error("connection refused: {0}")]
    Refused(String),
    #[error("name lookup failed: {0}")]
    Dns(String),
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Request(String),
    /// The lease ran out before the body left: nothing was sent, and
    /// another agent may now hold the subscription.
    #[error("not sent: this agent's lease on the subscription ran out")]
    LeaseExpired,
}

impl Failure {
    /// The failure's class, for logs, the delivery log and alerts.
    pub fn class(&self) -> FailureClass {
        match self {
            Self::Status(_) => FailureClass::Non200,
            Self::Timeout => FailureClass::Timeout,
            Self::Refused(_) => FailureClass::Refused,
            Self::Dns(_) => FailureClass::Dns,
            Self::Tls(_) => FailureClass::Tls,
            Self::Connect(_) => FailureClass::Connect,
            Self::Request(_) | Self::LeaseExpired => FailureClass::Request,
            Self::Blocked(_) => FailureClass::Blocked,
        }
    }

    /// The failure as the delivery log records it.
    pub fn verdict(&self) -> Verdict {
        Verdict::Failed {
            class: self.class(),
            http_status: self.http_status(),
            error: self.to_string(),
        }
    }

    /// The HTTP status, when there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Status(code) => Some(*code),
            _ => None,
        }
    }
}

/// Errors building the HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("workstation name {0:?} cannot be sent in an HTTP header")]
    BadWorkstation(String),
    #[error("cannot read --ca-file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The one HTTP client of the process, shared by every subscription so
/// connections to the same receiver are reused.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    workstation: HeaderValue,
    policy: Arc<NetworkPolicy>,
}

impl Sender {
    /// The client for these settings: never follows redirects, ignores
    /// proxy variables (a proxy would resolve names where the network policy
    /// cannot see), checks every receiver address against the policy, and
    /// trusts `--ca-file` besides the built-in roots.
    pub fn new(options: HttpOptions<'_>) -> Result<Self, SetupError> {
        let workstation = HeaderValue::from_str(options.workstation)
            .map_err(|_| SetupError::BadWorkstation(options.workstation.to_owned()))?;
        let timeout = options.request_timeout;
        let policy = Arc::new(options.destinations.clone());
        let mut builder = reqwest::Client::builder()
            .redirect(Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver {
                policy: Arc::clone(&policy),
            }))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("rowhook/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = options.ca_file {
            for certificate in read_ca_file(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(Self {
            client: builder.build()?,
            workstation,
            policy,
        })
    }

    /// POSTs one batch (`body` is a JSON array) for `subscription`, signed
    /// with `signer` (see [`crate::delivery::signing`]). Under a `hold`,
    /// the body goes only if the lease is still valid when the HTTP client
    /// first asks for it ([`LeasedBody`]).
    pub async fn send(
        &self,
        subscription: &Subscription,
        event_type: &str,
        batch_id: &str,
        signer: &Signer,
        body: bytes::Bytes,
        hold: Option<&Hold>,
    ) -> Result<(), Failure> {
        let mut headers = self.headers(subscription, event_type);
        // The batch id is hex, so these are always valid header values.
        if let Ok(id) = HeaderValue::from_str(batch_id) {
            headers.insert("Rowhook-Batch-Id", id.clone());
            headers.insert("webhook-id", id);
        }
        self.check_literal_address(subscription)?;
        let timestamp = chrono::Utc::now().timestamp();
        headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
        if let Ok(signature) = HeaderValue::from_str(&signer.signature(batch_id, timestamp, &body))
        {
            headers.insert("webhook-signature", signature);
        }
        let request = self
            .client
            .post(subscription.endpoint.url().clone())
            .headers(headers);
        let request = match hold {
            Some(hold) => request.body(reqwest::Body::wrap(LeasedBody::new(body, hold.clone()))),
            None => request.body(body),
        };
        let response = request.send().await.map_err(|error| {
            // Only the body itself knows it was held back: a request that
            // went out and then failed is an attempt like any other, even
            // if the lease ran out meanwhile.
            if held_back(&error) {
                Failure::LeaseExpired
            } else {
                classify(error)
            }
        })?;
        let status = response.status().as_u16();
        drain(response).await;
        if status == 200 {
            Ok(())
        } else {
            Err(Failure::Status(status))
        }
    }

    fn headers(&self, subscription: &Subscription, event_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(5);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = subscription.customer_key.header() {
            headers.insert(AUTHORIZATION, key.clone());
        }
        headers.insert("Workstation", self.workstation.clone());
        if let Ok(value) = HeaderValue::from_str(&format!("WatchTable: {event_type}")) {
            headers.insert("Event-Type", value);
        }
        headers.insert("Rowhook-Subscription", HeaderValue::from(subscription.id.0));
        headers
    }
}

/// A request body that checks the lease as the HTTP client first reads
/// it, which is as late as rowhook can look before the first byte of the
/// body leaves: an agent frozen after its last check and woken after its
/// lease passed on sends no body, and the receiver gets an incomplete
/// request, which it does not act on. Its exact size is known, so the
/// request still carries `Content-Length` as Open Dental's does.
struct LeasedBody {
    body: Option<bytes::Bytes>,
    hold: Hold,
}

impl LeasedBody {
    fn new(body: bytes::Bytes, hold: Hold) -> Self {
        Self {
            body: Some(body),
            hold,
        }
    }
}

/// Whether a request failed because its [`LeasedBody`] refused to be sent.
fn held_back(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<LeaseRanOut>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The error a [`LeasedBody`] ends the request with.
#[derive(Debug, thiserror::Error)]
#[error("the lease ran out before the body was sent")]
struct LeaseRanOut;

impl http_body::Body for LeasedBody {
    type Data = bytes::Bytes;
    type Error = LeaseRanOut;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let frame = match self.body.take() {
            None => None,
            Some(_) if !self.hold.is_valid() => Some(Err(LeaseRanOut)),
            Some(body) => Some(Ok(http_body::Frame::data(body))),
        };
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let len = self.body.as_ref().map_or(0, |body| body.len() as u64);
        http_body::SizeHint::with_exact(len)
    }
}

fn classify(error: reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout;
    }
    let cause = root_cause(&error);
    if !error.is_connect() {
        return Failure::Request(cause);
    }
    if let Some(refused) = find::<Refused>(&error) {
        return Failure::Blocked(refused.to_string());
    }
    let chain = chain_text(&error).to_ascii_lowercase();
    if has_io_kind(&error, std::io::ErrorKind::ConnectionRefused) {
        Failure::Refused(cause)
    } else if chain.contains("dns error") || chain.contains("lookup") {
        Failure::Dns(cause)
    } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("handshake")
    {
        Failure::Tls(cause)
    } else {
        Failure::Connect(cause)
    }
}

/// Whether an I/O error of this kind is somewhere in the chain.
fn has_io_kind(error: &(dyn std::error::Error + 'static), kind: std::io::ErrorKind) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// The first error of type `T` in the chain.
fn find<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// Every message in the chain below the top one (which names the URL).
fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut current = error.source();
    while let Some(e) = current {
        text.push_str(&e.to_string());
        text.push(' ');
        current = e.source();
    }
    text
}

/// The innermost error message ("Connection refused"), without the URL that
/// reqwest's own message carries (it may hold credentials).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read >= RESPONSE_READ_LIMIT {
            break;
        }
    }
}

impl Sender {
    /// A URL with a literal address never reaches the resolver, so it is
    /// checked here.
    fn check_literal_address(&self, subscription: &Subscription) -> Result<(), Failure> {
        let address = match subscription.endpoint.url().host() {
            Some(url::Host::Ipv4(v4)) => std::net::IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => std::net::IpAddr::V6(v6),
            _ => return Ok(()),
        };
        self.policy
            .check(address)
            .map_err(|refused| Failure::Blocked(refused.to_string()))
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, SetupError> {
    let failed = |reason: String| SetupError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| failed(e.to_string()))?;
    if certificates.is_empty() {
        return Err(failed("no PEM certificate in it".to_owned()));
    }
    Ok(certificates)
}
