//! hvnet-sim: a deterministic simulator of a FreeBSD guest on Hyper-V —
//! hn(4) in both VF modes, VFs, lagg(4) failover, devctl events, dhclient
//! and a DHCP server — and of the host that offers and revokes VFs, with a
//! virtual clock and exact packet accounting (spec hn.md §1, §5).
//!
//! Entry points:
//! - [`scenario::parse`] / [`builtin::get`] give a [`Scenario`];
//! - [`runner::Sim`] runs it with a [`GuestAgent`] (the VF manager, the
//!   original devd rules and scripts, or [`NoAgent`]) and returns a [`RunResult`] with the
//!   [`Summary`], the timeline and plot series;
//! - [`World`] is the model itself (kernel, host, network), usable
//!   directly in tests; [`SimBackend`] implements [`hvnet_vf::Backend`].
//!
//! Running an agent (the VF manager plugs in the same way):
//!
//! ```
//! use std::time::Duration;
//! use hvnet_sim::{builtin, run, AgentContext, AgentFactory, GuestAgent, RunOptions};
//! use hvnet_vf::{Backend, Op};
//!
//! /// Brings every VF up as soon as devd reports it (a toy agent).
//! struct UpEverything;
//!
//! impl GuestAgent for UpEverything {
//!     fn name(&self) -> &str { "up-everything" }
//!     fn on_devctl(&mut self, _now: Duration, line: &str, b: &mut dyn Backend) {
//!         if let Some(rest) = line.strip_prefix("!system=ETHERNET subsystem=") {
//!             let iface = rest.split(' ').next().unwrap_or_default().to_string();
//!             let view = b.observe().unwrap();
//!             if view.interface(&iface).is_some_and(|i| i.is_vf()) {
//!                 let _ = b.apply(&Op::SetAdmin { iface, up: true });
//!             }
//!         }
//!     }
//!     fn on_timer(&mut self, _now: Duration, _b: &mut dyn Backend) {}
//!     fn next_wakeup(&self) -> Option<Duration> { None }
//! }
//!
//! let factory: AgentFactory = Box::new(|_ctx: &AgentContext| Box::new(UpEverything));
//! let sc = builtin::get("boot-vf-nt").unwrap();
//! let r = run(sc, RunOptions { seed: 7, ..Default::default() }, factory).unwrap();
//! // The VF came up (hn0 switched its datapath) but no lagg was built.
//! assert!(r.devctl.iter().any(|(_, l)| l == "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP"));
//! assert!(!r.summary.passed);
//! println!("{}", serde_json::to_string(&r.summary).unwrap());
//! ```

pub mod account;
pub mod agent;
pub mod backend;
pub mod builtin;
pub mod dhcp;
pub mod faults;
pub mod gate;
pub mod guestcmd;
pub mod hn;
pub mod host;
pub mod ifops;
pub mod invariants;
pub mod lagg;
pub mod manager;
pub mod plot;
pub mod printout;
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
pub use manager::{guest_manager, manager_agent, ManagerAgent, Watcher};
pub use runner::{run, Marker, RunOptions, RunResult, Sim, SimError, TimelineEntry};
pub use scenario::{parse, ReadinessSpec, Scenario, ScenarioError};
pub use scripts::{original_scripts, OriginalScripts};
pub use summary::{Latency, Summary};
pub use traffic::{DropReason, Fate, Path, PathState};
pub use world::{KernelError, Timing, World};
