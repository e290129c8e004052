//! This agent's leases, kept from tick to tick: which subscriptions it may
//! deliver when other agents share the database (MariaDB only; see
//! [`crate::domain::lease`] for the rules).
//!
//! Each tick, after reading the snapshot (which carries every lease):
//!
//! 1. leases of subscriptions gone or moved to another workstation are let
//!    go, so the agent they now belong to need not wait for them to expire;
//! 2. a lease the snapshot shows with another holder or epoch is lost: its
//!    [`Hold`] is ended at once, so a window still running under it sends
//!    and writes nothing more;
//! 3. every quarter lease, all held leases are renewed in one statement;
//! 4. of the due subscriptions, those held run; free ones (no lease row)
//!    are taken and run at once; expired ones are taken over, with a WARN
//!    naming the old holder, and run from the next tick, whose snapshot is
//!    read after the takeover and so sees the old holder's last writes.
//!
//! Spread: an agent takes free or expired leases only up to its fair share
//! of this workstation's subscriptions among the agents it sees holding
//! live ones; an agent holding none is invisible, so in practice the first
//! to ask takes every free lease (agents started together race). Live
//! leases are never moved: a move is itself a handover that may repeat a
//! batch. A standby started later waits for leases to expire.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{lock, Admitted};
use crate::db::{Database, Snapshot};
use crate::domain::lease::{self, AgentId, Fence, Hold, LeaseRow};
use crate::domain::subscription::SubscriptionId;

/// This agent's leases.
pub(super) struct Leases {
    agent: AgentId,
    lease: Duration,
    held: Mutex<HashMap<SubscriptionId, Hold>>,
    /// When the last renewal was sent.
    renewed: Mutex<Option<Instant>>,
    /// A lease was taken over this tick; its window runs from the next.
    took_over: AtomicBool,
}

/// The due subscriptions that need a lease this tick, by kind.
#[derive(Default)]
struct Wanted {
    free: Vec<SubscriptionId>,
    /// With the holder whose lease expired.
    expired: Vec<(SubscriptionId, AgentId)>,
}

impl Leases {
    pub(super) fn new(workstation: &str, lease: Duration) -> Self {
        let mut nonce = [0u8; 2];
        // Without randomness the pid alone still names this process.
        let _ = getrandom::getrandom(&mut nonce);
        Self {
            agent: AgentId::this_process(workstation, u16::from_le_bytes(nonce)),
            lease,
            held: Mutex::default(),
            renewed: Mutex::default(),
            took_over: AtomicBool::new(false),
        }
    }

    pub(super) fn agent(&self) -> &AgentId {
        &self.agent
    }

    /// Whether the last tick took a lease over whose window waits for the
    /// next tick.
    pub(super) fn took_over(&self) -> bool {
        self.took_over.load(Ordering::Relaxed)
    }

    /// Steps 1–3: lets go of what is no longer this workstation's, drops
    /// what was lost, renews the rest when due.
    pub(super) async fn maintain(
        &self,
        db: &Database,
        snapshot: &Snapshot,
        ours: &HashSet<SubscriptionId>,
    ) {
        self.took_over.store(false, Ordering::Relaxed);
        self.let_go(db, ours).await;
        self.drop_lost(&snapshot.leases);
        self.renew(db).await;
    }

    /// Ends every hold the snapshot shows has passed to another holder or
    /// epoch (or whose row is gone).
    fn drop_lost(&self, leases: &HashMap<SubscriptionId, LeaseRow>) {
        lock(&self.held).retain(|id, hold| {
            let row = leases.get(id);
            let kept =
                row.is_some_and(|row| row.holder == self.agent && row.epoch == hold.fence.epoch);
            if !kept {
                hold.lose();
                let now = row.map_or("nobody".to_owned(), |r| r.holder.to_string());
                tracing::warn!(subscription = %id, holder = %now,
                    "Lease lost: another agent delivers this subscription now.");
            }
            kept
        });
    }

    /// Lets go of the leases of subscriptions that are gone or now belong
    /// to another workstation.
    async fn let_go(&self, db: &Database, ours: &HashSet<SubscriptionId>) {
        let gone: Vec<SubscriptionId> = {
            let mut held = lock(&self.held);
            let gone: Vec<SubscriptionId> = held
                .keys()
                .filter(|id| !ours.contains(id))
                .copied()
                .collect();
            for id in &gone {
                if let Some(hold) = held.remove(id) {
                    hold.lose();
                }
            }
            gone
        };
        if gone.is_empty() {
            return;
        }
        if let Err(error) = db.release_leases(&self.agent, Some(&gone)).await {
            tracing::warn!(%error, "Cannot let go of the leases of subscriptions no longer this agent's; they will expire.");
        }
    }

