//! Arbitrary bytes as a devd.conf: loading must never panic, and every rule it yields must
//! be usable by the engine and agree with the linear reference on a few events.
#![no_main]

use hvnet_devd::{Config, Engine, Event, LinearMatcher, LoadOptions, NoMedia};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let opts = LoadOptions { no_directories: true, ..Default::default() };
    if let Ok(cfg) = Config::parse_str("fuzz.conf", &text, &opts) {
        let linear = LinearMatcher::new(&cfg);
        let engine = Engine::new(cfg.clone());
        for line in ["!system=IFNET subsystem=em0 type=LINK_UP", "+em0 at slot=1 on pci0", "? at vendor=0x1 on uhub0", "-x at  on y"] {
            let ev = Event::parse(line).unwrap();
            assert_eq!(engine.decide(&ev, &NoMedia), linear.decide(&ev, &NoMedia));
        }
    }
});
