//! The VF manager as a running program: the guest agent used in the
//! simulator (and the place the `hvnet run` daemon loop will live).

pub mod agent;
pub mod chaos;
