//! Leases: at most one agent delivers a subscription at a time.
//!
//! Two rowhook agents on one database (a standby, or rowhook started twice
//! by mistake) would otherwise both send every row. Each subscription has a
//! lease in `rowhook_lease`: its holder ([`AgentId`]), an epoch that grows
//! with every change of holder, and an expiry on the database server's
//! clock. The holder renews it; another agent takes it only once it has
//! expired, and that takeover raises the epoch.
//!
//! Two guards keep a holder that was frozen (a paused VM, a stopped
//! process, a cut network) from acting on a lease that has passed on:
//!
//! - **Fencing** — every write that moves a subscription forward (progress,
//!   `DateTimeStart`, health) is conditional on the lease still naming this
//!   holder and epoch ([`Fence`]); the database refuses it otherwise.
//! - **A local deadline** — a [`Hold`] is trusted only until a quarter of
//!   the lease before the server could let it go, measured on this
//!   machine's monotonic clock from *before* the renewal was sent. It is
//!   checked before each batch and again as the request body is first
//!   read by the HTTP client, so an agent woken after its deadline sends
//!   nothing, without asking the database.
//!
//! Only a request whose first byte had left before the freeze can still
//! arrive late: at most the batch that was in flight, which is the same
//! duplicate a crash leaves.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

/// The shortest lease accepted: renewals every quarter of it must fit
/// between ticks of a second.
pub const MIN_LEASE: Duration = Duration::from_secs(2);

/// The default lease: with one-second ticks a dead holder's subscriptions
/// move on within about 12 s.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// One running agent, as it is named in `rowhook_lease.holder`:
/// `WORKSTATION:pid:nonce`. The nonce tells apart two processes that got
/// the same pid (a restart in a container), so a new process never
/// inherits a dead one's leases by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentId(Arc<str>);

impl AgentId {
    /// This process's name, for `workstation`.
    pub fn this_process(workstation: &str, nonce: u16) -> Self {
        Self::from(format!("{workstation}:{}:{nonce:04x}", std::process::id()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for AgentId {
    fn from(name: String) -> Self {
        Self(name.into())
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a write must still match to be allowed: the holder and epoch the
/// lease had when this agent took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub holder: AgentId,
    pub epoch: i64,
}

/// A subscription's lease as the tick read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub holder: AgentId,
    pub epoch: i64,
    /// When this holder took it (server UTC).
    pub since: NaiveDateTime,
    /// Whether it had not yet expired by the server's clock.
    pub live: bool,
}

/// This agent's hold on one subscription: the fence its writes carry, and
/// until when (on this machine's monotonic clock) it may send.
#[derive(Debug, Clone)]
pub struct Hold {
    pub fence: Fence,
    until: Arc<Mutex<Option<Instant>>>,
}

impl Hold {
    /// A hold trusted until `until`.
    pub fn new(fence: Fence, until: Instant) -> Self {
        Self {
            fence,
            until: Arc::new(Mutex::new(Some(until))),
        }
    }

    /// Whether this agent may still send under this lease.
    pub fn is_valid(&self) -> bool {
        self.deadline().is_some_and(|until| Instant::now() < until)
    }

    /// A renewal that was sent before `until` − ¾ lease succeeded.
    pub fn extend(&self, until: Instant) {
        let mut deadline = self.lock();
        if deadline.is_some() {
            *deadline = Some(until);
        }
    }

    /// The lease passed to another agent (or was let go): never valid
    /// again, whatever a late renewal says.
    pub fn lose(&self) {
        *self.lock() = None;
    }

    pub fn is_lost(&self) -> bool {
        self.lock().is_none()
    }

    fn deadline(&self) -> Option<Instant> {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Instant>> {
        self.until.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How long a hold is trusted after a renewal sent at `sent`: the lease
/// less a quarter, so that it ends before the server could let another
/// agent take the lease (the server's expiry is counted from when it ran
/// the renewal, which is after `sent`).
pub fn trusted_until(sent: Instant, lease: Duration) -> Instant {
    sent + lease - lease / 4
}

/// How often a holder renews: four times a lease, so one or two slow or
/// failed renewals do not lose it.
pub fn renew_every(lease: Duration) -> Duration {
    lease / 4
}

/// How many of `total` subscriptions this agent may hold when `others`
/// other agents hold live leases: an even share, rounded up so the shares
/// always cover every subscription.
pub fn fair_share(total: usize, others: usize) -> usize {
    total.div_ceil(others + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence() -> Fence {
        Fence {
            holder: AgentId::from("A:1:0001".to_owned()),
            epoch: 3,
        }
    }

    #[test]
    fn a_hold_is_valid_until_its_deadline_and_never_after_it_is_lost() {
        let hold = Hold::new(fence(), Instant::now() + Duration::from_secs(60));
        assert!(hold.is_valid());
        hold.lose();
        assert!(!hold.is_valid());
        hold.extend(Instant::now() + Duration::from_secs(60));
        assert!(!hold.is_valid(), "a renewal cannot revive a lost lease");
        assert!(hold.is_lost());
        let passed = Hold::new(fence(), Instant::now());
        assert!(!passed.is_valid());
    }

    #[test]
    fn a_hold_ends_a_quarter_lease_before_the_server_lets_it_go() {
        let sent = Instant::now();
        let lease = Duration::from_secs(10);
        assert_eq!(
            trusted_until(sent, lease),
            sent + Duration::from_millis(7500)
        );
        assert_eq!(renew_every(lease), Duration::from_millis(2500));
    }

    #[test]
    fn fair_shares_cover_every_subscription() {
        assert_eq!(fair_share(300, 0), 300);
        assert_eq!(fair_share(300, 1), 150);
        assert_eq!(fair_share(301, 1), 151);
        assert_eq!(fair_share(1, 2), 1);
        assert_eq!(fair_share(0, 1), 0);
    }

    #[test]
    fn an_agent_is_named_by_workstation_pid_and_nonce() {
        let id = AgentId::this_process("FRONT-DESK", 0xab);
        let text = id.to_string();
        assert!(text.starts_with("FRONT-DESK:"), "{text}");
        assert!(text.ends_with(":00ab"), "{text}");
        assert!(text.contains(&std::process::id().to_string()), "{text}");
    }
}
