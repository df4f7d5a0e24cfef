//! `hvnet devd ...`: the devd-compatible rule engine from the command line.

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DevdCommand {}

pub fn run(cmd: DevdCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
