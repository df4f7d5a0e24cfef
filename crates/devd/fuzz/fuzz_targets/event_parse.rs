//! Arbitrary bytes as a devctl event: parsing and deciding must never panic, and the
//! indexed engine must agree with the linear reference.
#![no_main]

use std::sync::OnceLock;

use hvnet_devd::{Config, Engine, Event, EventOptions, LinearMatcher, LoadOptions, NoMedia};
use libfuzzer_sys::fuzz_target;

const RULES: &str = r#"
options { set r "(em|hn)[0-9]+"; };
notify 10 { match "system" "IFNET"; match "subsystem" "$r"; action "echo $subsystem $*"; };
notify 5 { match "type" "!LINK_.*"; action "x $type"; };
attach 0 { device-name "$r"; action "a $device-name $bus"; };
nomatch 101 { match "_" " +at +on .*"; };
nomatch 32 { match "bus" "uhub[0-9]+"; match "vendor" "0x05ac"; action "kldload $product"; };
detach 0 { };
"#;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| Config::parse_str("fuzz.conf", RULES, &LoadOptions::default()).unwrap())
}

fn matchers() -> &'static (Engine, LinearMatcher<'static>) {
    static M: OnceLock<(Engine, LinearMatcher<'static>)> = OnceLock::new();
    M.get_or_init(|| (Engine::new(config().clone()), LinearMatcher::new(config())))
}

fuzz_target!(|data: &[u8]| {
    for opts in [EventOptions::default(), EventOptions { fix_empty_location: true, fix_backslash_quote: true, timestamp: None }] {
        if let Ok(ev) = Event::parse_with(data, &opts) {
            // The name table agrees with devd's rule: the last assignment of a name wins.
            for (name, _) in ev.variables() {
                let last = ev.variables().filter(|(n, _)| *n == name).last().map(|(_, v)| v);
                assert_eq!(ev.get(name), last);
            }
            let (engine, linear) = matchers();
            assert_eq!(engine.decide(&ev, &NoMedia), linear.decide(&ev, &NoMedia));
        }
    }
});
