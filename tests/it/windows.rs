//! The Windows binary (`rowhook.exe`, cross-built with mingw-w64) under
//! Wine, against this machine's MariaDB and a real receiver on loopback:
//! the contract's core, the demo, the NetBIOS workstation name, and the
//! service under Wine's Service Control Manager.
//!
//! Setup, once per test run: the tools (Wine, mingw-w64) must be installed
//! (`scripts/ensure-windows.sh` does it; their absence fails the tests
//! naming it), then `scripts/ensure-windows.sh --build` builds the release
//! exe (a no-op when it is current, so it is never stale) and the
//! test-only ProcessPrng stand-in DLL next to a copy of it in
//! `target/wine-test/`. Wine runs with its own prefix there.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rowhook::receiver::{Behaviour, Receiver};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::helpers::{eventually, keys, Sub, TestDb, WORKSTATION};

/// Wine starts slowly, the more so on a loaded machine.
const WINE_PATIENCE: Duration = Duration::from_secs(120);

struct Wine {
    dir: PathBuf,
    prefix: PathBuf,
}

impl Wine {
    fn exe(&self) -> PathBuf {
        self.dir.join("rowhook.exe")
    }

    /// `wine rowhook.exe ARGS` with no rowhook settings in its environment
    /// but those given.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new("wine");
        command
            .arg(self.exe())
            .args(args)
            .current_dir(&self.dir)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .env_remove("ROWHOOK_WORKSTATION")
            .env_remove("ROWHOOK_CONFIG")
            .envs(env.iter().copied())
            .kill_on_drop(true);
        command
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn require(tool: &str) {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is missing: run scripts/ensure-windows.sh (installs mingw-w64, Wine and the Rust target)"
    );
}

/// Builds and lays out the exe and the DLL once, and makes the prefix.
fn wine() -> &'static Wine {
    static WINE: OnceLock<Wine> = OnceLock::new();
    WINE.get_or_init(|| {
        require("wine");
        require("x86_64-w64-mingw32-gcc");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ensure-windows.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg("--build")
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "scripts/ensure-windows.sh --build failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = target_dir().join("wine-test");
        let wine = Wine {
            prefix: dir.join("prefix"),
            dir,
        };
        assert!(wine.dir.join("bcryptprimitives.dll").is_file());
        std::fs::create_dir_all(&wine.prefix).expect("the prefix directory");
        // Made once here, not by the tests' first, concurrent wine calls.
        let booted = std::process::Command::new("wine")
            .arg("wineboot")
            .env("WINEPREFIX", &wine.prefix)
            .env("WINEDEBUG", "-all")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            booted.is_ok_and(|s| s.success()),
            "wineboot made the prefix"
        );
        wine
    })
}