    /// Renews every held lease when a quarter lease has passed since the
    /// last renewal.
    async fn renew(&self, db: &Database) {
        let due =
            lock(&self.renewed).map_or(true, |at| at.elapsed() >= lease::renew_every(self.lease));
        let held: Vec<SubscriptionId> = lock(&self.held).keys().copied().collect();
        if held.is_empty() || !due {
            return;
        }
        let sent = Instant::now();
        let until = lease::trusted_until(sent, self.lease);
        match db.renew_leases(&self.agent, self.lease, &held).await {
            Ok(None) => lock(&self.held).values().for_each(|h| h.extend(until)),
            Ok(Some(still)) => lock(&self.held).retain(|id, hold| {
                let kept = still.get(id) == Some(&hold.fence.epoch);
                if kept {
                    hold.extend(until);
                } else {
                    hold.lose();
                    tracing::warn!(subscription = %id,
                        "Lease lost: another agent delivers this subscription now.");
                }
                kept
            }),
            Err(error) => {
                tracing::warn!(%error, "Cannot renew this agent's leases; its windows stop when they run out.");
                return;
            }
        }
        *lock(&self.renewed) = Some(sent);
    }

    /// Step 4: the due subscriptions that run now, each with its hold.
    pub(super) async fn admit(
        &self,
        db: &Database,
        snapshot: &Snapshot,
        ours: usize,
        due: Vec<Admitted>,
    ) -> Vec<Admitted> {
        let mut wanted = Wanted::default();
        let mut run = Vec::with_capacity(due.len());
        let mut waiting = HashMap::new();
        for mut admitted in due {
            let id = admitted.job.subscription.id;
            if let Some(hold) = lock(&self.held).get(&id) {
                // A hold past its deadline waits for its renewal.
                if hold.is_valid() {
                    admitted.job.lease = Some(hold.clone());
                    run.push(admitted);
                }
                continue;
            }
            match snapshot.leases.get(&id) {
                None => wanted.free.push(id),
                // Its own row without a hold (a take whose answer was lost):
                // nothing runs under it, so it is taken again, as expired.
                Some(row) if !row.live || row.holder == self.agent => {
                    wanted.expired.push((id, row.holder.clone()));
                }
                Some(_) => continue,
            }
            waiting.insert(id, admitted);
        }
        let others = live_holders(&snapshot.leases, &self.agent);
        let share = lease::fair_share(ours, others);
        let room = share.saturating_sub(lock(&self.held).len());
        wanted.free.truncate(room);
        let room = room - wanted.free.len();
        wanted.expired.truncate(room);
        let free: HashSet<SubscriptionId> = self.take(db, wanted).await;
        for (id, mut admitted) in waiting {
            if !free.contains(&id) {
                continue;
            }
            admitted.job.lease = lock(&self.held).get(&id).cloned();
            run.push(admitted);
        }
        run
    }

    /// Takes the wanted leases; returns the free ones won (which may run
    /// now).
    async fn take(&self, db: &Database, wanted: Wanted) -> HashSet<SubscriptionId> {
        if wanted.free.is_empty() && wanted.expired.is_empty() {
            return HashSet::new();
        }
        let sent = Instant::now();
        let expired: Vec<SubscriptionId> = wanted.expired.iter().map(|(id, _)| *id).collect();
        let won = match db
            .take_leases(&self.agent, self.lease, &wanted.free, &expired)
            .await
        {
            Ok(won) => won,
            Err(error) => {
                tracing::warn!(%error, "Cannot take subscriptions' leases; trying again next tick.");
                return HashSet::new();
            }
        };
        let until = lease::trusted_until(sent, self.lease);
        let mut held = lock(&self.held);
        for (&id, &epoch) in &won {
            let fence = Fence {
                holder: self.agent.clone(),
                epoch,
            };
            held.insert(id, Hold::new(fence, until));
        }
        drop(held);
        for (id, old) in &wanted.expired {
            if !won.contains_key(id) {
                continue;
            }
            self.took_over.store(true, Ordering::Relaxed);
            if *old != self.agent {
                tracing::warn!(subscription = %id, old_holder = %old, agent = %self.agent,
                    "Took over the lease of a subscription whose holder stopped renewing it; \
                     its window continues from the last acknowledged batch.");
            }
        }
        let free: HashSet<SubscriptionId> = wanted
            .free
            .into_iter()
            .filter(|id| won.contains_key(id))
            .collect();
        if !free.is_empty() {
            tracing::info!(subscriptions = free.len(), agent = %self.agent, "Took free leases.");
        }
        free
    }

    /// Lets every lease go (a clean shutdown, after the windows ended).
    pub(super) async fn release_all(&self, db: &Database) {
        let held: Vec<Hold> = lock(&self.held).drain().map(|(_, hold)| hold).collect();
        held.iter().for_each(Hold::lose);
        match db.release_leases(&self.agent, None).await {
            Ok(n) if n > 0 => tracing::info!(leases = n, "Let go of this agent's leases."),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "Cannot let go of this agent's leases; they will expire.");
            }
        }
    }
}

/// How many other agents hold live leases.
fn live_holders(leases: &HashMap<SubscriptionId, LeaseRow>, me: &AgentId) -> usize {
    leases
        .values()
        .filter(|row| row.live && row.holder != *me)
        .map(|row| &row.holder)
        .collect::<HashSet<_>>()
        .len()
}
