//! One token that every loop and in-flight request watches, cancelled by
//! whatever asks rowhook to stop: SIGTERM (systemd stop) or SIGINT (Ctrl-C)
//! on Unix; Ctrl-C, Ctrl-Break or a service stop on Windows. A second
//! signal exits at once.

use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

/// The process's one shutdown token: a Windows service stop arrives on the
/// service dispatcher's thread, outside any task that could be handed it.
fn token() -> &'static CancellationToken {
    static TOKEN: OnceLock<CancellationToken> = OnceLock::new();
    TOKEN.get_or_init(CancellationToken::new)
}

/// Asks rowhook to stop as a signal would (used by the Windows service's
/// stop handler).
pub fn request() {
    if !token().is_cancelled() {
        tracing::info!("Shutdown requested; no new batch will start.");
    }
    token().cancel();
}

/// Spawns the listener and returns the token it cancels.
pub fn on_signals() -> std::io::Result<CancellationToken> {
    let mut signals = Signals::new()?;
    tokio::spawn(async move {
        signals.next().await;
        request();
        signals.next().await;
        tracing::warn!("Second signal; exiting now.");
        std::process::exit(130);
    });
    Ok(token().clone())
}

#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(windows)]
struct Signals {
    ctrl_c: tokio::signal::windows::CtrlC,
    ctrl_break: tokio::signal::windows::CtrlBreak,
    ctrl_close: tokio::signal::windows::CtrlClose,
}

#[cfg(windows)]
impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
        Ok(Self {
            ctrl_c: ctrl_c()?,
            ctrl_break: ctrl_break()?,
            ctrl_close: ctrl_close()?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.ctrl_c.recv() => {}
            _ = self.ctrl_break.recv() => {}
            _ = self.ctrl_close.recv() => {}
        }
    }
}
