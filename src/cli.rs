//! The command line: `rowhook run | demo | check | migrate | status |
//! deliveries | subscriptions | replay | secret | service`.
//!
//! Every flag has an environment variable, so a systemd `EnvironmentFile`
//! can hold the whole configuration and no secret appears in `ps`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

use crate::config::{self, Settings, MAX_BATCH_SIZE};
use crate::delivery::destination::{self, NetworkPolicy};
use crate::domain::body::BodyKind;
use crate::domain::health::RetryPolicy;
use crate::telemetry::LogFormat;

/// The version and the commit it was built from (see `build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ROWHOOK_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "rowhook",
    version = VERSION,
    about = "Turns database row changes into webhooks (Open Dental API Events)."
)]
pub struct Cli {
    /// Read KEY=VALUE settings (the systemd rowhook.env form) from this file.
    /// A flag wins over the environment, the environment over the file.
    #[arg(long, env = crate::env_file::VARIABLE, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub db: DbArgs,

    /// Log line format on stderr.
    #[arg(long, env = "ROWHOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// Where the database is, for every command.
#[derive(Debug, Clone, Default, Args)]
pub struct DbArgs {
    /// Database to read: mysql://user:pass@host/db, mariadb://..., sqlite://path.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// MySQL session time zone, e.g. "America/New_York" or "-05:00". Default:
    /// the server's own, which is the zone Open Dental writes DateTimeStart in.
    #[arg(long, env = "ROWHOOK_TIME_ZONE", global = true, value_parser = parse_time_zone)]
    pub time_zone: Option<String>,
}

/// A time zone name or offset. Checked here because the driver pastes it
/// into `SET time_zone = '...'`.
fn parse_time_zone(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-:".contains(c));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a time zone name or offset"))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: process due subscriptions every tick until SIGTERM.
    Run(Box<RunArgs>),
    /// See rowhook work with no setup: SQLite, a built-in receiver, live changes.
    Demo(DemoArgs),
    /// Validate every subscription for this workstation; non-zero exit if any is wrong.
    Check(AgentArgs),
    /// Create apisubscription (if missing) and rowhook's own tables.
    Migrate,
    /// One line per subscription: state, lag, last success and failure, next retry.
    Status(StatusArgs),
    /// Recent delivery attempts, newest first.
    Deliveries(DeliveriesArgs),
    /// List, add, stop, remove or reactivate subscriptions (ordinary Open Dental rows).
    #[command(subcommand)]
    Subscriptions(SubscriptionsCommand),
    /// Re-send a subscription's changes since a time (moves its DateTimeStart back).
    Replay(ReplayArgs),
    /// Show, set or rotate a subscription's signing secret (Standard Webhooks).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Windows: install, remove, start, stop or query the rowhook service.
    #[command(subcommand)]
    Service(ServiceCommand),
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register the service: automatic start, restart on failure, account
    /// NT SERVICE\rowhook, configuration in %ProgramData%\rowhook\rowhook.env
    /// (copied from --config FILE if given and not there yet), Event Log
    /// source rowhook.
    Install,
    /// Stop and remove the service and its Event Log source (the
    /// configuration file is kept).
    Uninstall,
    /// Start the service.
    Start,
    /// Stop the service (the batch in flight finishes or is abandoned, as
    /// with Ctrl-C).
    Stop,
    /// Print the service's state.
    Status,
    /// What the Service Control Manager starts; not for a console.
    #[command(hide = true)]
    Run(Box<RunArgs>),
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Print the secret receivers verify signatures with (created if missing).
    Show { subscription: i64 },
    /// Install a secret an integrator brings (whsec_...); the old one stops signing.
    Set {
        subscription: i64,
        /// The secret, whsec_ followed by base64 of 24 to 64 bytes. Prefer
        /// ROWHOOK_SECRET so it stays out of shell history and `ps`.
        #[arg(env = "ROWHOOK_SECRET", hide_env_values = true)]
        secret: String,
    },
    /// Create a new secret; the old one keeps signing too for a grace period.
    Rotate {
        subscription: i64,
        /// How long the old secret keeps signing beside the new one.
        #[arg(long, default_value = "24h", value_parser = config::parse_duration)]
        grace: Duration,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// This agent's workstation name (default: the hostname; on Windows the
    /// NetBIOS computer name, as Open Dental's own API Service uses).
    #[arg(long, env = "ROWHOOK_WORKSTATION")]
    pub workstation: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub default: DefaultBody,
}

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// Only this subscription's attempts.
    #[arg(long)]
    pub subscription: Option<i64>,
    /// Only failed attempts.
    #[arg(long)]
    pub failed: bool,
    /// How many attempts to show.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SubscriptionsCommand {
    /// Every subscription row, as stored (URLs with passwords redacted).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        default: DefaultBody,
    },
    /// Insert a subscription starting now.
    Add(AddArgs),
    /// Set DateTimeStop to now.
    Stop { subscription: i64 },
    /// Delete the row (and rowhook's records of it).
    Remove { subscription: i64 },
    /// Clear a deactivation and the failure count; due at once, from where it stopped.
    Reactivate { subscription: i64 },
    /// Choose what a subscription receives (kept in rowhook's own table).
    Set {
        subscription: i64,
        /// `opendental` (Open Dental's own element), `columns` (every
        /// column), or `default` (the daemon's --body).
        #[arg(long)]
        body: BodyChoice,
    },
    /// Make a subscription that is backing off due at once (keeps its failure count).
    Retry { subscription: i64 },
}

