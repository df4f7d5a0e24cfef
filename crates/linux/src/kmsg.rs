//! The host's planned VF removal, as a Linux guest sees it.
//!
//! On Hyper-V/Azure the host announces that it takes a VF away (servicing, live migration)
//! with a VMBus message to the synthetic NIC (NVSP "send VF association", allocated = 0),
//! before it ejects the VF's PCI device. `hv_netvsc` reacts to that message only by
//! logging `VF slot N removed` on the synthetic NIC (`netvsc_send_vf`); no netlink or
//! uevent notice exists until the VF itself is torn down. So the kernel log is the one
//! place a guest process can learn of the switch ahead of the VF going: hvnet follows
//! `/dev/kmsg` and turns that line into a planned switch for the named synthetic NIC.
//!
//! Records are untrusted text: [`parse_record`] only matches, never panics, and any
//! record that is not exactly that line is ignored. A forged line (only root can write
//! /dev/kmsg) can do no more than move a pair to its synthetic NIC early.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

/// What the record announces: the VF of `synthetic` is being removed by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfRemoved {
    /// The synthetic NIC's device as netvsc names it (its VMBus instance id).
    pub device: String,
    pub synthetic: String,
    pub slot: u32,
}

impl VfRemoved {
    /// Whether the record is about the interface `synthetic` whose parent device under
    /// `sysfs` is what the record names (an interface without one, as in the lab, is
    /// matched by name alone).
    pub fn is_for(&self, sysfs: &std::path::Path, synthetic: &str) -> bool {
        if self.synthetic != synthetic {
            return false;
        }
        match std::fs::read_link(sysfs.join("class/net").join(synthetic).join("device")) {
            Ok(d) => d.file_name().is_some_and(|f| f == self.device.as_str()),
            Err(_) => true,
        }
    }
}

/// Parse one /dev/kmsg record (`PRI,SEQ,TS,FLAGS;TEXT`, then optional `\n KEY=VALUE`
/// lines) and recognise netvsc's `hv_netvsc DEVICE IFNAME: VF slot N removed`.
pub fn parse_record(record: &[u8]) -> Option<VfRemoved> {
    let text = std::str::from_utf8(record).ok()?;
    let first = text.lines().next()?;
    let (_prefix, message) = first.split_once(';')?;
    let (head, tail) = message.split_once(": VF slot ")?;
    let slot = tail.trim_end().strip_suffix(" removed")?.parse().ok()?;
    let words: Vec<&str> = head.split_whitespace().collect();
    let [driver, device, synthetic] = words[..] else {
        return None;
    };
    if driver != "hv_netvsc" {
        return None;
    }
    // An interface name: at most 15 bytes, no '/', no whitespace (checked by the split).
    if synthetic.is_empty() || synthetic.len() > 15 || synthetic.contains('/') {
        return None;
    }
    Some(VfRemoved {
        device: device.to_string(),
        synthetic: synthetic.to_string(),
        slot,
    })
}

/// The line netvsc logs, as a /dev/kmsg write (the lab produces the announcement with it).
pub fn netvsc_line(device: &str, synthetic: &str, slot: u32) -> String {
    format!("<6>hv_netvsc {device} {synthetic}: VF slot {slot} removed\n")
}

/// Follow /dev/kmsg from its current end on a thread of its own and call `announce` for
/// every planned VF removal. Returns once the log is open (an error says why it is not).
pub fn follow(
    path: &str,
    announce: impl Fn(VfRemoved) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut f = File::open(path)?;
    let path = path.to_string();
    // Only what is logged from now on: older lines announce nothing about the present.
    f.seek(SeekFrom::End(0))?;
    std::thread::Builder::new()
        .name("kmsg".into())
        .spawn(move || {
            // One read returns one record (at most about 8 KiB).
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match f.read(&mut buf) {
                    Ok(0) => std::thread::sleep(Duration::from_millis(100)),
                    Ok(n) => {
                        if let Some(r) = parse_record(&buf[..n]) {
                            announce(r);
                        }
                    }
                    // EPIPE: records were overwritten before we read them; go on.
                    Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!("{path}: {e}; planned VF removals are not seen");
                        return;
                    }
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn netvscs_line_is_recognised() {
        let rec = b"6,1234,5678901,-;hv_netvsc 000d3af5-76bd-000d-3af5-76bd000d3af5 eth0: VF slot 1 removed\n SUBSYSTEM=vmbus\n DEVICE=+vmbus:000d3af5\n";
        assert_eq!(
            parse_record(rec),
            Some(VfRemoved {
                device: "000d3af5-76bd-000d-3af5-76bd000d3af5".into(),
                synthetic: "eth0".into(),
                slot: 1
            })
        );
        // What the lab writes comes back the same way (user facility, same text).
        let line = netvsc_line("lab-42", "hn0", 3);
        let rec = format!("14,9,10,-;{}", line.trim_start_matches("<6>"));
        assert_eq!(parse_record(rec.as_bytes()).unwrap().synthetic, "hn0");
    }

    #[test]
    fn a_record_is_for_the_interface_with_its_device() {
        let dir = std::env::temp_dir().join(format!("hvnet-kmsg-{}", std::process::id()));
        let net = dir.join("class/net");
        std::fs::create_dir_all(net.join("eth0")).unwrap();
        std::fs::create_dir_all(net.join("hn0")).unwrap();
        std::os::unix::fs::symlink("../../devices/abcd-1234", net.join("eth0/device")).unwrap();
        let r = |device: &str, name: &str| VfRemoved {
            device: device.into(),
            synthetic: name.into(),
            slot: 1,
        };
        assert!(r("abcd-1234", "eth0").is_for(&dir, "eth0"));
        assert!(
            !r("ffff-0000", "eth0").is_for(&dir, "eth0"),
            "another VM's NIC"
        );
        assert!(!r("abcd-1234", "eth1").is_for(&dir, "eth0"));
        // No parent device (a veth in the lab): by name.
        assert!(r("hvlab-1", "hn0").is_for(&dir, "hn0"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn other_lines_are_ignored() {
        for rec in [
            &b"6,1,2,-;hv_netvsc 000d eth0: VF slot 1 added"[..],
            b"6,1,2,-;hv_netvsc 000d eth0: VF registering: eth1",
            b"6,1,2,-;mlx5_core 000d eth0: VF slot 1 removed",
            b"6,1,2,-;hv_netvsc 000d a/b: VF slot 1 removed",
            b"6,1,2,-;hv_netvsc 000d verylonginterfacename: VF slot 1 removed",
            b"6,1,2,-;hv_netvsc: VF slot x removed",
            b"6,1,2,-;hv_netvsc eth0: VF slot 1 removed",
            b"hv_netvsc 000d eth0: VF slot 1 removed",
            b"\xff\xfe",
            b"",
        ] {
            assert_eq!(parse_record(rec), None, "{}", String::from_utf8_lossy(rec));
        }
    }

    proptest! {
        #[test]
        fn arbitrary_records_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_record(&buf);
        }

        #[test]
        fn names_round_trip(name in "[a-z][a-z0-9]{0,14}", slot: u32) {
            let line = netvsc_line("dev", &name, slot);
            let rec = format!("6,1,2,-;{}", line.trim_start_matches("<6>"));
            prop_assert_eq!(
                parse_record(rec.as_bytes()),
                Some(VfRemoved { device: "dev".into(), synthetic: name, slot })
            );
        }
    }
}
