//! hvnet-simlab: experiments on the simulator (hvnet-sim), with whatever guest agent the caller
//! puts in the guest (the binary puts the VF manager there).
//!
//! - [`chaos`]: random scenarios with faults, one per seed, checked against the VF manager's
//!   invariants (`hvnet chaos`);
//! - [`problems`]: what a run left wrong, by generic checks on its record and end state;
//! - [`compare`]: the original FreeBSD system and hvnet side by side on one scenario
//!   (`hvnet compare`).
//!
//! With the `harness` feature, real processes against the simulated guest:
//! - `harness`: the one process harness — a guest root whose `bin/` wrappers send each
//!   command's argv over a Unix socket to the process that owns the simulator;
//! - `freebsd_guest`: the VF manager over the FreeBSD backend, every command a process
//!   (`hvnet simulate --agent freebsd`), and the guest served to a real daemon in scaled wall
//!   time (`hvnet simulate --serve DIR --speed X`);
//! - `script_server`: the guest served to shell scripts, time moved by `sleep`
//!   (`hvnet simulate --serve DIR`);
//! - `original`: devd's rules and the original scripts as processes (`hvnet compare`).

pub mod chaos;
pub mod compare;
pub mod problems;

#[cfg(feature = "harness")]
pub mod freebsd_guest;
#[cfg(feature = "harness")]
pub mod harness;
#[cfg(feature = "harness")]
pub mod original;
#[cfg(feature = "harness")]
pub mod script_server;
