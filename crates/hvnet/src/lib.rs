//! hvnet: keeps a VM's network up while its SR-IOV VF comes and goes.
//!
//! The modules behind the `hvnet` binary: `src/main.rs` parses the command line and calls
//! [`cmd`]. A library so that fuzz targets and tests can reach the daemons' input handling
//! directly; the other modules stay private to it.

pub mod cmd;
mod daemon;
mod devd_run;
pub mod limits;
mod logging;
mod scratch;
