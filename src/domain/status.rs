//! What "status" means, once: a subscription's state, lag and health as
//! `rowhook status`, the status page and the metrics all show them.
//!
//! Pure: it takes the row, its stored health, the server's local clock and
//! this agent's workstation name, all of which one snapshot reads.

use std::time::Duration;

use chrono::NaiveDateTime;

use super::health::Health;
use super::lease::LeaseRow;
use super::progress::Clock;
use super::subscription::{parse_od_datetime, Parsed, SubscriptionRow};

/// A subscription's state, as one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Active,
    BackingOff,
    Deactivated,
    Expired,
    OtherWorkstation,
    UiEvent,
    Invalid,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::BackingOff => "backing-off",
            Self::Deactivated => "deactivated",
            Self::Expired => "expired",
            Self::OtherWorkstation => "other-workstation",
            Self::UiEvent => "ui-event",
            Self::Invalid => "invalid",
        }
    }
}

/// One subscription's status. `url` is the endpoint with any password
/// redacted (`Endpoint`'s `Display`); the customer key is never here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    /// The server's clock less `DateTimeStart`, whole seconds.
    pub lag: Option<Duration>,
    pub url: Option<String>,
    /// Why the row cannot be used, or the last failure's reason.
    pub reason: Option<String>,
}

/// Which agent delivers a subscription, where agents share the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// `WORKSTATION:pid:nonce`, as in `rowhook_lease`.
    pub agent: String,
    /// When it took the lease, in Open Dental's local time like every
    /// other time shown.
    pub since: NaiveDateTime,
    /// False once the lease has expired unrenewed (the holder stopped or
    /// lost the database); another agent takes it on its next tick.
    pub live: bool,
}

/// The holder of `lease`, its time turned to local by the snapshot's
/// `clock` (both readings were taken in one statement).
pub fn holder(lease: Option<&LeaseRow>, clock: Clock) -> Option<Holder> {
    let lease = lease?;
    Some(Holder {
        agent: lease.holder.to_string(),
        // Within a day of each other and of a DATETIME: never out of range,
        // but data is not trusted to prove it.
        since: lease
            .since
            .checked_add_signed(clock.local - clock.instant)
            .unwrap_or(lease.since),
        live: lease.live,
    })
}

impl Holder {
    /// As `status` and the page show it: the agent, marked when expired.
    pub fn shown(&self) -> String {
        if self.live {
            self.agent.clone()
        } else {
            format!("{} (expired)", self.agent)
        }
    }
}

/// The server's clock `now` less the row's `DateTimeStart`, if both are
/// times and it is not in the future.
pub fn lag(row: &SubscriptionRow, now: NaiveDateTime) -> Option<Duration> {
    let start = parse_od_datetime("DateTimeStart", &row.date_time_start).ok()?;
    let lag = (now - start).to_std().ok()?;
    Some(Duration::from_secs(lag.as_secs()))
}

/// The status of `row` for the agent named `ours`.
pub fn describe(row: &SubscriptionRow, health: &Health, now: NaiveDateTime, ours: &str) -> Status {
    let failure =
        (!health.last_failure_reason.is_empty()).then(|| health.last_failure_reason.clone());
    let (state, url, reason) = match row.parse() {
        Err(error) => (State::Invalid, None, Some(error.to_string())),
        Ok(Parsed::UiEvent { .. }) => (State::UiEvent, None, failure),
        Ok(Parsed::Database(s)) => {
            let state = if !s.workstation.matches(ours) {
                State::OtherWorkstation
            } else if health.deactivated_at.is_some() {
                State::Deactivated
            } else if s.is_expired(now) {
                State::Expired
            } else if !health.may_attempt(now) {
                State::BackingOff
            } else {
                State::Active
            };
            (state, Some(s.endpoint.to_string()), failure)
        }
    };
    Status {
        state,
        lag: lag(row, now),
        url,
        reason,
    }
}
