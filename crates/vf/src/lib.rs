//! hvnet-vf: the VF manager's domain model, the [`Backend`] trait, and (in
//! later modules) the policy, planner and reconciler. Pure: no I/O.

pub mod backend;
pub mod model;

pub use backend::{Backend, BackendError};
pub use model::{
    AggregateProto, AggregateState, Daemon, DaemonProc, DhcpClient, IfKind, Interface, IpNet,
    Ipv4Net, Ipv6Net, Mac, Op, ParseModelError, Platform, Route, SteerPair, SystemView,
};