/// A running `wine rowhook.exe` whose stderr is collected.
struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    fn start(db: &TestDb, args: &[&str]) -> Self {
        // The shortest lease, as for Linux processes (`helpers::TEST_LEASE`):
        // a restarted agent waits out its killed predecessor's.
        let env = [
            ("DATABASE_URL", db.url.as_str()),
            ("ROWHOOK_WORKSTATION", WORKSTATION),
            ("ROWHOOK_LEASE", crate::helpers::TEST_LEASE),
        ];
        let mut child = wine()
            .command(args, &env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wine starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self { child, stderr }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGINT reaches a Windows process under Wine as Ctrl-C; SIGKILL ends
    /// it as TerminateProcess would, with no chance to clean up.
    async fn signal(&mut self, signal: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    async fn exit_code(&mut self) -> Option<i32> {
        tokio::time::timeout(WINE_PATIENCE, self.child.wait())
            .await
            .ok()?
            .ok()?
            .code()
    }

    /// Ctrl-C, then the exit code, which must be 0 after "Shutdown requested".
    async fn stop_cleanly(mut self) {
        self.signal("-INT").await;
        assert_eq!(self.exit_code().await, Some(0), "{}", self.log());
        assert!(self.log().contains("Shutdown requested"), "{}", self.log());
    }
}

/// Runs `wine rowhook.exe ARGS` to completion: (exit code, stdout, stderr).
async fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = tokio::time::timeout(WINE_PATIENCE, wine().command(args, env).output())
        .await
        .expect("rowhook.exe finished in time")
        .expect("wine ran");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// Distinct keys among the accepted requests.
fn distinct(requests: &[rowhook::receiver::Request]) -> usize {
    let mut got = keys(requests, "AptNum");
    got.sort_unstable();
    got.dedup();
    got.len()
}

#[tokio::test]
async fn windows_backfill_arrives_in_order_exactly_once_and_decoys_are_ignored() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    // Three stamps, a thousand rows each: key order is change order.
    for secs in [90, 60, 30] {
        db.insert_appointments(1000, &db.ago(secs).await).await;
    }
    let (good, other, expired, ui) = (
        rx.url("/good"),
        rx.url("/other-workstation"),
        rx.url("/expired"),
        rx.url("/ui-event"),
    );
    let start = db.ago(120).await;
    let id = db
        .subscribe(Sub {
            polling: 0,
            start: Some(&start),
            ..Sub::new(&good)
        })
        .await;
    db.subscribe(Sub {
        workstation: "OTHER-PC",
        ..Sub::new(&other)
    })
    .await;
    let stopped = db.ago(10).await;
    db.subscribe(Sub {
        stop: &stopped,
        ..Sub::new(&expired)
    })
    .await;
    db.subscribe(Sub {
        table: "",
        ..Sub::new(&ui)
    })
    .await;
    let before = db.watermark(id).await;

    let started = std::time::Instant::now();
    let daemon = Process::start(&db, &["run", "--batch-size", "250"]);
    let all = rx.wait_until(WINE_PATIENCE, |r| distinct(r) == 3000).await;
    println!(
        "windows: 3000 rows delivered {:?} after wine started rowhook.exe",
        started.elapsed()
    );
    assert!(eventually(|| async { db.watermark(id).await > before }).await);
    daemon.stop_cleanly().await;

    assert!(all, "every row arrived");
    let requests = rx.requests();
    assert!(
        requests.iter().all(|r| r.target == "/good"),
        "decoys ignored"
    );
    assert_eq!(
        keys(&requests, "AptNum"),
        (1..=3000).collect::<Vec<i64>>(),
        "in order, exactly once"
    );
    assert!(
        requests.iter().all(|r| r.rows().len() <= 250),
        "batches of at most 250"
    );
}

#[tokio::test]
async fn windows_failing_receiver_keeps_the_watermark_until_it_recovers() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    rx.set(Behaviour::Status(500));
    db.insert_appointments(300, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db
        .subscribe(Sub {
            polling: 0,
            ..Sub::new(&url)
        })
        .await;
    let before = db.watermark(id).await;

    let args = ["run", "--retry-base", "1s", "--retry-max", "2s"];
    let daemon = Process::start(&db, &args);
    assert!(
        rx.wait_until(WINE_PATIENCE, |r| r.len() >= 3).await,
        "the daemon retries"
    );
    assert_eq!(db.watermark(id).await, before, "nothing acknowledged yet");
    assert!(rx.accepted().is_empty());

    rx.set(Behaviour::Accept);
    let all = rx
        .wait_until(WINE_PATIENCE, |r| {
            distinct(
                &r.iter()
                    .filter(|q| q.accepted())
                    .cloned()
                    .collect::<Vec<_>>(),
            ) == 300
        })
        .await;
    assert!(eventually(|| async { db.watermark(id).await > before }).await);
    daemon.stop_cleanly().await;
    assert!(all, "every row arrived after the receiver recovered");
}

/// As `process::a_sigkill_mid_window_resumes_after_the_last_acknowledged_batch`,
/// with the Windows process killed outright.
#[tokio::test]
async fn windows_forced_kill_mid_window_resumes_after_the_last_acknowledged_batch() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    rx.set(Behaviour::Slow(Duration::from_millis(200)));
    db.insert_appointments(500, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db
        .subscribe(Sub {
            polling: 0,
            ..Sub::new(&url)
        })
        .await;
    let before = db.watermark(id).await;

    let mut daemon = Process::start(&db, &["run", "--batch-size", "50"]);
    assert!(rx.wait_until(WINE_PATIENCE, |r| r.len() >= 4).await);
    daemon.signal("-KILL").await;
    let _ = daemon.exit_code().await;
    let sent_before_kill = rx.accepted().len();
    let recorded: i64 = db
        .text(
            "SELECT CAST(cursor_key AS CHAR) FROM rowhook_progress WHERE subscription_num = ?",
            &[&id.to_string()],
        )
        .await
        .and_then(|k| k.parse().ok())
        .unwrap_or(0);
    assert!(
        recorded >= 50 * (sent_before_kill as i64 - 1),
        "the position after each acknowledged batch is recorded: {recorded} after {sent_before_kill} batches"
    );
    assert_eq!(db.watermark(id).await, before, "the window was cut short");

    rx.set(Behaviour::Accept);
    let restarted = Process::start(&db, &["run", "--batch-size", "50"]);
    let all = rx.wait_until(WINE_PATIENCE, |r| distinct(r) == 500).await;
    assert!(eventually(|| async { db.watermark(id).await > before }).await);
    restarted.stop_cleanly().await;
    assert!(all, "every row delivered");
    let duplicates = keys(&rx.accepted(), "AptNum").len() - 500;
    println!("windows: killed after {sent_before_kill} batches; {duplicates} duplicate rows");
    assert!(
        duplicates <= 100,
        "at most two batches of 50 again, got {duplicates}"
    );
}

/// Ctrl-C is the Windows SIGTERM: the request in flight is abandoned, the
/// process exits 0 promptly, and the watermark stays where it was.
#[tokio::test]
async fn windows_ctrl_c_mid_request_stops_promptly_without_moving_the_watermark() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    rx.set(Behaviour::Hang(Duration::from_secs(600)));
    db.insert_appointments(5, &db.ago(30).await).await;
    let url = rx.url("/");
    let id = db.subscribe(Sub::new(&url)).await;
    let before = db.watermark(id).await;

    let daemon = Process::start(&db, &["run"]);
    assert!(rx.wait_until(WINE_PATIENCE, |r| !r.is_empty()).await);
    daemon.stop_cleanly().await;

    assert_eq!(db.watermark(id).await, before);
}

