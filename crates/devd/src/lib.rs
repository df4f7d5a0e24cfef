//! hvnet-devd: FreeBSD devd's configuration language, event parsing, rule matching and
//! action expansion, as a pure library (no processes, no sockets; it reads config files).
//!
//! The behaviour follows FreeBSD's devd(8) (upstream `sbin/devd` ≈2024–2025), bugs included
//! where configurations in the wild depend on them; every deviation is an opt-in option.
//!
//! ```
//! use hvnet_devd::{Config, Engine, Event, LoadOptions, NoMedia};
//!
//! let cfg = Config::parse_str("example.conf", r#"
//!     notify 10 {
//!         match "system" "IFNET";
//!         match "type"   "LINK_UP";
//!         action "service dhclient quietstart $subsystem";
//!     };
//! "#, &LoadOptions::default()).unwrap();
//! let engine = Engine::new(cfg);
//! let event = Event::parse("!system=IFNET subsystem=em0 type=LINK_UP").unwrap();
//! let d = engine.decide(&event, &NoMedia);
//! assert_eq!(d.matched.unwrap().line, 2);
//! assert_eq!(d.actions[..], ["service dhclient quietstart $'em0'"]);
//! ```
//!
//! Modules, one job each:
//! * [`lexer`] and [`parser`]: the devd.conf tokens and grammar (§1.2–1.3);
//! * [`config`]: loading files and directories, `set` variables, compiled rules (§1.1, §1.4, §2.1);
//! * [`ere`]: POSIX ERE → `regex` crate translation (§2.1);
//! * [`event`]: devctl event lines and their variables (§3.1–3.3);
//! * [`expand`]: `$var` expansion and `$'…'` quoting (§3.5–3.6), or POSIX `'…'` quoting;
//! * [`context`]: where in the shell's reading of an action a value lands (quoted or not);
//! * `casefold`: ASCII case-insensitive compares, a word at a time;
//! * `intern`: configuration file names stored once, shared by rules and decisions;
//! * `keytable`: the index's frozen key → rule-positions table;
//! * `pattern`: a compiled pattern — a small dense DFA, or the `regex` crate (§2.1);
//! * [`media`]: `media-type` through [`MediaProbe`] (§2.3);
//! * [`engine`]: rule selection — the indexed [`Engine`] and devd's [`LinearMatcher`] (§2.4).
//! * [`posix`]: devd's linear scan with the C library's `regexec`, the closest baseline to devd.
//! * [`workload`]: a deterministic mixed event workload for benchmarks.
//! * [`bench`](mod@bench): timing the engine against the linear scan.

pub mod bench;
mod casefold;
pub mod config;
pub mod context;
pub mod engine;
pub mod ere;
pub mod event;
pub mod expand;
mod intern;
mod keytable;
pub mod lexer;
pub mod media;
pub mod parser;
mod pattern;
#[cfg(unix)]
pub mod posix;
pub mod workload;

pub use config::{Config, ConfigError, DirOrder, LoadOptions, MatchStmt, Rule, Statement, Warning};
pub use engine::{Decision, Engine, IndexStats, LinearMatcher, LinearScan, RuleRef, ScanRegex};
pub use event::{Event, EventError, EventKind, EventOptions, MAX_LINE_LEN};
pub use expand::{Quoting, Refused};
pub use media::{kernel_ifname, MediaKind, MediaProbe, MediaType, NoMedia, StaticMedia, IFNAMSIZ};
#[cfg(unix)]
pub use posix::PosixLinearMatcher;
