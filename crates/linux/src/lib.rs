//! hvnet's Linux backend: rtnetlink for links, addresses and tc, steered mode (with a BPF
//! steering gate), the drop-in files that keep other network managers off a VF, and the
//! namespace lab with its independent netlink monitor.
//!
//! The netlink parts only build on Linux; `install`, `roles` and `stats` (sysfs packet
//! counters) are plain code that type-checks everywhere.

pub mod install;
pub mod roles;
pub mod stats;

#[cfg(target_os = "linux")]
pub mod backend;
#[cfg(target_os = "linux")]
pub mod fastpath;
#[cfg(target_os = "linux")]
pub mod gate;
#[cfg(target_os = "linux")]
pub mod kmsg;
#[cfg(target_os = "linux")]
pub mod lab;
#[cfg(target_os = "linux")]
pub mod lab_report;
#[cfg(target_os = "linux")]
pub mod monitor;
#[cfg(target_os = "linux")]
pub mod netlink;
#[cfg(target_os = "linux")]
pub mod netns;
#[cfg(target_os = "linux")]
pub mod steer;
