//! The Windows service: registering it with the Service Control Manager
//! (SCM), starting, stopping and querying it, and being it (`rowhook
//! service run`, what the SCM launches).
//!
//! The service runs as the virtual account `NT SERVICE\rowhook`, which has
//! no password and only the rights granted to it; it reads its settings
//! from `%ProgramData%\rowhook\rowhook.env`, readable only by Administrators
//! and that account because it holds the database password.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceSidType, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{
    self, ServiceControlHandlerResult, ServiceStatusHandle,
};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

pub const NAME: &str = "rowhook";
pub const DISPLAY_NAME: &str = "rowhook (Open Dental API Events)";
pub const ACCOUNT: &str = r"NT SERVICE\rowhook";
/// Administrators, by SID so that localized Windows names do not matter.
const ADMINISTRATORS: &str = "*S-1-5-32-544";
/// The example configuration written when there is none yet.
const EXAMPLE_CONFIG: &str = include_str!("../../windows/rowhook.env");
/// How long start and stop wait for the service to get there.
const WAIT: Duration = Duration::from_secs(60);
/// The Event Log source's registry key, and the .NET Framework message file
/// whose every event ID shows the event's own text (Open Dental requires
/// .NET Framework 4, so it is there).
const SOURCE_KEY: &str = r"HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\rowhook";
const MESSAGE_FILE: &str =
    r"%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll";

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot {action}")]
    Scm {
        action: &'static str,
        source: windows_service::Error,
    },
    #[error("{what}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("the service did not reach {wanted:?} within {WAIT:?} (it is {now:?})")]
    Timeout {
        wanted: ServiceState,
        now: ServiceState,
    },
}

fn scm(action: &'static str) -> impl FnOnce(windows_service::Error) -> ServiceError {
    move |source| ServiceError::Scm { action, source }
}

/// `%ProgramData%\rowhook\rowhook.env`.
pub fn config_path() -> PathBuf {
    let base = std::env::var_os("ProgramData").unwrap_or_else(|| OsString::from(r"C:\ProgramData"));
    PathBuf::from(base).join("rowhook").join("rowhook.env")
}

/// What `install` did.
#[derive(Debug)]
pub struct Installed {
    pub config: PathBuf,
    /// False when a configuration file was already there (kept as it was).
    pub config_written: bool,
}

/// Registers the service to run this executable, writes its configuration
/// file (from `source`, else the example) unless one exists, restricts
/// who can read it, and registers the Event Log source.
pub fn install(source: Option<&Path>) -> Result<Installed, ServiceError> {
    let exe = std::env::current_exe().map_err(|source| ServiceError::Io {
        what: "cannot find rowhook.exe's own path".into(),
        source,
    })?;
    let config = config_path();
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(scm(
        "connect to the Service Control Manager (run as Administrator?)",
    ))?;
    let info = ServiceInfo {
        name: NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: vec![
            "service".into(),
            "run".into(),
            "--config".into(),
            config.clone().into_os_string(),
        ],
        dependencies: vec![],
        account_name: Some(ACCOUNT.into()),
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::DELETE)
        .map_err(scm("create the service (run as Administrator?)"))?;
    // All or nothing: a half-configured service would also make the next
    // `install` fail with "already exists".
    let finished = configure(&service).and_then(|()| {
        let config_written = write_config(&config, source)?;
        register_event_source()?;
        Ok(config_written)
    });
    match finished {
        Ok(config_written) => Ok(Installed {
            config,
            config_written,
        }),
        Err(error) => {
            let _ = service.delete();
            Err(error)
        }
    }
}

/// Description, service SID, and recovery actions.
fn configure(service: &windows_service::service::Service) -> Result<(), ServiceError> {
    service
        .set_description("Sends Open Dental API Events subscriptions' row changes as webhooks.")
        .map_err(scm("set the service's description"))?;
    // The service SID is what `NT SERVICE\rowhook` is; grants name it.
    // (Windows sets it for virtual accounts anyway.)
    tolerate_unknown_level(
        service.set_config_service_sid_info(ServiceSidType::Unrestricted),
        "set the service's SID type",
    )?;
    tolerate_unknown_level(
        service.update_failure_actions(restart_on_failure()),
        "set the service's recovery actions",
    )?;
    // rowhook exits with an error code (not a crash) when, say, the
    // database is unreachable at boot: that must restart it too.
    tolerate_unknown_level(
        service.set_failure_actions_on_non_crash_failures(true),
        "set the service's recovery actions",
    )
}

