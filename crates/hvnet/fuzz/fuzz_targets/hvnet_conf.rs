//! Any bytes as hvnet.conf: loading must not panic; an error is `FILE:LINE: message` with a
//! line inside the file; a loaded configuration holds only values in their ranges and gives
//! the manager its options without panicking.
#![no_main]

use hvnet::inputs::{Backend, Config};
use hvnet::limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::parse("fuzz.conf", &text) {
        Ok(c) => {
            for d in [c.vf_delay, c.action_timeout].into_iter().flatten() {
                assert!(d.as_secs_f64() <= limits::MAX_SECONDS);
            }
            for d in [
                c.resync,
                c.damping.window,
                c.damping.hold,
                c.damping.max_hold,
                c.retry.initial,
                c.retry.max,
            ] {
                assert!(d.as_secs_f64() <= limits::MAX_SECONDS, "{d:?}");
            }
            if let Backend::Sim(sim) = &c.backend {
                assert!(limits::SPEED.contains(sim.speed));
            }
            assert!(c.damping.max_hold >= c.damping.hold && c.retry.max >= c.retry.initial);
            let _ = c.manager_config(u64::MAX);
            let _ = c.manager_config(0);
        }
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.lines().count() + 1, "{e}");
            assert!(e
                .to_string()
                .starts_with(&format!("fuzz.conf:{}: ", e.line)));
        }
    }
});
