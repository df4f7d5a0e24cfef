//! hvnet-daemon: the VF manager as a running program (`hvnet run`) — its configuration
//! (hvnet.conf), the engine loop over a backend, the control socket and its protocol with the
//! report `hvnet status` shows, the Prometheus metrics and the hosted devd rules. The `hvnet`
//! binary parses the command line and calls [`run::run`].

pub mod config;
pub mod control;
pub mod hosted;
pub mod limits;
pub mod manager;
pub mod metrics;
pub mod printable;
pub mod protocol;
pub mod report;
pub mod run;