#[tokio::test]
async fn windows_demo_delivers_events_and_exits_zero() {
    let (code, out, err) = run(&["demo", "--seconds", "5"], &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let deliveries = out.lines().filter(|l| l.starts_with("delivery")).count();
    assert!(deliveries >= 3, "{out}");
    assert!(out.contains("WatchTable: Appointment"), "{out}");
}

/// Wine's NetBIOS name is the host name, upper case, cut at the first dot
/// and at 15 characters, as Windows makes it.
#[tokio::test]
async fn windows_check_uses_and_prints_the_netbios_computer_name() {
    let db = TestDb::mysql().await;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("a hostname");
    let short = host.trim().split('.').next().unwrap_or_default();
    let expected: String = short.to_uppercase().chars().take(15).collect();

    let (code, out, err) = run(&["check"], &[("DATABASE_URL", &db.url)]).await;

    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "workstation {expected:?} (this computer's NetBIOS name, the default)"
        )),
        "{out}"
    );
}

/// A `wine rowhook.exe ARGS` in the service test's own prefix, whose
/// Service Control Manager holds the rowhook service.
async fn in_service_prefix(prefix: &Path, args: &[&str]) -> (i32, String, String) {
    let mut command = wine().command(args, &[]);
    command.env("WINEPREFIX", prefix);
    let out = tokio::time::timeout(WINE_PATIENCE, command.output())
        .await
        .expect("rowhook.exe finished in time")
        .expect("wine ran");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// Ends this prefix's wineserver and every Wine process in it (only this
/// test's own prefix).
fn kill_wineserver(prefix: &Path) {
    let _ = std::process::Command::new("wineserver")
        .arg("-k")
        .env("WINEPREFIX", prefix)
        .status();
}

/// Kills the service prefix's Wine processes however the test ends, so a
/// failed assertion leaves no service running.
struct WineServerGuard<'a>(&'a Path);

impl Drop for WineServerGuard<'_> {
    fn drop(&mut self) {
        kill_wineserver(self.0);
    }
}

