//! One module per subcommand.

pub mod chaos;
pub mod compare;
pub mod devd;
pub mod devd_run;
mod harness;
#[cfg(target_os = "linux")]
pub mod install;
#[cfg(target_os = "linux")]
pub mod lab;
pub mod run;
pub mod simulate;
pub mod status;
pub mod vfattach;
pub mod vfup;
