//! A deterministic mixed event workload for benchmarks (`hvnet devd bench`, criterion).
//!
//! Realistic devctl lines of every kind: USB nomatch events for vendor/product pairs that the
//! configuration's nomatch rules name (taken from the configuration itself) and for pairs no
//! rule names, PCI and ACPI nomatches, IFNET/DEVFS/ACPI/ZFS/GEOM/USB/Hyper-V/kernel notifies,
//! and attach/detach lines.

use crate::config::{Config, Statement};
use crate::event::EventKind;

/// xorshift64*: a tiny deterministic generator, so the workload is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Vendor/product pairs named by the configuration's nomatch rules (first literal of each).
fn usb_ids(config: &Config) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    for rule in config.rules(EventKind::Nomatch) {
        let lit = |var: &[u8]| {
            rule.statements().iter().find_map(|s| match s {
                Statement::Match(m) if m.var() == var => m
                    .literals()
                    .and_then(|l| l.first())
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
                _ => None,
            })
        };
        if let (Some(v), Some(p)) = (lit(b"vendor"), lit(b"product")) {
            ids.push((v, p));
        }
    }
    if ids.is_empty() {
        ids.push(("0x0781".into(), "0x5567".into()));
    }
    ids
}

fn usb_nomatch(rng: &mut Rng, vendor: &str, product: &str) -> String {
    let port = 1 + rng.below(8);
    let addr = 2 + rng.below(20);
    let (class, sub, proto) = [
        ("0xff", "0xfd", "0x01"),
        ("0x08", "0x06", "0x50"),
        ("0x03", "0x01", "0x01"),
        ("0xff", "0x00", "0x00"),
    ][rng.below(4)];
    format!(
        "? at bus=0 hubaddr=1 port={port} devaddr={addr} interface=0 ugen=ugen0.{addr} vendor={vendor} product={product} devclass=0x00 devsubclass=0x00 devproto=0x00 sernum=\"\" release=0x0100 mode=host intclass={class} intsubclass={sub} intprotocol={proto} on uhub{}",
        rng.below(3)
    )
}

/// `n` events mixing every kind, generated from `seed`.
pub fn mixed(config: &Config, n: usize, seed: u64) -> Vec<String> {
    let ids = usb_ids(config);
    let mut rng = Rng(seed.max(1));
    let ifs = [
        "em0", "hn0", "hn1", "mce0", "igb1", "wlan0", "lagg0", "bridge0", "usbus0",
    ];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let e = match rng.below(20) {
            // USB nomatch for a pair a rule names.
            0..=4 => {
                let (v, p) = &ids[rng.below(ids.len())];
                usb_nomatch(&mut rng, v, p)
            }
            // USB nomatch nobody handles.
            5 | 6 => {
                let v = format!("0x{:04x}", 0x9000 + rng.below(0x1000));
                let p = format!("0x{:04x}", rng.below(0x10000));
                usb_nomatch(&mut rng, &v, &p)
            }
            7 => {
                let sub = ["LINK_UP", "LINK_DOWN", "ATTACH", "DETACH"];
                format!("!system=IFNET subsystem={} type={}", rng.pick(&ifs), rng.pick(&sub))
            }
            8 => {
                let cdevs = ["pts/3", "hv_kvp_dev", "hv_fsvss_dev", "ttyU0", "ums1", "dsp0", "md0", "da0p1", "ugen0.4"];
                let t = rng.pick(&["CREATE", "DESTROY"]);
                format!("!system=DEVFS subsystem=CDEV type={t} cdev={}", rng.pick(&cdevs))
            }
            9 => {
                let s = rng.pick(&["ACAD", "Button", "Lid", "Thermal", "CMBAT", "Suspend", "Resume"]);
                format!("!system=ACPI subsystem={s} type=\\_SB_.PCI0.LPCB.{s} notify=0x{:02x}", rng.below(256))
            }
            10 => {
                let t = rng.pick(&["ereport.fs.zfs.io", "ereport.fs.zfs.checksum", "ereport.fs.zfs.vdev.open_failed", "resource.fs.zfs.statechange", "misc.fs.zfs.history_event"]);
                format!("!system=ZFS subsystem=ZFS type={t} pool=tank vdev_path=/dev/ada{}p3 vdev_guid={}", rng.below(4), rng.next() % 10_000_000_000)
            }
            11 => format!("!system=GEOM subsystem=DEV type={} cdev=vtbd{}", rng.pick(&["CREATE", "DESTROY", "SIZECHANGE", "MEDIACHANGE"]), rng.below(3)),
            12 => format!("!system=HYPERV_NIC_VF subsystem=hn{} type=VF_UP", rng.below(2)),
            13 => format!("!system=ETHERNET subsystem=mce{} type=IFATTACH", rng.below(2)),
            14 => {
                let v = rng.pick(&["0x0781", "0x046d", "0x05ac"]);
                format!("!system=USB subsystem=DEVICE type=ATTACH ugen=ugen0.2 cdev=ugen0.2 vendor={v} product=0x5567 devclass=0x00 devsubclass=0x00 sernum=\"4C530001\" release=0x0100 mode=host port=1 parent=ugen0.1")
            }
            15 => {
                let d = rng.pick(&["em0", "ath0", "iwn0", "ukbd0", "ums0", "umass0", "ed50", "hn0", "mce0"]);
                let sign = rng.pick(&["+", "-"]);
                format!("{sign}{d} at slot=1 function=0 dbsf=pci0:0:1:0 handle=\\_SB_.PCI0.S08 vendor=0x8086 device=0x100e subvendor=0x8086 subdevice=0x001e class=0x020000 on pci0")
            }
            16 => format!("? at slot={} function=0 dbsf=pci0:0:31:3 handle=\\_SB_.PCI0.HDAS vendor=0x8086 device=0xa348 subvendor=0x1028 subdevice=0x0869 class=0x040300 on pci0", rng.below(32)),
            17 => rng.pick(&["? at   on acpi0", "? at handle=\\_SB_.PCI0.X _HID=none _UID=0 _CID=none on acpi0", "? at handle=\\_SB_.TPM _HID=MSFT0101 _UID=0 on acpi0"]).to_string(),
            18 => "!system=kernel subsystem=power type=resume".to_string(),
            _ => format!("!system=RCTL subsystem=rule type=matched rule=user:770:swap:devctl=1G pid={} ruid=770 jail=0", rng.below(99999)),
        };
        out.push(e);
    }
    out
}

/// `copies` versions of a usb.conf-style file: copy 0 is the text as given, copy `k` has
/// every `vendor` and `product` id rewritten to a distinct value (`0x05ac` → `0xk05ac`), so the rules are
/// all different and the rule count grows linearly.
pub fn replicate_vendor_rules(text: &str, copies: usize) -> String {
    let mut out = String::with_capacity(text.len() * copies);
    for k in 0..copies {
        if k == 0 {
            out.push_str(text);
        } else {
            out.push_str(
                &text
                    .replace("\"vendor\" \"0x", &format!("\"vendor\" \"0x{k:x}"))
                    .replace("\"product\" \"0x", &format!("\"product\" \"0x{k:x}")),
            );
        }
        out.push('\n');
    }
    out
}
