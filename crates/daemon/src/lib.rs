//! hvnet-daemon: the VF manager as a running program (`hvnet run`). The manager itself is
//! [`hvnet_vf::Manager`] (the simulator runs the same); this crate gives it a configuration
//! (hvnet.conf), event sources and an engine loop per backend, a readiness gate, and what
//! `hvnet status` and Prometheus see of it: history, metrics, the report and the control
//! socket that serves it; plus the hosted devd rules. The `hvnet` binary parses the command
//! line and calls [`run::run`].

pub mod config;
pub mod control;
pub mod devd_events;
pub mod engine;
pub mod gate;
pub mod history;
pub mod hosted;
pub mod limits;
#[cfg(target_os = "linux")]
pub mod linux_events;
pub mod metrics;
pub mod printable;
pub mod protocol;
pub mod publish;
pub mod rc;
pub mod recorder;
pub mod report;
pub mod run;
pub mod sim_engine;
