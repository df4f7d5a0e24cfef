//! rc.conf for real backends: where the manager's network configuration and
//! `hyperv_vf_delay` come from (FreeBSD: `/etc/rc.conf` as rc reads it; Linux: only a file
//! `rc_conf` names).

use std::path::Path;

use hvnet_rcconf::RcConf;
use hvnet_vf::{ManagerConfig, NetConfig, NetConfigSource};

use crate::config::{BackendKind, Config};

/// rc.conf as the FreeBSD backend reads it: `/etc/rc.conf` through rc's own rules, or one
/// named file on top of `/etc/defaults/rc.conf`.
pub fn load(cfg: &Config) -> Option<RcConf> {
    let root = Path::new("/");
    match &cfg.rc_conf {
        Some(p) if p != Path::new("/etc/rc.conf") => {
            let mut rc = RcConf::new();
            rc.source_file(root, "/etc/defaults/rc.conf");
            if !rc.source_file(root, &p.to_string_lossy()) {
                tracing::warn!("rc_conf {}: cannot be read", p.display());
            }
            Some(rc)
        }
        Some(_) => Some(RcConf::load(root, &[])),
        None if cfg.backend.kind() == BackendKind::Freebsd => Some(RcConf::load(root, &[])),
        None => None,
    }
}

/// The manager's options and network configuration source for a real backend.
pub fn settings(cfg: &Config) -> (ManagerConfig, Box<dyn NetConfigSource>) {
    match load(cfg) {
        Some(rc) => {
            for d in rc.errors() {
                tracing::warn!("rc.conf: {d}");
            }
            (cfg.manager_config(rc.hyperv_vf_delay()), Box::new(rc))
        }
        None => (cfg.manager_config(0), Box::new(NetConfig::default())),
    }
}
