//! hvnet-freebsd: the FreeBSD backend.
//!
//! OS-neutral, tested on any OS:
//! * [`cmd`]: argument vectors for every command run (ifconfig, sysctl,
//!   dhclient, route, rc.d scripts, daemon, kill, netstat, ps, pgrep);
//!   `Display` quotes them for logs. Never shell strings.
//! * [`parse`]: parsers for `ifconfig`, `ifconfig -l`, `netstat -rn`, the
//!   hn(4) sysctls (`hw.hn.vflist`, `hw.hn.vfmap`, `dev.hn.N.vf`), pid
//!   files, pgrep; errors are `COMMAND: line N: expected ..., found ...`.
//! * [`runner`]: the [`CommandRunner`] seam, [`SystemRunner`] (std::process;
//!   optional PATH lookup and file root for simulated guests) and
//!   [`ScriptedRunner`] (canned answers, records calls).
//! * [`system`]: observation helpers over a runner.
//! * [`backend`]: [`FreeBsdBackend`], the `hvnet_vf::Backend` impl.
//! * [`scripts`]: `hyperv_vfattach` / `hyperv_vfup` (faithful or improved).
//! * [`userland`]: FreeBSD's own devd rules and scripts as one model over a
//!   runner (the baseline hvnet is compared with).
//! * [`overrides`]: the `hyperv_vfup.hnX` override programs the manager defers to.
//!
//! FreeBSD only (`cfg(target_os = "freebsd")`): `sys` — sysctlbyname(3).
//! Any Unix: `devd_socket` — the client of devd's seqpacket socket.

pub mod backend;
pub mod cmd;
pub mod overrides;
pub mod parse;
pub mod runner;
pub mod scripts;
pub mod system;
pub mod userland;

#[cfg(unix)]
pub mod devd_socket;
#[cfg(target_os = "freebsd")]
pub mod sys;

pub use backend::FreeBsdBackend;
pub use cmd::Command;
pub use parse::ParseError;
pub use runner::{CommandRunner, Output, RunError, ScriptedRunner, SystemRunner};
pub use system::SystemError;