/// Windows has known these settings since Vista; an SCM that does not
/// (Wine's answers ERROR_INVALID_LEVEL) gets a warning, not a failed install.
fn tolerate_unknown_level(
    result: windows_service::Result<()>,
    action: &'static str,
) -> Result<(), ServiceError> {
    const ERROR_INVALID_LEVEL: i32 = 124;
    match result {
        Err(windows_service::Error::Winapi(error))
            if error.raw_os_error() == Some(ERROR_INVALID_LEVEL) =>
        {
            tracing::warn!(%error, "this Service Control Manager cannot {action}; skipped.");
            Ok(())
        }
        other => other.map_err(scm(action)),
    }
}

/// Restart after 10 s, 30 s, then every 60 s; the count resets after a day
/// without failures. (The SCM repeats the last action.)
fn restart_on_failure() -> ServiceFailureActions {
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![restart(10), restart(30), restart(60)]),
    }
}

/// Writes the configuration unless it exists, then (always) leaves the
/// folder and the file readable only by Administrators and the service.
fn write_config(config: &Path, source: Option<&Path>) -> Result<bool, ServiceError> {
    let io = |what: String| move |source| ServiceError::Io { what, source };
    let dir = config.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let written = !config.exists();
    if written {
        let text = match source {
            Some(path) => std::fs::read_to_string(path)
                .map_err(io(format!("cannot read {}", path.display())))?,
            None => EXAMPLE_CONFIG.replace('\n', "\r\n"),
        };
        std::fs::write(config, text).map_err(io(format!("cannot write {}", config.display())))?;
    }
    let service = format!("{ACCOUNT}:(OI)(CI)RX");
    let admins = format!("{ADMINISTRATORS}:(OI)(CI)F");
    icacls(dir, &[&admins, &service])?;
    let service = format!("{ACCOUNT}:R");
    let admins = format!("{ADMINISTRATORS}:F");
    icacls(config, &[&admins, &service])?;
    Ok(written)
}

/// Replaces the object's ACL (inherited entries removed) with `grants`.
/// icacls ships with every Windows since Vista; no crate wraps ACL editing
/// as plainly.
fn icacls(path: &Path, grants: &[&str]) -> Result<(), ServiceError> {
    let mut args: Vec<&OsStr> = vec![path.as_os_str(), "/inheritance:r".as_ref()];
    args.push("/grant:r".as_ref());
    args.extend(grants.iter().map(|g| OsStr::new(*g)));
    run_tool("icacls", &args)
}

/// The Event Log source `rowhook` in the Application log, with a message
/// file so Event Viewer shows each event's text without complaint.
fn register_event_source() -> Result<(), ServiceError> {
    let file = [SOURCE_KEY, "/v", "EventMessageFile", "/t", "REG_EXPAND_SZ"];
    let mut args: Vec<&OsStr> = std::iter::once("add").chain(file).map(OsStr::new).collect();
    args.extend(["/d", MESSAGE_FILE, "/f"].map(OsStr::new));
    run_tool("reg", &args)?;
    let types = [
        "add",
        SOURCE_KEY,
        "/v",
        "TypesSupported",
        "/t",
        "REG_DWORD",
        "/d",
        "7",
        "/f",
    ];
    run_tool("reg", &types.map(OsStr::new))
}

fn run_tool(program: &str, args: &[&OsStr]) -> Result<(), ServiceError> {
    let command = format!(
        "{program} {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|source| ServiceError::Io {
            what: format!("cannot run {program}"),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Err(ServiceError::Command {
        command,
        output: text.trim().to_owned(),
    })
}

fn open(access: ServiceAccess) -> Result<windows_service::service::Service, ServiceError> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(scm(
            "connect to the Service Control Manager (run as Administrator?)",
        ))?;
    manager
        .open_service(NAME, access)
        .map_err(scm("open the rowhook service (is it installed?)"))
}

