//! hvnet-simlab: experiments on the simulator (hvnet-sim), with whatever guest agent the caller
//! puts in the guest (the binary puts the VF manager there).
//!
//! - [`chaos`]: random scenarios with faults, one per seed, checked against the VF manager's
//!   invariants (`hvnet chaos`);
//! - [`problems`]: what a run left wrong, by generic checks on its record and end state;
//! - [`compare`]: the original FreeBSD system and hvnet side by side on one scenario
//!   (`hvnet compare`).

pub mod chaos;
pub mod compare;
pub mod problems;
