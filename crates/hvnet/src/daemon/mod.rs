//! The VF manager in the simulator: chaos runs, and the manager over the FreeBSD backend
//! with the simulator answering its commands. The daemon itself is crates/daemon.

pub mod chaos;
pub mod freebsd_sim;
