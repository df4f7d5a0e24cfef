//! hvnet-sim: a deterministic simulator of a FreeBSD guest on Hyper-V —
//! hn(4) in both VF modes, VFs, lagg(4) failover, devctl events, dhclient
//! and a DHCP server — and of the host that offers and revokes VFs, with a
//! virtual clock and exact packet accounting (spec hn.md §1, §5).
//!
//! Entry points:
//! - [`scenario::parse`] / [`builtin::get`] give a [`Scenario`];
//! - [`runner::Sim`] runs it with a [`GuestAgent`] (the VF manager, devd
//!   rules, or [`NoAgent`]) and returns a [`RunResult`] with the
//!   [`Summary`], the timeline and plot series;
//! - [`World`] is the model itself (kernel, host, network), usable
//!   directly in tests; [`SimBackend`] implements [`hvnet_vf::Backend`].

pub mod account;
pub mod agent;
pub mod backend;
pub mod builtin;
pub mod dhcp;
pub mod faults;
pub mod guestcmd;
pub mod hn;
pub mod host;
pub mod ifops;
pub mod invariants;
pub mod lagg;
pub mod plot;
pub mod runner;
pub mod scenario;
pub mod scripts;
pub mod summary;
pub mod sysctl;
pub mod traffic;
pub mod world;

pub use agent::{no_agent, AgentContext, AgentFactory, GuestAgent, NoAgent};
pub use backend::{observe_world, SimBackend};
pub use faults::{FaultConfig, Faults};
pub use host::VfOffer;
pub use runner::{run, Marker, RunOptions, RunResult, Sim, TimelineEntry};
pub use scenario::{parse, Scenario, ScenarioError};
pub use scripts::{devd_agent, original_scripts, DevdMatcher, DevdRules, OriginalScripts};
pub use summary::{Latency, Summary};
pub use traffic::{DropReason, Fate, Path};
pub use world::{KernelError, World};
