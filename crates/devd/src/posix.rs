//! devd's linear scan with the C library's POSIX regex engine — the baseline closest to devd
//! itself (§2.1: `regcomp(REG_EXTENDED | REG_NOSUB | REG_ICASE)` on `^` + pattern + `$`,
//! `regexec` per `match` per rule, in priority order, first match wins).
//!
//! [`LinearMatcher`](crate::LinearMatcher) walks the rules the same way with the `regex`
//! crate's translation of each pattern; this one differs only in the regex library, so a
//! benchmark can show both what the index saves and what devd's regex engine costs.

use std::ffi::CString;

use crate::config::Config;
use crate::engine::{LinearScan, ScanRegex};

/// A compiled POSIX regex (`regfree`d on drop).
pub struct PosixRegex(Box<libc::regex_t>);

// SAFETY: a PosixRegex is the only owner of its regex_t (boxed, never shared), and the C
// library ties no state to the thread that compiled it: it may be used and freed on another.
unsafe impl Send for PosixRegex {}
// SAFETY: through `&PosixRegex` the regex_t is only read, by regexec (it takes a const
// pointer), which POSIX requires to be thread-safe; only Drop (with `&mut`) frees it.
unsafe impl Sync for PosixRegex {}

impl PosixRegex {
    /// Compile `^pattern$` as devd does; `None` when `regcomp` fails (devd: never matches).
    fn compile(pattern: &[u8]) -> Option<PosixRegex> {
        let mut text = Vec::with_capacity(pattern.len() + 2);
        text.push(b'^');
        // regcomp reads a C string: an embedded NUL ends the pattern there, as in devd.
        text.extend(pattern.iter().take_while(|&&b| b != 0));
        text.push(b'$');
        let text = CString::new(text).ok()?;
        // SAFETY: regex_t is a C struct of integers and pointers, for which all zero bits is
        // a valid value; regcomp initialises it before any other use.
        let mut re: Box<libc::regex_t> = Box::new(unsafe { std::mem::zeroed() });
        let flags = libc::REG_EXTENDED | libc::REG_NOSUB | libc::REG_ICASE;
        // SAFETY: `re` is a live, writable regex_t that regcomp fills in; `text` is a
        // NUL-terminated CString that outlives the call (regcomp does not keep it).
        let rc = unsafe { libc::regcomp(&mut *re, text.as_ptr(), flags) };
        (rc == 0).then_some(PosixRegex(re))
    }
}

impl ScanRegex for PosixRegex {
    /// Whether `value` matches (as a C string: up to its first NUL, like devd's `c_str()`).
    fn is_match_with(&self, value: &[u8], buf: &mut Vec<u8>) -> bool {
        buf.clear();
        buf.extend(value.iter().take_while(|&&b| b != 0));
        buf.push(0);
        // SAFETY: self.0 was compiled by regcomp (compile returns None otherwise) and not yet
        // freed; `buf` is NUL-terminated and outlives the call; nmatch 0 with a null match
        // array is how POSIX asks for no submatches.
        unsafe { libc::regexec(&*self.0, buf.as_ptr().cast(), 0, std::ptr::null_mut(), 0) == 0 }
    }
}

impl Drop for PosixRegex {
    fn drop(&mut self) {
        // SAFETY: self.0 was compiled successfully by regcomp, and Drop runs once, so it is
        // freed exactly once and never used after.
        unsafe { libc::regfree(&mut *self.0) }
    }
}

/// devd's algorithm with the platform's `regexec`. Decides exactly like
/// [`Engine`](crate::Engine) wherever the C library and the ERE translation agree (the
/// benchmark checks that on its workload before timing).
pub type PosixLinearMatcher<'c> = LinearScan<'c, PosixRegex>;

impl<'c> LinearScan<'c, PosixRegex> {
    /// Compile every match statement with `regcomp`, once per distinct pattern.
    pub fn new(config: &'c Config) -> Self {
        LinearScan::compile(config, |m| PosixRegex::compile(m.pattern()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Engine, Event, LoadOptions, NoMedia};

    fn config(text: &str) -> Config {
        Config::parse_str("t.conf", text, &LoadOptions::default()).unwrap()
    }

    #[test]
    fn anchors_by_concatenation_ignores_case_and_inverts() {
        let cfg = config(
            r#"
            notify 30 { match "system" "a|b"; action "alt"; };
            notify 20 { match "system" "!IFNET"; action "not-ifnet"; };
            notify 10 { match "system" "ifnet"; action "ifnet"; };
            "#,
        );
        let m = PosixLinearMatcher::new(&cfg);
        let act = |line: &str| {
            m.decide(&Event::parse(line).unwrap(), &NoMedia)
                .actions
                .into_vec()
        };
        // `^a|b$`: starts with a, or ends with b.
        assert_eq!(act("!system=axx"), ["alt"]);
        assert_eq!(act("!system=xxb"), ["alt"]);
        assert_eq!(act("!system=xbx"), ["not-ifnet"]);
        assert_eq!(act("!system=IfNet"), ["ifnet"]);
    }

    #[test]
    fn a_pattern_that_does_not_compile_never_matches_and_always_when_inverted() {
        let cfg = config(
            r#"
            notify 20 { match "system" "("; action "never"; };
            notify 10 { match "system" "!("; action "always"; };
            "#,
        );
        let m = PosixLinearMatcher::new(&cfg);
        let d = m.decide(&Event::parse("!system=(").unwrap(), &NoMedia);
        assert_eq!(d.actions[..], ["always"]);
    }

    #[test]
    fn agrees_with_the_engine_on_the_hyperv_rules() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/devd/corpus/hyperv.conf"
        );
        let Ok(cfg) = Config::load(path, &LoadOptions::default()) else {
            panic!("cannot load {path}");
        };
        let engine = Engine::new(cfg.clone());
        let m = PosixLinearMatcher::new(&cfg);
        for line in [
            "!system=ETHERNET subsystem=hn0 type=IFATTACH",
            "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP",
            "!system=DEVFS subsystem=CDEV type=CREATE cdev=hv_kvp_dev",
            "!system=DEVFS subsystem=CDEV type=DESTROY cdev=hv_fsvss_dev",
            "!system=IFNET subsystem=mce0 type=ATTACH",
        ] {
            let ev = Event::parse(line).unwrap();
            assert_eq!(
                m.decide(&ev, &NoMedia),
                engine.decide(&ev, &NoMedia),
                "{line}"
            );
        }
    }
}
