//! Any bytes as an rc.conf file: reading it and evaluating every
//! interface rule must not panic or hang.
#![no_main]

use hvnet_rcconf::{edit, Af, RcConf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let conf = RcConf::from_text("/etc/rc.conf", &text);
    for d in conf.diagnostics() {
        let _ = d.to_string();
    }
    for ifname in ["hn0", "mce0", "lo0", "vlan0.5"] {
        let _ = conf.interface(ifname).addresses();
        let _ = conf.ifconfig_args_eval(ifname, None);
        let _ = conf.aliases(ifname, Af::Inet6);
    }
    let _ = conf.hyperv_vf_delay();
    let _ = edit::set_var(&text, "/etc/rc.conf", "ifconfig_hn0", "DHCP");
    let _ = edit::delete_var(&text, "/etc/rc.conf", "ifconfig_hn0");
});
