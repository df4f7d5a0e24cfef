//! Logging for long-running commands: stderr that journald reads well.

use std::io::IsTerminal;

/// Log to stderr: no timestamps or colours when not on a terminal (journald adds its own);
/// the level from RUST_LOG, else `default_level`.
pub fn init(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let tty = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(tty)
        .with_target(false);
    let _ = if tty {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
}
