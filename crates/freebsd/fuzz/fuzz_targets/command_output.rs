//! Any bytes as the output of the commands the backend parses: parsing
//! must return Ok or a ParseError, never panic.
#![no_main]

use hvnet_freebsd::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(ifs) = parse::parse_ifconfig("ifconfig -a", &text) {
        for i in &ifs {
            let _ = (i.is_up(), i.link_up(), i.inet6_disabled());
        }
    }
    let _ = parse::parse_ifconfig_list("ifconfig -l", &text);
    let _ = parse::parse_vflist("sysctl -n hw.hn.vflist", &text);
    let _ = parse::parse_vfmap("sysctl -n hw.hn.vfmap", &text);
    let _ = parse::parse_dev_vf("sysctl -n dev.hn.0.vf", &text);
    let _ = parse::parse_sysctl_int("sysctl -n hw.hn.vf_transparent", &text);
    let _ = parse::parse_pidfile("/var/run/dhclient/dhclient.hn0.pid", &text);
    let _ = parse::parse_netstat_routes("netstat -rn", &text);
    let _ = parse::parse_pids("pgrep -x hv_kvp_daemon", &text);
    let _ = parse::parse_osrelease_major("sysctl -n kern.osrelease", &text);
});