/// `Z:\...`: how a Windows program under Wine names a Unix path.
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// What Wine's Service Control Manager allows: install (service, config
/// file, Event Log source), start, the service delivering, stop (the same
/// clean stop as Ctrl-C, exit code 0), status, uninstall. The Event Log
/// lines are read from Wine's `eventlog` debug channel, where Wine's
/// ReportEventW writes them. Not exercised (Wine has no such support):
/// the recovery actions, the service SID type, the file's ACL.
#[tokio::test]
async fn windows_service_installs_starts_delivers_stops_and_uninstalls_under_wine() {
    let db = TestDb::mysql().await;
    let rx = Receiver::start().await.unwrap();
    db.insert_appointments(200, &db.ago(30).await).await;
    let url = rx.url("/service");
    let id = db
        .subscribe(Sub {
            polling: 0,
            ..Sub::new(&url)
        })
        .await;
    let before = db.watermark(id).await;

    let wine = wine();
    let prefix = wine.dir.join("service-prefix");
    std::fs::create_dir_all(&prefix).unwrap();
    kill_wineserver(&prefix);
    let _guard = WineServerGuard(&prefix);
    let programdata = prefix.join("drive_c/ProgramData/rowhook/rowhook.env");
    let _ = std::fs::remove_file(&programdata);
    let source = wine.dir.join(format!("service-{}.env", std::process::id()));
    let config = format!(
        "# the service test's settings\nDATABASE_URL={}\nROWHOOK_WORKSTATION={WORKSTATION}\n",
        db.url
    );
    std::fs::write(&source, &config).unwrap();

    // Boot the prefix with the eventlog channel on: the services it starts,
    // rowhook's among them, write their events into this file.
    let events = wine.dir.join("service-events.txt");
    let events_file = std::fs::File::create(&events).unwrap();
    let booted = Command::new("wine")
        .arg("wineboot")
        .env("WINEPREFIX", &prefix)
        .env("WINEDEBUG", "-all,+eventlog")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(events_file)
        .status();
    let booted = tokio::time::timeout(WINE_PATIENCE, booted).await;
    assert!(matches!(booted, Ok(Ok(s)) if s.success()), "wineboot");
    // A service left by an earlier, interrupted run.
    let _ = in_service_prefix(&prefix, &["service", "uninstall"]).await;

    let windows_source = windows_path(&source);
    // An install that fails after creating the service (here: the
    // configuration folder's name is taken by a file) leaves no service.
    let folder = programdata.parent().unwrap();
    let _ = std::fs::remove_dir_all(folder);
    std::fs::write(folder, "in the way").unwrap();
    let args = ["--config", windows_source.as_str(), "service", "install"];
    let (code, _, err) = in_service_prefix(&prefix, &args).await;
    std::fs::remove_file(folder).unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(r"cannot create C:\ProgramData\rowhook"),
        "{err}"
    );
    let (code, _, err) = in_service_prefix(&prefix, &["service", "status"]).await;
    assert_eq!(code, 2, "no half-installed service: {err}");
    assert!(err.contains("is it installed?"), "{err}");

    let args = ["--config", windows_source.as_str(), "service", "install"];
    let (code, out, err) = in_service_prefix(&prefix, &args).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(r"runs as NT SERVICE\rowhook"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&programdata).ok().as_deref(),
        Some(config.as_str()),
        "the configuration was copied to ProgramData"
    );

    let (code, out, err) = in_service_prefix(&prefix, &["service", "start"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Running"), "{out}{err}");
    let all = rx.wait_until(WINE_PATIENCE, |r| distinct(r) == 200).await;
    assert!(eventually(|| async { db.watermark(id).await > before }).await);

    let (code, out, err) = in_service_prefix(&prefix, &["service", "stop"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Stopped"), "{out}{err}");
    let (code, out, _) = in_service_prefix(&prefix, &["service", "status"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("Stopped (exit code Win32(0))"), "{out}");

    let (code, out, err) = in_service_prefix(&prefix, &["service", "uninstall"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = in_service_prefix(&prefix, &["service", "status"]).await;
    assert_eq!(code, 2, "gone after uninstall");
    assert!(err.contains("is it installed?"), "{err}");
    kill_wineserver(&prefix);

    let events = std::fs::read_to_string(&events).unwrap_or_default();
    let logged = |text: &str| {
        events
            .lines()
            .any(|l| l.contains("ReportEventW") && l.contains(text))
    };
    assert!(logged("rowhook started."), "{events}");
    assert!(logged("Shutdown requested"), "{events}");
    assert!(logged("rowhook stopped."), "{events}");
    let _ = std::fs::remove_file(&source);
    assert!(all, "the service delivered every row");
}
