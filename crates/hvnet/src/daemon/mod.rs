//! The VF manager as a running program: the guest agent used in the simulator and the
//! `hvnet run` daemon (configuration, engine loop, control socket, metrics, hosted
//! devd rules) with the report `hvnet status` shows.

pub mod agent;
pub mod config;
pub mod control;
pub mod hosted;
pub mod manager;
pub mod metrics;
pub mod protocol;
pub mod report;
pub mod run;