/// The body of subscriptions that have not chosen one.
#[derive(Debug, Clone, Copy, Args)]
pub struct DefaultBody {
    /// The body a subscription gets unless it chose one (`rowhook
    /// subscriptions set N --body`): Open Dental's own element
    /// (`opendental`) or every column (`columns`).
    #[arg(long = "body", env = "ROWHOOK_BODY", default_value = "opendental")]
    pub body: BodyKind,
}

/// A subscription's body, or the daemon's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyChoice {
    Default,
    Chosen(BodyKind),
}

impl std::str::FromStr for BodyChoice {
    type Err = crate::domain::body::UnknownBody;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().eq_ignore_ascii_case("default") {
            return Ok(Self::Default);
        }
        text.parse().map(Self::Chosen)
    }
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The receiver's URL (http or https), kept exactly as given.
    #[arg(long)]
    pub url: String,
    /// An Open Dental WatchTable name (Appointment, Patient …) or a table name.
    #[arg(long)]
    pub table: String,
    /// Poll every this many seconds.
    #[arg(long, default_value_t = 5)]
    pub polling: u32,
    /// Only the agent with this workstation name processes it (blank: all).
    #[arg(long, default_value = "")]
    pub workstation: String,
    /// Sent as the Authorization header.
    #[arg(
        long,
        env = "ROWHOOK_CUSTOMER_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub key: String,
    /// A note for people.
    #[arg(long, default_value = "")]
    pub note: String,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    pub subscription: i64,
    /// Re-send changes from this local time on: 'YYYY-MM-DD HH:MM:SS'.
    #[arg(long)]
    pub since: String,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Process every due subscription once, then exit (for cron and tests).
    #[arg(long)]
    pub once: bool,
    /// Serve /metrics, /healthz, /readyz and a status page at this address,
    /// e.g. 127.0.0.1:9464. Off unless given.
    #[arg(long, env = "ROWHOOK_HTTP")]
    pub http: Option<SocketAddr>,
    /// A file holding the bearer token the status page's actions (and, when
    /// given, every page but /healthz and /readyz) require. Needed to bind
    /// --http to anything but loopback.
    #[arg(long, env = "ROWHOOK_HTTP_TOKEN_FILE")]
    pub http_token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop by itself after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub seconds: Option<u64>,
}

