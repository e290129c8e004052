//! Issue 18: two agents on one database, one delivery. Two real `rowhook`
//! processes (workstations AGENT-A and AGENT-B) share a MariaDB database
//! and subscriptions whose `Workstation` is blank, so both may process
//! them; the per-subscription lease in `rowhook_lease` must let only one
//! deliver at a time, hand a subscription over when its holder goes away,
//! and keep a holder that lost it from sending what it read before.
//!
//! The tests prove, on real processes, real HTTP and a real server:
//! - a SIGKILLed holder is taken over within the lease and a couple of
//!   ticks, and no row is lost; only its batch in flight is sent again;
//! - a holder frozen (SIGSTOP) while it waits for a 200, woken after the
//!   other took over, finds it lost the lease and sends nothing more: its
//!   stale position is fenced off;
//! - 300 subscriptions claimed by two agents started together are each
//!   delivered by exactly one of them, each row once;
//! - a holder cut off from the database sends nothing after its lease
//!   would have expired, and the other takes over.
//!
//! The receiver is the test's own ([`Hook`]), not `rowhook::receiver`: it
//! stamps each request as it lands, before any deliberate delay, so
//! "nothing after the deadline" is judged by arrival, and it can hold one
//! chosen request unanswered so a holder is frozen at a known point.
//! Agents are told apart by the `Workstation` header rowhook sends.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::cut_proxy::CutProxy;
use crate::helpers::{eventually, Process, Sub, TestDb, PATIENCE};

/// The shortest lease rowhook accepts, so takeovers come within seconds.
const LEASE: Duration = Duration::from_secs(2);
const LEASE_ARG: &str = "2s";
/// rowhook's tick (`Settings::tick`, not a flag).
const TICK: Duration = Duration::from_secs(1);
/// Rows per POST: the most a takeover may send again.
const BATCH: usize = 100;
const BATCH_ARG: &str = "100";
/// Thirty batches: a window long enough to be interrupted half-way.
const ROWS: usize = 3000;
/// The bound for a takeover under the default 10 s lease; with a
/// 2 s lease it leaves room for a loaded machine. A correctness bound, not
/// a benchmark.
const TAKEOVER_BOUND: Duration = Duration::from_secs(15);

/// A few ticks: how soon a subscription moved to another workstation is
/// delivered by it (a correctness bound, not a benchmark).
const LET_GO_BOUND: Duration = Duration::from_secs(10);

const A: &str = "AGENT-A";
const B: &str = "AGENT-B";

