//! hvnet-vf: the VF manager's domain model, the [`Backend`] trait, and (in
//! later modules) the policy, planner and reconciler. Pure: no I/O.

pub mod backend;
pub mod config;
pub mod lagg;
pub mod manager;
pub mod memory;
pub mod model;
pub mod netconf;
pub mod plan;
pub mod reconcile;
pub mod status;

pub use backend::{Backend, BackendError};
pub use config::{Backoff, FlapDamping, ManagerConfig, Mode, ModeSetting};
pub use manager::{GateProbe, Manager, NoOverrides, OverrideSource};
pub use memory::MemoryBackend;
pub use model::{
    AggregateProto, AggregateState, Daemon, DaemonProc, DhcpClient, EgressRedirect, GateState,
    IfKind, Interface, IpNet, Ipv4Net, Ipv6Net, Mac, Op, ParseModelError, Platform, Route,
    SteerPair, SystemView,
};
pub use netconf::{IfConfig, NetConfig, NetConfigSource};
pub use plan::{plan, DataPath, PairPlan, Plan, PlanInput, Unit};
pub use reconcile::{Inputs, LogEntry, LogLevel, Readiness, Reconciler, StepReport};
pub use status::{DaemonStatus, ErrorStatus, PairStatus, Status, VfState};
