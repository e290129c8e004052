//! `rowhook service install | uninstall | start | stop | status`: the
//! Windows service. Elsewhere it says so: on Linux, systemd runs rowhook
//! (`systemd/rowhook.service`).

use crate::cli::{Cli, ServiceCommand};

/// Runs the service subcommand. Synchronous: `service run` hands the main
/// thread to the Service Control Manager, which builds its own runtime.
#[cfg(not(windows))]
pub fn run(_cli: &Cli, _command: &ServiceCommand) -> anyhow::Result<()> {
    anyhow::bail!(
        "`rowhook service` is for Windows; on Linux run rowhook under systemd (systemd/rowhook.service)"
    )
}

#[cfg(windows)]
pub fn run(cli: &Cli, command: &ServiceCommand) -> anyhow::Result<()> {
    use crate::windows::service;
    match command {
        ServiceCommand::Install => {
            let installed = service::install(cli.config.as_deref())?;
            let config = installed.config.display();
            outln!(
                "Installed service {} ({}).",
                service::NAME,
                service::DISPLAY_NAME
            )?;
            outln!(
                "  starts automatically, restarts on failure, runs as {}",
                service::ACCOUNT
            )?;
            if installed.config_written {
                outln!("  configuration: {config} (written now; edit it as Administrator)")?;
            } else {
                outln!("  configuration: {config} (kept as it was)")?;
            }
            outln!("  readable only by Administrators and {}", service::ACCOUNT)?;
            outln!("  logs: Event Viewer > Windows Logs > Application, source rowhook")?;
            outln!("Start it with: rowhook service start")?;
        }
        ServiceCommand::Uninstall => {
            service::uninstall()?;
            outln!(
                "Removed service {}; {} is kept.",
                service::NAME,
                service::config_path().display()
            )?;
        }
        ServiceCommand::Start => outln!("rowhook service: {:?}", service::start()?)?,
        ServiceCommand::Stop => outln!("rowhook service: {:?}", service::stop()?)?,
        ServiceCommand::Status => {
            let status = service::status()?;
            outln!(
                "rowhook service: {:?} (exit code {:?})",
                status.current_state,
                status.exit_code
            )?;
        }
        ServiceCommand::Run(args) => {
            let (db, args) = (cli.db.clone(), crate::cli::RunArgs::clone(args));
            service::run_dispatcher(move || daemon(&db, &args))?;
        }
    }
    Ok(())
}

/// `rowhook run` as the service: its own runtime; errors go to the Event Log.
#[cfg(windows)]
fn daemon(db: &crate::cli::DbArgs, args: &crate::cli::RunArgs) -> bool {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime.");
            return false;
        }
    };
    match runtime.block_on(super::run::run(db, args)) {
        Ok(_) => true,
        Err(error) => {
            tracing::error!(error = %super::error_chain(&error), "rowhook failed.");
            false
        }
    }
}