/// The holder is SIGKILLed in the middle of a POST, after three answered
/// batches; the other agent takes the subscription over once the lease has
/// expired and finishes the window from the last recorded position.
#[tokio::test]
async fn a_killed_holder_is_taken_over_and_nothing_is_lost() {
    let db = TestDb::mysql().await;
    // Slow enough that thirty batches take seconds: the kill lands mid-window.
    let hook = Hook::start(Duration::from_millis(150), None).await;
    db.insert_appointments(ROWS, &db.ago(30).await).await;
    let id = subscribe_both(&db, &hook.url("/")).await;

    // Started together: which one gets the lease is up to them.
    let first = Agent::start(&db.url, A);
    let second = Agent::start(&db.url, B);
    assert!(
        hook.wait_until(PATIENCE, |r| r.len() >= 4).await,
        "a holder starts delivering:\n{}\n{}",
        first.log(),
        second.log()
    );
    let holder_name = hook.arrivals()[0].from.clone();
    let (mut holder, survivor) = if holder_name == A {
        (first, second)
    } else {
        (second, first)
    };
    let lease = lease_holder(&db, id).await;
    assert!(
        lease.starts_with(&format!("{holder_name}:")),
        "rowhook_lease names the agent that delivers ({holder_name}): {lease:?}"
    );
    holder.process.signal("-KILL").await;
    let killed = Instant::now();
    let _ = holder.process.exit_code().await;
    let before_kill = hook.arrivals();
    assert!(
        before_kill.iter().all(|r| r.from == holder.name),
        "only the holder delivers while it lives: {:?}",
        senders(&before_kill)
    );

    let all = hook
        .wait_until(PATIENCE, |r| delivered(r, "/").len() == ROWS)
        .await;
    let arrivals = hook.arrivals();
    let taken = arrivals
        .iter()
        .filter(|r| r.from == survivor.name)
        .map(|r| r.at)
        .min();
    let duplicates = duplicates(&arrivals, "/");
    let took = taken.map(|at| at.saturating_duration_since(killed));
    println!(
        "{} killed after {} batches; {} took over after {took:?} (lease {LEASE:?}, tick {TICK:?}); \
         {duplicates} duplicate rows",
        holder.name,
        before_kill.len(),
        survivor.name
    );
    assert!(
        all,
        "every row delivered: {} of {ROWS}",
        delivered(&arrivals, "/").len()
    );
    assert!(
        arrivals
            .iter()
            .filter(|r| r.from == survivor.name)
            .all(|r| r.at > killed),
        "{} sent nothing before the holder died",
        survivor.name
    );
    let took = took.expect("the survivor delivered");
    assert!(
        took <= TAKEOVER_BOUND,
        "the survivor's first batch came {took:?} after the kill (bound {TAKEOVER_BOUND:?})"
    );
    assert!(
        duplicates <= BATCH,
        "{duplicates} rows sent twice: more than the batch in flight ({BATCH})"
    );
    assert!(
        eventually(|| std::future::ready(said_with(&survivor.log(), "took over", &lease))).await,
        "the takeover is logged with the old holder {lease:?}:\n{}",
        survivor.log()
    );
    let now = lease_holder(&db, id).await;
    assert!(
        now.starts_with(&format!("{}:", survivor.name)),
        "the lease is the survivor's now: {now:?}"
    );
    // `status` names the holder and since when.
    let (code, out, err) = crate::helpers::run(Some(&db.url), &["status", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let lines: serde_json::Value = serde_json::from_str(&out).expect("status --json is JSON");
    let line = &lines[0];
    assert_eq!(line["holder"].as_str(), Some(now.as_str()), "{line}");
    assert!(
        line["holder_since"].as_str().is_some_and(|s| s.len() >= 19),
        "{line}"
    );
}

/// The held request: the fourth, after three answered batches.
const HELD: usize = 3;

/// The holder is frozen while it waits for the answer to its fourth batch:
/// the receiver leaves that request unanswered, the test stops the process
/// and only then lets the 200 go, into a socket nobody reads. The freeze
/// thus falls after the lease check and the send, where no check before a
/// POST can help. When it wakes the other agent has taken over and
/// delivered everything: the 200 it then reads must not move any position,
/// and it must send nothing more.
#[tokio::test]
async fn an_agent_frozen_past_its_lease_sends_nothing_stale_when_woken() {
    let db = TestDb::mysql().await;
    let hook = Hook::start(Duration::ZERO, Some(HELD)).await;
    db.insert_appointments(ROWS, &db.ago(30).await).await;
    let id = subscribe_both(&db, &hook.url("/")).await;

    let first = Agent::start(&db.url, A);
    let second = Agent::start(&db.url, B);
    assert!(
        hook.wait_until(PATIENCE, |r| r.len() > HELD).await,
        "a holder reaches its fourth batch:\n{}\n{}",
        first.log(),
        second.log()
    );
    let frozen_name = hook.arrivals()[HELD].from.clone();
    let (mut frozen, other) = if frozen_name == A {
        (first, second)
    } else {
        (second, first)
    };
    frozen.process.signal("-STOP").await;
    let before_freeze = hook.arrivals();
    let lease = lease_holder(&db, id).await;
    // Answered while the holder sleeps: the 200 waits in its socket.
    hook.release();
    assert!(
        before_freeze.iter().all(|r| r.from == frozen.name),
        "only the holder delivered before the freeze: {:?}",
        senders(&before_freeze)
    );
    assert!(
        lease.starts_with(&format!("{}:", frozen.name)),
        "the frozen agent held the lease: {lease:?}"
    );

    let all = hook
        .wait_until(PATIENCE, |r| delivered(r, "/").len() == ROWS)
        .await;
    assert!(
        all,
        "{} took over and delivered every row while {} slept: {} of {ROWS}\n{}",
        other.name,
        frozen.name,
        delivered(&hook.arrivals(), "/").len(),
        other.log()
    );

    // Stamped before the signal: anything from the frozen agent at or
    // after this instant was sent after it woke.
    let woke = Instant::now();
    frozen.process.signal("-CONT").await;
    assert!(
        eventually(|| std::future::ready(said(&frozen.log(), "lease lost"))).await,
        "the woken agent finds it lost the lease:\n{}",
        frozen.log()
    );
    // Its chances to send something stale: three ticks that handed out
    // windows, and at least two ticks of time (a woken runtime may run the
    // ticks it missed back to back).
    let lost = Instant::now();
    let ticks = frozen.ticks().await.expect("the woken agent's endpoint");
    assert!(
        frozen.ticks_reach(ticks + 3).await,
        "the woken agent goes on ticking:\n{}",
        frozen.log()
    );
    tokio::time::sleep((2 * TICK).saturating_sub(lost.elapsed())).await;

    let arrivals = hook.arrivals();
    let stale: Vec<_> = arrivals
        .iter()
        .filter(|r| r.from == frozen.name && r.at >= woke)
        .map(|r| (r.keys.first().copied(), r.at.duration_since(woke)))
        .collect();
    let duplicates = duplicates(&arrivals, "/");
    println!(
        "{} frozen at batch {}; {} sent {} requests; {duplicates} duplicate rows",
        frozen.name,
        HELD + 1,
        other.name,
        arrivals.iter().filter(|r| r.from == other.name).count()
    );
    assert!(
        stale.is_empty(),
        "requests from {} after it woke (first key, time after SIGCONT): {stale:?}",
        frozen.name
    );
    assert_eq!(delivered(&arrivals, "/").len(), ROWS, "every row delivered");
    assert!(
        duplicates <= BATCH,
        "{duplicates} rows sent twice: more than the held batch ({BATCH})"
    );
    assert!(
        said_with(&other.log(), "took over", &lease),
        "the takeover is logged with the old holder {lease:?}:\n{}",
        other.log()
    );
}

const SUBSCRIPTIONS: usize = 300;
const FEW: usize = 5;

/// Both agents start at once and race for 300 leases on their first ticks.
/// Each subscription must be delivered by one agent only, each row once:
/// two agents that both believed they held a lease would show as two
/// `Workstation` values on one path.
#[tokio::test]
async fn two_agents_started_together_deliver_each_of_300_subscriptions_once() {
    let db = TestDb::mysql().await;
    let hook = Hook::start(Duration::ZERO, None).await;
    let stamp = db.ago(30).await;
    db.insert_appointments(FEW, &stamp).await;
    let start = db.ago(60).await;
    let urls: Vec<String> = (0..SUBSCRIPTIONS)
        .map(|i| hook.url(&format!("/s/{i}")))
        .collect();
    let mut binds: Vec<&str> = Vec::new();
    for url in &urls {
        binds.extend([url.as_str(), start.as_str()]);
    }
    let values = vec![
        "(?, '', 'key123', 'Appointment', 0, '', ?, '0001-01-01 00:00:00', '')";
        SUBSCRIPTIONS
    ];
    db.exec(
        &format!(
            "INSERT INTO apisubscription (EndPointUrl, Workstation, CustomerKey, WatchTable, \
             PollingSeconds, UiEventType, DateTimeStart, DateTimeStop, Note) VALUES {}",
            values.join(", ")
        ),
        &binds,
    )
    .await;

    let agents = [Agent::start(&db.url, A), Agent::start(&db.url, B)];
    let paths: Vec<String> = (0..SUBSCRIPTIONS).map(|i| format!("/s/{i}")).collect();
    let complete = |r: &[Arrival]| {
        let mut got: HashMap<&str, HashSet<i64>> = HashMap::new();
        for arrival in r.iter().filter(|a| a.answered) {
            got.entry(arrival.path.as_str())
                .or_default()
                .extend(&arrival.keys);
        }
        paths
            .iter()
            .all(|p| got.get(p.as_str()).is_some_and(|k| k.len() == FEW))
    };
    let all = hook.wait_until(PATIENCE, complete).await;
    assert!(
        all,
        "every subscription gets its {FEW} rows:\n{}\n{}",
        agents[0].log(),
        agents[1].log()
    );

    // Nothing left to send: every window closed (each DateTimeStart moved
    // past the rows), and each agent has since had two more ticks in which
    // a second delivery could have started.
    let closed = eventually(|| async {
        db.text(
            "SELECT CAST(COUNT(*) AS CHAR) FROM apisubscription WHERE DateTimeStart <= ?",
            &[&stamp],
        )
        .await
        .as_deref()
            == Some("0")
    })
    .await;
    assert!(closed, "every watermark moved past the rows");
    for agent in &agents {
        let ticks = agent.ticks().await.expect("the agent's endpoint");
        assert!(
            agent.ticks_reach(ticks + 2).await,
            "{} goes on ticking",
            agent.name
        );
    }

    let arrivals = hook.arrivals();
    let mut by: HashMap<&str, usize> = HashMap::new();
    let mut shared = Vec::new();
    let mut twice = Vec::new();
    for path in &paths {
        let own: Vec<&Arrival> = arrivals.iter().filter(|r| &r.path == path).collect();
        let from: BTreeSet<&str> = own.iter().map(|r| r.from.as_str()).collect();
        if let [only] = from.iter().copied().collect::<Vec<_>>()[..] {
            *by.entry(only).or_default() += 1;
        } else {
            shared.push((path.as_str(), from));
        }
        let sent: usize = own.iter().map(|r| r.keys.len()).sum();
        if sent != FEW {
            twice.push((path.as_str(), sent));
        }
    }
    println!(
        "{SUBSCRIPTIONS} subscriptions: {} by {A}, {} by {B}",
        by.get(A).copied().unwrap_or(0),
        by.get(B).copied().unwrap_or(0)
    );
    assert!(
        shared.is_empty(),
        "{} subscriptions delivered by both agents, e.g. {:?}",
        shared.len(),
        shared.first()
    );
    assert!(
        twice.is_empty(),
        "{} subscriptions got rows twice (path, rows sent for {FEW}), e.g. {:?}",
        twice.len(),
        twice.first()
    );
}

/// A reaches MariaDB through a proxy, B directly. A starts first, so it
/// holds the lease; after a few batches its proxy drops every connection
/// and refuses new ones. A cannot renew, so from its lease deadline on
/// (at the latest the cut plus the lease) it must send nothing, whatever
/// it has read ahead; B takes over and finishes.
#[tokio::test]
async fn an_agent_cut_off_from_the_database_stops_and_the_other_takes_over() {
    let db = TestDb::mysql().await;
    let proxy = CutProxy::start(&db.url).await;
    // Thirty batches of 200 ms: six seconds, so B is up and ticking well
    // before A's window is half done.
    let hook = Hook::start(Duration::from_millis(200), None).await;
    db.insert_appointments(ROWS, &db.ago(30).await).await;
    let id = subscribe_both(&db, &hook.url("/")).await;

    let a = Agent::start(&proxy.url, A);
    assert!(
        hook.wait_until(PATIENCE, |r| !r.is_empty()).await,
        "A delivers:\n{}",
        a.log()
    );
    let b = Agent::start(&db.url, B);
    assert!(
        b.ticks_reach(2).await,
        "B is running beside A:\n{}",
        b.log()
    );
    assert!(hook.wait_until(PATIENCE, |r| r.len() >= 4).await);
    let lease = lease_holder(&db, id).await;
    proxy.cut();
    let cut = Instant::now();
    let before_cut = hook.arrivals();
    assert!(
        before_cut.iter().all(|r| r.from == A),
        "only A delivered while it held the lease: {:?}",
        senders(&before_cut)
    );
    assert!(
        before_cut.len() < ROWS / BATCH,
        "the cut comes mid-window, not after {} batches",
        before_cut.len()
    );
    assert!(
        lease.starts_with(&format!("{A}:")),
        "A held the lease: {lease:?}"
    );

    // B finishing takes at least the lease and the rest of the window,
    // seconds past A's deadline: time in which a fenced-off A would
    // have sent what it had read ahead.
    let all = hook
        .wait_until(PATIENCE, |r| delivered(r, "/").len() == ROWS)
        .await;
    let arrivals = hook.arrivals();
    let late: Vec<Duration> = arrivals
        .iter()
        .filter(|r| r.from == A && r.at > cut + LEASE)
        .map(|r| r.at.duration_since(cut))
        .collect();
    let last_a = arrivals.iter().rev().find(|r| r.from == A);
    let first_b = arrivals.iter().find(|r| r.from == B);
    let duplicates = duplicates(&arrivals, "/");
    println!(
        "relative to the cut: A's last request {:+.3} s, B's first {:+.3} s; {duplicates} duplicate rows",
        last_a.map_or(f64::NAN, |r| seconds(r.at, cut)),
        first_b.map_or(f64::NAN, |r| seconds(r.at, cut)),
    );
    assert!(
        all,
        "B took over and delivered every row: {} of {ROWS}\n{}",
        delivered(&arrivals, "/").len(),
        b.log()
    );
    assert!(
        late.is_empty(),
        "A sent after its lease ran out (times after the cut): {late:?}"
    );
    assert!(
        arrivals.iter().filter(|r| r.from == B).all(|r| r.at > cut),
        "B sent nothing while A held the lease"
    );
    assert!(
        duplicates <= BATCH,
        "{duplicates} rows sent twice: more than the batch in flight ({BATCH})"
    );
    assert!(
        said_with(&b.log(), "took over", &lease),
        "the takeover is logged with the old holder {lease:?}:\n{}",
        b.log()
    );
}

/// The last check comes as the HTTP client first reads the body, after
/// the one before each batch: a lease that ran out between the two sends
/// no body, so the receiver never acts on the request. A body sent under a
/// lease still carries `Content-Length`, as Open Dental's requests do (a
/// receiver written for them may not read a chunked body).
#[tokio::test]
async fn a_body_goes_only_under_a_valid_lease_and_with_its_length() {
    use rowhook::delivery::sender::{Failure, Sender};
    use rowhook::delivery::signing::Signer;
    use rowhook::domain::lease::{AgentId, Fence, Hold};
    use rowhook::domain::secret::{SigningSecret, StoredSecrets};
    use rowhook::domain::subscription::{Parsed, SubscriptionRow};

    let rx = rowhook::receiver::Receiver::start().await.unwrap();
    let settings = crate::helpers::settings();
    let sender = Sender::new(settings.http()).unwrap();
    let row = SubscriptionRow {
        num: 7,
        endpoint_url: rx.url("/leased"),
        workstation: String::new(),
        customer_key: String::new(),
        watch_table: "Appointment".into(),
        polling_seconds: 1,
        ui_event_type: String::new(),
        date_time_start: "2026-01-01 00:00:00".into(),
        date_time_stop: "0001-01-01 00:00:00".into(),
    };
    let Ok(Parsed::Database(subscription)) = row.parse() else {
        panic!("the row parses");
    };
    let stored = StoredSecrets {
        current: SigningSecret::generate().unwrap(),
        previous: None,
    };
    let signer = Signer::at(&stored, chrono::Utc::now().naive_utc());
    let fence = Fence {
        holder: AgentId::from("A:1:0001".to_owned()),
        epoch: 1,
    };
    let body = bytes::Bytes::from_static(b"[{\"AptNum\":1}]");

    let ran_out = Hold::new(fence.clone(), Instant::now());
    let sent = sender
        .send(
            &subscription,
            "Appointment",
            "b1",
            &signer,
            body.clone(),
            Some(&ran_out),
        )
        .await;
    assert_eq!(sent, Err(Failure::LeaseExpired));
    assert!(
        rx.requests().is_empty(),
        "the receiver got no request to act on: {:?}",
        rx.requests()
    );

    let valid = Hold::new(fence, Instant::now() + Duration::from_secs(60));
    let sent = sender
        .send(
            &subscription,
            "Appointment",
            "b2",
            &signer,
            body.clone(),
            Some(&valid),
        )
        .await;
    assert_eq!(sent, Ok(()));
    let got = rx.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, body);
    assert_eq!(
        got[0].header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(got[0].header("transfer-encoding"), None);
}

/// A subscription given to another workstation is let go at once by the
/// agent that held it: the agent it now names takes it on its next tick,
/// not when the lease (here a minute) would have expired. Two agents run
/// in this process, each with leases of its own.
#[tokio::test]
async fn a_subscription_moved_to_another_workstation_is_let_go_at_once() {
    let app = crate::app::TestApp::mysql().await;
    let db = &app.db;
    let id = subscribe_both(db, &app.rx.url("/moved")).await;
    // Longer than any wait here: only letting go can hand it over in time.
    let lease = 2 * PATIENCE;
    let agent = |name: &str| rowhook::config::Settings {
        workstation: name.into(),
        lease,
        ..crate::helpers::settings()
    };
    let a = app.daemon(agent(A));
    let b = app.daemon(agent(B));
    db.insert_appointments(1, &db.ago(5).await).await;
    let from = |r: &rowhook::receiver::Request| r.header("Workstation").map(str::to_owned);
    assert!(
        app.rx.wait_until(PATIENCE, |r| r.len() == 1).await,
        "one agent delivers the first row"
    );
    let first = from(&app.rx.requests()[0]);
    let (holder, other) = if first.as_deref() == Some(A) {
        (A, B)
    } else {
        (B, A)
    };

    db.exec(
        "UPDATE apisubscription SET Workstation = ? WHERE ApiSubscriptionNum = ?",
        &[other, &id.to_string()],
    )
    .await;
    let moved = Instant::now();
    db.insert_appointments(1, &db.ago(0).await).await;
    assert!(
        app.rx.wait_until(PATIENCE, |r| r.len() == 2).await,
        "{other} delivers the next row"
    );
    let took = moved.elapsed();
    let got = app.rx.requests();
    assert_eq!(from(&got[1]).as_deref(), Some(other), "{holder} let it go");
    assert!(
        took < LET_GO_BOUND,
        "{other} took it within a few ticks, not after {holder}'s lease: {took:?}"
    );
    assert!(lease_holder(db, id).await.starts_with(&format!("{other}:")));
    a.stop().await;
    b.stop().await;
}

/// A subscription for every agent (blank `Workstation`), due every tick,
/// starting before the rows; returns its number.
async fn subscribe_both(db: &TestDb, url: &str) -> i64 {
    db.subscribe(Sub {
        workstation: "",
        polling: 0,
        ..Sub::new(url)
    })
    .await
}

/// `rowhook_lease.holder` of subscription `id` (empty if none).
async fn lease_holder(db: &TestDb, id: i64) -> String {
    db.text(
        "SELECT CAST(holder AS CHAR) FROM rowhook_lease WHERE subscription_num = ?",
        &[&id.to_string()],
    )
    .await
    .unwrap_or_default()
}

/// Whether a line of `log` says `phrase`, in any case.
fn said(log: &str, phrase: &str) -> bool {
    log.to_lowercase().contains(&phrase.to_lowercase())
}

/// Whether one line of `log` says `phrase` (in any case) and names `what`.
fn said_with(log: &str, phrase: &str, what: &str) -> bool {
    log.lines().any(|l| said(l, phrase) && l.contains(what))
}

/// `at` less `origin` in seconds, negative when `at` came first.
fn seconds(at: Instant, origin: Instant) -> f64 {
    match at.checked_duration_since(origin) {
        Some(after) => after.as_secs_f64(),
        None => -origin.duration_since(at).as_secs_f64(),
    }
}

/// Who sent each request, in order.
fn senders(arrivals: &[Arrival]) -> Vec<&str> {
    arrivals.iter().map(|r| r.from.as_str()).collect()
}

/// The distinct keys of the requests to `path` that were answered 200.
fn delivered(arrivals: &[Arrival], path: &str) -> BTreeSet<i64> {
    arrivals
        .iter()
        .filter(|r| r.answered && r.path == path)
        .flat_map(|r| r.keys.iter().copied())
        .collect()
}

/// Rows that arrived at `path` more than once, counting requests that
/// were never answered (a batch cut short was still sent).
fn duplicates(arrivals: &[Arrival], path: &str) -> usize {
    let sent: Vec<i64> = arrivals
        .iter()
        .filter(|r| r.path == path)
        .flat_map(|r| r.keys.iter().copied())
        .collect();
    let distinct: HashSet<i64> = sent.iter().copied().collect();
    sent.len() - distinct.len()
}

/// One `rowhook run` agent: the real binary under a workstation name of
/// its own, with a 2 s lease and its HTTP endpoint on a free loopback port
/// (its tick counter tells a test the agent has had its chances to act).
struct Agent {
    name: &'static str,
    process: Process,
}

impl Agent {
    fn start(url: &str, name: &'static str) -> Self {
        let args = [
            "run",
            "--lease",
            LEASE_ARG,
            "--batch-size",
            BATCH_ARG,
            // Longer than any freeze here: a frozen agent that wakes reads
            // the answer waiting in its socket, not a timeout.
            "--request-timeout",
            "60s",
            "--http",
            "127.0.0.1:0",
        ];
        let env = [("RUST_LOG", "info"), ("ROWHOOK_WORKSTATION", name)];
        Self {
            name,
            process: Process::start_at(url, &env, &args),
        }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// `http://ADDR` of the endpoint, once the agent has said where.
    fn endpoint(&self) -> Option<String> {
        let log = self.log();
        let line = log
            .lines()
            .find(|l| l.contains("HTTP endpoint listening"))?;
        let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
        Some(format!("http://{addr}"))
    }

    /// `rowhook_ticks_total`: ticks that read `apisubscription`.
    async fn ticks(&self) -> Option<u64> {
        let url = format!("{}/metrics", self.endpoint()?);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .ok()?;
        let text = client.get(url).send().await.ok()?.text().await.ok()?;
        let line = text
            .lines()
            .find(|l| l.starts_with("rowhook_ticks_total "))?;
        let value: f64 = line.rsplit(' ').next()?.parse().ok()?;
        Some(value as u64)
    }

    /// Waits, up to [`PATIENCE`], until the agent has ticked `n` times.
    async fn ticks_reach(&self, n: u64) -> bool {
        eventually(|| async { self.ticks().await.is_some_and(|t| t >= n) }).await
    }
}

/// One request as it landed.
#[derive(Debug, Clone)]
struct Arrival {
    at: Instant,
    /// The `Workstation` header: which agent sent it.
    from: String,
    path: String,
    /// `AptNum` of each row, in order.
    keys: Vec<i64>,
    /// Answered 200 (a sender killed meanwhile may never have read it).
    answered: bool,
}

struct Shared {
    log: Mutex<Vec<Arrival>>,
    changed: Notify,
    delay: Duration,
    /// The index of the request answered only on [`Hook::release`].
    hold: Option<usize>,
    released: watch::Receiver<bool>,
}

/// A receiver on loopback that answers every request 200 after `delay`,
/// except the one it holds, and records each as it lands.
struct Hook {
    addr: SocketAddr,
    shared: Arc<Shared>,
    release: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl Hook {
    async fn start(delay: Duration, hold: Option<usize>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (release, released) = watch::channel(false);
        let shared = Arc::new(Shared {
            log: Mutex::default(),
            changed: Notify::new(),
            delay,
            hold,
            released,
        });
        let app = axum::Router::new()
            .fallback(arrive)
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            shared,
            release,
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the held request.
    fn release(&self) {
        self.release.send_replace(true);
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Waits until `done` holds of the requests so far, or `limit` passes;
    /// returns whether it held.
    async fn wait_until(&self, limit: Duration, done: impl Fn(&[Arrival]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.shared.changed.notified();
            if done(&self.shared.log.lock().unwrap()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(&self.shared.log.lock().unwrap());
            }
        }
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.release();
        self.server.abort();
    }
}

async fn arrive(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let keys = serde_json::from_slice::<Vec<serde_json::Value>>(&body)
        .unwrap_or_default()
        .iter()
        .filter_map(|row| row.get("AptNum").and_then(serde_json::Value::as_i64))
        .collect();
    let arrival = Arrival {
        at: Instant::now(),
        from: headers
            .get("Workstation")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        path: uri.path().to_owned(),
        keys,
        answered: false,
    };
    let n = {
        let mut log = shared.log.lock().unwrap();
        log.push(arrival);
        log.len() - 1
    };
    shared.changed.notify_waiters();
    if shared.hold == Some(n) {
        let mut released = shared.released.clone();
        let _ = released.wait_for(|r| *r).await;
    } else if !shared.delay.is_zero() {
        tokio::time::sleep(shared.delay).await;
    }
    shared.log.lock().unwrap()[n].answered = true;
    shared.changed.notify_waiters();
    StatusCode::OK
}
