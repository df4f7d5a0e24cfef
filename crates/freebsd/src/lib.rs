//! hvnet-freebsd: the FreeBSD backend.
//!
//! OS-neutral and tested everywhere: command builders ([`cmd`]), parsers
//! for command output ([`parse`]), the [`runner::CommandRunner`] seam and
//! the backend built on them. FreeBSD-only system calls live in `sys`.

pub mod backend;
pub mod cmd;
pub mod parse;
pub mod runner;
pub mod scripts;
pub mod system;

#[cfg(target_os = "freebsd")]
pub mod sys;

pub use backend::FreeBsdBackend;
pub use cmd::Command;
pub use parse::ParseError;
pub use runner::{CommandRunner, Output, RunError, ScriptedRunner, SystemRunner};
pub use system::SystemError;
