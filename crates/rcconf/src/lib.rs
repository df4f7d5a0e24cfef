//! hvnet-rcconf: rc.conf as FreeBSD reads it, and the network.subr rules
//! hvnet needs (ifconfig_getargs, dhcpif, syncdhcpif, aliases, ...).
//!
//! Pure: the only I/O is reading rc.conf files under a caller-given root
//! (so tests and the simulator can use a temporary directory as `/`).
//!
//! * Reading: [`RcConf::load`] (load_rc_config: defaults, `rc_conf_files`
//!   with one re-scan, `rc.conf.d/<service>`), [`RcConf::load_file`] (one
//!   file, as hyperv_vfattach does), [`RcConf::from_text`]. The sh subset:
//!   assignments in all quoting styles, `$var`/`${var}` and the `${var op
//!   word}` forms, continuations, `:`, `if`/`elif`/`else` on test(1)
//!   conditions, `. FILE`. Everything else (command substitution,
//!   commands, loops, `case`, `export`, ...) is not evaluated and becomes a
//!   [`Diagnostic`] `FILE:LINE: ...` ([`RcConf::diagnostics`],
//!   [`RcConf::check`]); function definitions are notes.
//! * Rules ([`netsubr`], [`alias`], [`routes`]): `get_if_var`,
//!   `ifconfig_getargs`, `autoif`, `dhcpif`, `syncdhcpif`, `checkyesno`,
//!   `ipv6if` and the IPv6 variables, aliases and ranges, static routes,
//!   `hyperv_vf_delay`, dhclient settings; all together in
//!   [`RcConf::interface`] → [`InterfaceConfig`].
//! * Edits ([`edit`]): sysrc-style set/delete on file text.
//!
//! ```
//! use hvnet_rcconf::RcConf;
//! let conf = RcConf::from_text("/etc/rc.conf", "ifconfig_hn0=\"SYNCDHCP mtu 9000\"\n");
//! assert!(conf.dhcpif("hn0"));
//! assert!(conf.syncdhcpif("hn0"));
//! assert_eq!(conf.ifconfig_args("hn0", None), vec!["mtu", "9000"]);
//! ```

pub mod addrs;
pub mod alias;
pub mod boot;
pub mod conf;
pub mod diag;
pub mod edit;
pub mod expand;
pub mod iface;
pub mod load;
pub mod netsubr;
pub mod pattern;
pub mod routes;
pub mod syntax;
pub mod testcmd;

pub use addrs::{AddressError, AddressSource, ConfiguredAddress};
pub use alias::Af;
pub use boot::RcAction;
pub use conf::{Origin, RcConf, Var, YesNo};
pub use diag::{Diagnostic, RcConfError, Severity};
pub use iface::{DhclientConfig, InterfaceConfig, Ipv6Config};
pub use netsubr::{if_var_name, mangle_ifname, noafif, PSEUDO_ARGS};
pub use routes::{RouteFamily, StaticRoute};
