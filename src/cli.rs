//! The command line: `rowhook run | demo | check | migrate`.
//!
//! Every flag has an environment variable, so a systemd `EnvironmentFile`
//! can hold the whole configuration and no secret appears in `ps`.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, Settings, MAX_BATCH_SIZE};

#[derive(Debug, Parser)]
#[command(
    name = "rowhook",
    version,
    about = "Turns database row changes into webhooks (Open Dental API Events)."
)]
pub struct Cli {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: process due subscriptions every tick until SIGTERM.
    Run(RunArgs),
    /// See rowhook work with no setup: SQLite, a built-in receiver, live changes.
    Demo(DemoArgs),
    /// Validate every subscription for this workstation; non-zero exit if any is wrong.
    Check(AgentArgs),
    /// Create apisubscription (if missing) and rowhook's own tables.
    Migrate,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Process every due subscription once, then exit (for cron and tests).
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop by itself after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub seconds: Option<u64>,
}

/// Settings shared by the commands that act as this agent.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// This agent's workstation name (default: the hostname).
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
    #[arg(long, env = "ROWHOOK_SAFETY_LAG", default_value = "1s", value_parser = config::parse_duration)]
    pub safety_lag: Duration,
    /// The lag used when open transactions cannot be seen (no PROCESS grant).
    #[arg(long, env = "ROWHOOK_FALLBACK_LAG", default_value = "5s", value_parser = config::parse_duration)]
    pub fallback_lag: Duration,
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
            ..Settings::default()
        }
    }
}