/// Stops the service if it runs, removes it and the Event Log source. The
/// configuration file stays: it is the operator's.
pub fn uninstall() -> Result<(), ServiceError> {
    let service = open(ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE)?;
    let state = service
        .query_status()
        .map_err(scm("query the service"))?
        .current_state;
    if state != ServiceState::Stopped {
        service.stop().map_err(scm("stop the service"))?;
        wait_for(&service, ServiceState::Stopped)?;
    }
    service.delete().map_err(scm("delete the service"))?;
    // Gone already is fine: uninstall may be run twice.
    let _ = run_tool("reg", &["delete", SOURCE_KEY, "/f"].map(OsStr::new));
    Ok(())
}

/// Starts the service and waits until it runs (or stopped again).
pub fn start() -> Result<ServiceState, ServiceError> {
    let service = open(ServiceAccess::START | ServiceAccess::QUERY_STATUS)?;
    service
        .start::<&OsStr>(&[])
        .map_err(scm("start the service"))?;
    wait_for(&service, ServiceState::Running)
}

/// Asks the service to stop and waits until it has.
pub fn stop() -> Result<ServiceState, ServiceError> {
    let service = open(ServiceAccess::STOP | ServiceAccess::QUERY_STATUS)?;
    service.stop().map_err(scm("stop the service"))?;
    wait_for(&service, ServiceState::Stopped)
}

/// The service's state and, once stopped, its exit code.
pub fn status() -> Result<ServiceStatus, ServiceError> {
    open(ServiceAccess::QUERY_STATUS)?
        .query_status()
        .map_err(scm("query the service"))
}

/// Polls until `wanted` (or Stopped, which ends any wait), within [`WAIT`].
fn wait_for(
    service: &windows_service::service::Service,
    wanted: ServiceState,
) -> Result<ServiceState, ServiceError> {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = service
            .query_status()
            .map_err(scm("query the service"))?
            .current_state;
        if now == wanted || now == ServiceState::Stopped {
            return Ok(now);
        }
        if Instant::now() >= deadline {
            return Err(ServiceError::Timeout { wanted, now });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The daemon the service runs: returns whether it ended well.
type Work = Box<dyn FnOnce() -> bool + Send>;

fn work() -> &'static Mutex<Option<Work>> {
    static WORK: OnceLock<Mutex<Option<Work>>> = OnceLock::new();
    WORK.get_or_init(|| Mutex::new(None))
}

/// Hands this process to the SCM, which calls back on its own thread to
/// run `daemon`; returns when the service has stopped. Fails at once when
/// not started by the SCM.
pub fn run_dispatcher(daemon: impl FnOnce() -> bool + Send + 'static) -> Result<(), ServiceError> {
    if let Ok(mut slot) = work().lock() {
        *slot = Some(Box::new(daemon));
    }
    service_dispatcher::start(NAME, ffi_service_main)
        .map_err(scm("connect to the Service Control Manager (this command is what the service runs; use `rowhook run` in a console)"))
}

define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    if let Err(error) = serve() {
        tracing::error!(error = %error, "the service could not report its state.");
    }
}

fn serve() -> Result<(), ServiceError> {
    static HANDLE: OnceLock<ServiceStatusHandle> = OnceLock::new();
    let handler = |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            crate::shutdown::request();
            if let Some(handle) = HANDLE.get() {
                let _ = handle.set_service_status(state(ServiceState::StopPending, 0));
            }
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = service_control_handler::register(NAME, handler)
        .map_err(scm("register the service's control handler"))?;
    let _ = HANDLE.set(handle);
    handle
        .set_service_status(state(ServiceState::Running, 0))
        .map_err(scm("report the service running"))?;
    let daemon = work().lock().ok().and_then(|mut slot| slot.take());
    let ok = daemon.is_some_and(|daemon| daemon());
    // A non-zero code makes the SCM apply the recovery actions.
    handle
        .set_service_status(state(ServiceState::Stopped, if ok { 0 } else { 2 }))
        .map_err(scm("report the service stopped"))
}

fn state(current_state: ServiceState, code: u32) -> ServiceStatus {
    let running = current_state == ServiceState::Running;
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state,
        controls_accepted: if running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        },
        exit_code: if code == 0 {
            ServiceExitCode::Win32(0)
        } else {
            ServiceExitCode::ServiceSpecific(code)
        },
        checkpoint: 0,
        wait_hint: if current_state == ServiceState::StopPending {
            Duration::from_secs(30)
        } else {
            Duration::default()
        },
        process_id: None,
    }
}
