//! The `rowhook` binary: parse the command line, start logging, run the
//! subcommand. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use rowhook::cli::{Cli, Command, ServiceCommand};
use rowhook::{commands, env_file, telemetry};

fn main() -> ExitCode {
    // Before clap reads the environment, and before any thread exists: the
    // file's values become environment defaults.
    let args: Vec<_> = std::env::args_os().collect();
    if let Some(path) = env_file::path_from(&args, std::env::var_os(env_file::VARIABLE)) {
        if let Err(error) = env_file::load_defaults(&path) {
            return early_failure(&args, &error.to_string());
        }
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        // Usage errors and --help exactly as clap prints them, but for the
        // service, whose stderr nobody reads.
        Err(error) if is_service_run(&args) => return early_failure(&args, &error.to_string()),
        Err(error) => error.exit(),
    };
    if let Command::Service(command) = &cli.command {
        return service(&cli, command);
    }
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime.");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(&cli)) {
        Ok(code) => code,
        // `rowhook status | head`: the reader had what it wanted.
        Err(error) if commands::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %commands::error_chain(&error), "rowhook failed.");
            ExitCode::from(2)
        }
    }
}

/// A bad configuration file or setting, before logging is set up: said on
/// stderr, and, for the Windows service (whose stderr nobody reads), in
/// the Event Log too.
fn early_failure(args: &[std::ffi::OsString], message: &str) -> ExitCode {
    eprintln!("rowhook: {}", message.trim_end());
    if cfg!(windows) && is_service_run(args) {
        #[cfg(windows)]
        telemetry::init_event_log();
        tracing::error!(error = message.trim_end(), "rowhook cannot start.");
    }
    ExitCode::from(2)
}

/// `rowhook service run ...`: what the Windows Service Control Manager starts.
fn is_service_run(args: &[std::ffi::OsString]) -> bool {
    args.get(1..3).is_some_and(|a| a == ["service", "run"])
}

/// `rowhook service ...`, outside any runtime: `service run` gives the
/// main thread to the Windows Service Control Manager.
fn service(cli: &Cli, command: &ServiceCommand) -> ExitCode {
    #[cfg(windows)]
    if let ServiceCommand::Run(_) = command {
        telemetry::init_event_log();
    } else {
        telemetry::init(cli.log_format);
    }
    #[cfg(not(windows))]
    telemetry::init(cli.log_format);
    match commands::service::run(cli, command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let text = commands::error_chain(&error);
            tracing::error!(error = %text, "rowhook failed.");
            // `service run` logs to the Event Log; someone who typed it in
            // a console should see why it ended there too.
            if matches!(command, ServiceCommand::Run(_)) {
                eprintln!("rowhook: {text}");
            }
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cli: &Cli) -> anyhow::Result<ExitCode> {
    let url = &cli.db;
    Ok(match &cli.command {
        Command::Run(args) => {
            let summary = commands::run::run(url, args).await?;
            // For cron: a --once pass in which some delivery failed exits 1.
            ExitCode::from(u8::from(args.once && summary.failed > 0))
        }
        Command::Demo(args) => {
            commands::demo::run(args).await?;
            ExitCode::SUCCESS
        }
        Command::Check(args) => {
            let wrong = commands::check::run(url, args).await?;
            ExitCode::from(u8::from(wrong > 0))
        }
        Command::Migrate => {
            commands::migrate::run(url).await?;
            ExitCode::SUCCESS
        }
        Command::Status(args) => {
            commands::status::run(url, args).await?;
            ExitCode::SUCCESS
        }
        Command::Deliveries(args) => {
            commands::deliveries::run(url, args).await?;
            ExitCode::SUCCESS
        }
        Command::Subscriptions(command) => {
            commands::subscriptions::run(url, command).await?;
            ExitCode::SUCCESS
        }
        Command::Replay(args) => {
            commands::replay::run(url, args).await?;
            ExitCode::SUCCESS
        }
        Command::Secret(command) => {
            commands::secret::run(url, command).await?;
            ExitCode::SUCCESS
        }
        // Handled before the runtime starts.
        Command::Service(_) => ExitCode::SUCCESS,
    })
}
