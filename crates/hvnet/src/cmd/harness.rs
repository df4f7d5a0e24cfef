//! What `simulate` and `compare` need from hvnet-simlab's process harness: how the guest's
//! command wrappers call this binary back, and relaying an answer as a command's output.

/// The error of a command that needs real processes in a build without the harness.
#[cfg(not(feature = "harness"))]
pub fn unavailable(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} runs real processes against the simulator: this hvnet was built without the `harness` feature"
    )
}

/// This binary with `SUBCOMMAND --client`: what the wrappers exec.
#[cfg(feature = "harness")]
pub fn client_command(subcommand: &str) -> anyhow::Result<hvnet_simlab::harness::ClientCommand> {
    use anyhow::Context;
    let exe = std::env::current_exe().context("finding hvnet's own path")?;
    Ok(hvnet_simlab::harness::ClientCommand::new(
        &exe,
        &[subcommand, "--client"],
    )?)
}

/// A wrapper's answer as its own output and exit status.
#[cfg(feature = "harness")]
pub fn relay(r: hvnet_simlab::harness::Response) -> std::process::ExitCode {
    std::process::ExitCode::from(r.relay())
}