/// Settings shared by the commands that act as this agent.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// This agent's workstation name (default: the hostname; on Windows the
    /// NetBIOS computer name, as Open Dental's own API Service uses).
    #[arg(long, env = "ROWHOOK_WORKSTATION")]
    pub workstation: Option<String>,
    /// Rows per POST (at most 1000, Open Dental's batch size).
    #[arg(long, env = "ROWHOOK_BATCH_SIZE", default_value_t = MAX_BATCH_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_BATCH_SIZE)))]
    pub batch_size: u32,
    /// Never look back further than this (Open Dental: 3 days); 0 = unlimited.
    #[arg(long, env = "ROWHOOK_MAX_LOOKBACK", default_value = "3d", value_parser = config::parse_duration)]
    pub max_lookback: Duration,
    /// Per-request timeout.
    #[arg(long, env = "ROWHOOK_REQUEST_TIMEOUT", default_value = "30s", value_parser = config::parse_duration)]
    pub request_timeout: Duration,
    /// A window ends at least this far behind the server's clock.
    #[arg(long, env = "ROWHOOK_SAFETY_LAG", default_value = "100ms", value_parser = config::parse_duration)]
    pub safety_lag: Duration,
    /// The lag used when open transactions cannot be seen (no PROCESS grant).
    #[arg(long, env = "ROWHOOK_FALLBACK_LAG", default_value = "5s", value_parser = config::parse_duration)]
    pub fallback_lag: Duration,
    /// The first retry delay after a failure; it doubles per failure.
    #[arg(long, env = "ROWHOOK_RETRY_BASE", default_value = "5s", value_parser = config::parse_duration)]
    pub retry_base: Duration,
    /// The longest retry delay.
    #[arg(long, env = "ROWHOOK_RETRY_MAX", default_value = "15m", value_parser = config::parse_duration)]
    pub retry_max: Duration,
    /// Consecutive failures that deactivate a subscription (0 = never).
    #[arg(long, env = "ROWHOOK_MAX_FAILURES", default_value_t = 50)]
    pub max_failures: u32,
    /// How long the delivery log keeps attempts (0 = forever).
    #[arg(long, env = "ROWHOOK_DELIVERY_LOG_RETENTION", default_value = "30d", value_parser = config::parse_duration)]
    pub delivery_log_retention: Duration,
    /// The largest request body in bytes: pages are cut to fit; a single row
    /// larger than this is skipped and reported.
    #[arg(long, env = "ROWHOOK_MAX_REQUEST_BYTES", default_value_t = config::DEFAULT_MAX_REQUEST_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..))]
    pub max_request_bytes: usize,
    /// Receivers only in these networks (CIDR or address; repeat or comma-separate).
    /// An address listed here is allowed even if --deny-network covers it.
    #[arg(long, env = "ROWHOOK_ALLOW_NETWORK", value_delimiter = ',', value_parser = destination::parse_network)]
    pub allow_network: Vec<IpNet>,
    /// Receivers never in these networks. Default: link-local and cloud metadata
    /// (169.254.0.0/16, fe80::/10, fd00:ec2::254); giving any replaces the default.
    #[arg(long, env = "ROWHOOK_DENY_NETWORK", value_delimiter = ',', value_parser = destination::parse_network)]
    pub deny_network: Vec<IpNet>,
    /// Trust these certificate authorities (PEM) for HTTPS receivers, besides the built-in ones.
    #[arg(long, env = "ROWHOOK_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub default: DefaultBody,
    /// How long a subscription's lease lasts unrenewed when agents share a
    /// MariaDB database: another agent takes over within this plus two ticks
    /// of the holder's death (at least 2s).
    #[arg(long, env = "ROWHOOK_LEASE", default_value = "10s", value_parser = config::parse_lease)]
    pub lease: Duration,
    /// Subscriptions processed at the same time.
    #[arg(long, env = "ROWHOOK_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
}

impl AgentArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            workstation: self
                .workstation
                .clone()
                .unwrap_or_else(config::default_workstation),
            batch_size: self.batch_size,
            max_lookback: config::lookback(self.max_lookback),
            request_timeout: self.request_timeout,
            concurrency: usize::from(self.concurrency),
            safety_lag: self.safety_lag,
            fallback_lag: self.fallback_lag.max(self.safety_lag),
            retry: RetryPolicy {
                base: self.retry_base,
                cap: self.retry_max.max(self.retry_base),
                max_failures: self.max_failures,
            },
            delivery_log_retention: config::lookback(self.delivery_log_retention),
            max_request_bytes: self.max_request_bytes,
            destinations: self.network_policy(),
            ca_file: self.ca_file.clone(),
            body: self.default.body,
            lease: self.lease,
            ..Settings::default()
        }
    }
}

impl AgentArgs {
    fn network_policy(&self) -> NetworkPolicy {
        let default = NetworkPolicy::default();
        NetworkPolicy {
            allow: self.allow_network.clone(),
            deny: if self.deny_network.is_empty() {
                default.deny
            } else {
                self.deny_network.clone()
            },
        }
    }
}
