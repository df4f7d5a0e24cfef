//! Observing a FreeBSD system through commands: interfaces, the hn(4)
//! VF sysctls, dhclient pid files. Every failure names the command.

use crate::cmd::{self, Command};
use crate::parse::{self, Interface, ParseError};
use crate::runner::{CommandRunner, Output, RunError};

/// Why an observation or action failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{command}: exited with status {status}: {stderr}")]
    Failed {
        command: String,
        status: i32,
        stderr: String,
    },
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// Run `c` and require success.
pub fn run_ok<R: CommandRunner + ?Sized>(r: &mut R, c: &Command) -> Result<Output, SystemError> {
    let out = r.run(c)?;
    if out.success() {
        Ok(out)
    } else {
        Err(SystemError::Failed {
            command: c.label(),
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        })
    }
}

/// `ifconfig -l`.
pub fn interface_names<R: CommandRunner + ?Sized>(r: &mut R) -> Result<Vec<String>, SystemError> {
    let c = cmd::ifconfig_list();
    let out = run_ok(r, &c)?;
    Ok(parse::parse_ifconfig_list(&c.label(), &out.stdout)?)
}

/// `ifconfig -a`, parsed.
pub fn interfaces<R: CommandRunner + ?Sized>(r: &mut R) -> Result<Vec<Interface>, SystemError> {
    let c = cmd::ifconfig_all();
    let out = run_ok(r, &c)?;
    Ok(parse::parse_ifconfig(&c.label(), &out.stdout)?)
}

/// `ifconfig IF`; `None` when the command fails (no such interface).
pub fn interface<R: CommandRunner + ?Sized>(
    r: &mut R,
    ifname: &str,
) -> Result<Option<Interface>, SystemError> {
    let c = cmd::ifconfig_show(ifname);
    let out = r.run(&c)?;
    if !out.success() {
        return Ok(None);
    }
    let mut v = parse::parse_ifconfig(&c.label(), &out.stdout)?;
    Ok(match v.len() {
        0 => None,
        _ => Some(v.swap_remove(0)),
    })
}

/// `sysctl -n NAME`; `None` if the sysctl does not exist (command fails).
pub fn sysctl<R: CommandRunner + ?Sized>(
    r: &mut R,
    name: &str,
) -> Result<Option<(String, String)>, SystemError> {
    let c = cmd::sysctl_read(name);
    let out = r.run(&c)?;
    if !out.success() {
        return Ok(None);
    }
    Ok(Some((c.label(), out.stdout)))
}

/// `hw.hn.vf_transparent`: `None` on kernels without it (treated as
/// non-transparent by hyperv_vfattach).
pub fn vf_transparent<R: CommandRunner + ?Sized>(r: &mut R) -> Result<Option<bool>, SystemError> {
    match sysctl(r, "hw.hn.vf_transparent")? {
        None => Ok(None),
        Some((label, text)) => Ok(Some(parse::parse_sysctl_int(&label, &text)? != 0)),
    }
}

/// `hw.hn.vflist`: `None` on kernels without it.
pub fn vflist<R: CommandRunner + ?Sized>(r: &mut R) -> Result<Option<Vec<String>>, SystemError> {
    match sysctl(r, "hw.hn.vflist")? {
        None => Ok(None),
        Some((label, text)) => Ok(Some(parse::parse_vflist(&label, &text)?)),
    }
}

/// `hw.hn.vfmap` as (VF, hn) pairs: `None` on kernels without it.
pub fn vfmap<R: CommandRunner + ?Sized>(
    r: &mut R,
) -> Result<Option<Vec<(String, String)>>, SystemError> {
    match sysctl(r, "hw.hn.vfmap")? {
        None => Ok(None),
        Some((label, text)) => Ok(Some(parse::parse_vfmap(&label, &text)?)),
    }
}

/// `dev.hn.UNIT.vf`: the VF paired with hnUNIT, `None` if none (or no
/// such sysctl).
pub fn hn_vf<R: CommandRunner + ?Sized>(
    r: &mut R,
    unit: u32,
) -> Result<Option<String>, SystemError> {
    match sysctl(r, &format!("dev.hn.{unit}.vf"))? {
        None => Ok(None),
        Some((label, text)) => Ok(parse::parse_dev_vf(&label, &text)?),
    }
}

/// `dev.hn.UNIT.rxvf` (non-transparent: the VF while it is active).
pub fn hn_rxvf<R: CommandRunner + ?Sized>(
    r: &mut R,
    unit: u32,
) -> Result<Option<String>, SystemError> {
    match sysctl(r, &format!("dev.hn.{unit}.rxvf"))? {
        None => Ok(None),
        Some((label, text)) => Ok(parse::parse_dev_vf(&label, &text)?),
    }
}

/// The pid of dhclient for `ifname`, from its pid file (location by
/// FreeBSD major version); `None` if there is no pid file.
pub fn dhclient_pid<R: CommandRunner + ?Sized>(
    r: &mut R,
    ifname: &str,
    freebsd_major: u32,
) -> Result<Option<u32>, SystemError> {
    let path = parse::dhclient_pidfile(ifname, freebsd_major);
    match r.read_file(&path)? {
        None => Ok(None),
        Some(text) => Ok(Some(parse::parse_pidfile(&path, &text)?)),
    }
}

/// The unit number of an `hnN` name.
pub fn hn_unit(ifname: &str) -> Option<u32> {
    ifname.strip_prefix("hn").and_then(|d| {
        if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            d.parse().ok()
        }
    })
}
