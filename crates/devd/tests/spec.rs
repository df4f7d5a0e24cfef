//! End-to-end checks of spec §1–3 through the public API: one test per rule or quirk.

use std::cell::Cell;

use hvnet_devd::{
    Config, ConfigError, Decision, DirOrder, Engine, Event, EventKind, EventOptions, LinearMatcher,
    LoadOptions, MediaProbe, MediaType, NoMedia, Quoting, StaticMedia,
};

fn cfg(text: &str) -> Config {
    Config::parse_str("t.conf", text, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn ev(line: &str) -> Event {
    Event::parse_with(
        line.as_bytes(),
        &EventOptions {
            timestamp: Some((1700000000, 42137)),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Decide with both matchers and insist they agree.
fn decide_with(config: &Config, line: &str, media: &dyn MediaProbe) -> Decision {
    let e = ev(line);
    let a = Engine::new(config.clone()).decide(&e, media);
    let b = LinearMatcher::new(config).decide(&e, media);
    assert_eq!(a, b, "engine and linear scan disagree on {line}");
    a
}

fn decide(config: &Config, line: &str) -> Decision {
    decide_with(config, line, &NoMedia)
}

fn actions(text: &str, line: &str) -> Vec<String> {
    decide(&cfg(text), line).actions.into_vec()
}

// §1.1 files and load order ---------------------------------------------------------------

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn directory_files_filter_and_sorted_order() {
    let d = tempfile::tempdir().unwrap();
    for (name, tag) in [
        ("b.conf", "b"),
        ("a.conf", "a"),
        (".conf", "dot"),
        (".hidden.conf", "hidden"),
        ("x.conf.conf", "xx"),
        ("x.conf~", "tilde"),
        ("x.CONF", "upper"),
        ("x.conf.orig", "orig"),
        ("conf", "short"),
    ] {
        write(
            d.path(),
            name,
            &format!("notify 0 {{ match \"system\" \"{tag}\"; action \"{tag}\"; }};\n"),
        );
    }
    let main = d.path().join("main.cfg");
    write(
        d.path(),
        "main.cfg",
        &format!("options {{ directory \"{}\"; }};", d.path().display()),
    );
    let c = Config::load(&main, &LoadOptions::default()).unwrap();
    let order: Vec<String> = c
        .rules(EventKind::Notify)
        .iter()
        .map(|r| String::from_utf8(r.actions().next().unwrap().to_vec()).unwrap())
        .collect();
    // Byte-wise sorted: ".conf" < ".hidden.conf" < "a.conf" < "b.conf" < "x.conf.conf".
    assert_eq!(order, ["dot", "hidden", "a", "b", "xx"]);
    // Readdir order loads the same set.
    let r = Config::load(
        &main,
        &LoadOptions {
            dir_order: DirOrder::Readdir,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.rule_count(), 5);
}

#[test]
fn missing_directory_is_skipped_and_remap_works() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "r.conf", "attach 0 { action \"x\"; };");
    let text = "options { directory \"/nonexistent/hvnet\"; directory \"/etc/devd\"; };";
    let c = Config::parse_str(
        "m.conf",
        text,
        &LoadOptions::default().remap_dir("/etc/devd", d.path()),
    )
    .unwrap();
    assert_eq!(c.rule_count(), 1);
    let c = Config::parse_str(
        "m.conf",
        text,
        &LoadOptions {
            no_directories: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(c.rule_count(), 0);
}

#[test]
fn non_regular_files_named_conf_are_skipped_with_a_warning() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("sub.conf")).unwrap();
    // A FIFO nobody writes: opening it to read would wait for a writer forever.
    let fifo = std::ffi::CString::new(d.path().join("x.conf").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path `fifo` points at (a CString alive for
    // the call) and keeps no pointer.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    write(d.path(), "ok.conf", "attach 0 { action \"x\"; };");
    std::os::unix::fs::symlink(d.path().join("ok.conf"), d.path().join("link.conf")).unwrap();
    let text = format!("options {{ directory \"{}\"; }};", d.path().display());
    // Loaded on another thread, so that a hang fails the test instead of stalling it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(Config::parse_str("m.conf", &text, &LoadOptions::default()));
    });
    let c = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("loading a directory with a FIFO in it hung")
        .unwrap();
    // The regular file and the symlink to it are loaded; the FIFO and the directory are not.
    assert_eq!(c.rule_count(), 2);
    let warnings: Vec<String> = c.warnings().iter().map(|w| w.to_string()).collect();
    for name in ["sub.conf", "x.conf"] {
        let want = format!(
            "{}: not a regular file; skipped",
            d.path().join(name).display()
        );
        assert!(warnings.contains(&want), "{want:?} not in {warnings:?}");
    }
    assert_eq!(warnings.len(), 2, "{warnings:?}");
}

#[test]
fn unreadable_files_are_fatal() {
    let d = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", d.path().join("dangling.conf")).unwrap();
    let text = format!("options {{ directory \"{}\"; }};", d.path().display());
    let e = Config::parse_str("m.conf", &text, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, ConfigError::Open { .. }), "{e}");
    assert!(e.to_string().contains("dangling.conf"));
    let e = Config::load("/nonexistent/devd.conf", &LoadOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/devd.conf: cannot open config file"),
        "{e}"
    );
}

#[test]
fn syntax_error_in_directory_file_names_file_and_line_reset_per_file() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "bad.conf", "\n\nattach 1 { action \"x\" };\n");
    let text = format!(
        "\n\n\n\n\noptions {{ directory \"{}\"; }};",
        d.path().display()
    );
    let e = Config::parse_str("m.conf", &text, &LoadOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.ends_with("bad.conf:3: expected ';', found '}'"),
        "{msg}"
    );
}

#[test]
fn nested_directories_are_queued_and_loops_stop() {
    let d = tempfile::tempdir().unwrap();
    let sub = d.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    write(
        d.path(),
        "a.conf",
        &format!(
            "options {{ directory \"{}\"; directory \"{}\"; }}; attach 0 {{ action \"a\"; }};",
            sub.display(),
            d.path().display()
        ),
    );
    write(&sub, "s.conf", "attach 0 { action \"s\"; };");
    let text = format!("options {{ directory \"{}\"; }};", d.path().display());
    let c = Config::parse_str("m.conf", &text, &LoadOptions::default()).unwrap();
    assert_eq!(c.rule_count(), 2);
}

#[test]
fn ties_keep_parse_order_across_files() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "z.conf", "attach 5 { action \"dir\"; };");
    let text = format!(
        "options {{ directory \"{}\"; }}; attach 5 {{ action \"main\"; }};",
        d.path().display()
    );
    let c = Config::parse_str("m.conf", &text, &LoadOptions::default()).unwrap();
    assert_eq!(decide(&c, "+em0 at on pci0").actions[..], ["main"]);
}

// §1.2–1.4 language -------------------------------------------------------------------------

#[test]
fn comments_strings_and_continuations() {
    let c = cfg("# c1\n// c2\n/* c3 ; } */\nnotify 0 { match \"system\" \"A#B\"; action \"echo a\\\n      b\"; };");
    assert_eq!(decide(&c, "!system=A#B").actions[..], ["echo ab"]);
}

#[test]
fn continuation_before_closing_quote_keeps_the_quote() {
    // The value becomes `echo x"`; in a real config the next quote then opens a new string.
    let c = cfg("notify 0 { action \"echo x\\\n   \"; };");
    assert_eq!(decide(&c, "!a=b").actions[..], ["echo x\""]);
}

#[test]
fn empty_string_is_an_error_not_a_string() {
    let e = Config::parse_str(
        "t.conf",
        "notify 0 { action \"\"; };",
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("t.conf:1: expected"), "{e}");
}

#[test]
fn stray_characters_warn_but_load() {
    let c = cfg("attach -5 { match \"device-name\" = \"em0\"; action \"x\"; };");
    assert_eq!(c.rules(EventKind::Attach)[0].priority(), 5);
    assert_eq!(c.warnings().len(), 1);
    assert!(
        c.warnings()[0]
            .to_string()
            .starts_with("t.conf:1: stray character(s) '-' '='"),
        "{}",
        c.warnings()[0]
    );
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    assert!(Config::parse_str("t.conf", "attach -5 { action \"x\"; };", &strict).is_err());
}

#[test]
fn multiple_options_blocks_pid_file_last_wins_and_set_overwrites() {
    let c = cfg(
        "options { pid-file \"/a\"; set v \"1\"; }; options { pid-file \"/b\"; set v \"2\"; };",
    );
    assert_eq!(c.pid_file(), Some("/b"));
    assert_eq!(c.variable(b"v"), Some(&b"2"[..]));
}

#[test]
fn sugar_statements_match_their_variables() {
    let c = cfg("nomatch 0 { class \"0x0c03.*\"; subdevice \"0x1\"; action \"pci\"; }; attach 0 { device-name \"em[0-9]+\"; action \"em\"; };");
    assert_eq!(
        decide(&c, "? at slot=1 class=0x0c0320 subdevice=0x1 on pci0").actions[..],
        ["pci"]
    );
    assert_eq!(decide(&c, "+em1 at slot=1 on pci0").actions[..], ["em"]);
}

#[test]
fn number_atoi_semantics() {
    let c = cfg("attach 007 { action \"x\"; };");
    assert_eq!(c.rules(EventKind::Attach)[0].priority(), 7);
}

// §2 matching -----------------------------------------------------------------------------

#[test]
fn highest_priority_first_match_only() {
    let c = cfg(
        "notify 0 { match \"system\" \"IFNET\"; action \"low\"; };\n\
         notify 10 { match \"system\" \"IFNET\"; action \"high\"; action \"high2 $subsystem\"; };\n\
         notify 10 { match \"system\" \"IFNET\"; action \"tie-later\"; };",
    );
    let d = decide(&c, "!system=IFNET subsystem=em0 type=LINK_UP");
    assert_eq!(d.actions[..], ["high", "high2 $'em0'"]);
    let m = d.matched.unwrap();
    assert_eq!((m.line, m.priority, m.file), (2, 10, "t.conf"));
}

#[test]
fn swallow_rules_and_no_match_blocks() {
    let c =
        cfg("detach 100 { device-name \"ed50\"; }; detach 0 { action \"generic $device-name\"; };");
    let d = decide(&c, "-ed50 at on isa0");
    assert_eq!(d.matched.as_ref().unwrap().priority, 100);
    assert!(d.actions.is_empty());
    assert_eq!(
        decide(&c, "-em0 at on pci0").actions[..],
        ["generic $'em0'"]
    );
}

#[test]
fn empty_blocks_are_discarded() {
    let c = cfg("nomatch 1000 { }; nomatch 0 { action \"x\"; };");
    assert_eq!(c.rule_count(), 1);
    assert_eq!(decide(&c, "? at on acpi0").actions[..], ["x"]);
}

#[test]
fn kinds_use_their_own_lists() {
    let c = cfg("attach 0 { action \"a\"; }; detach 0 { action \"d\"; }; nomatch 0 { action \"n\"; }; notify 0 { action \"!\"; };");
    assert_eq!(decide(&c, "+x0 at on y").actions[..], ["a"]);
    assert_eq!(decide(&c, "-x0 at on y").actions[..], ["d"]);
    assert_eq!(decide(&c, "? at on y").actions[..], ["n"]);
    assert_eq!(decide(&c, "!system=X").actions[..], ["!"]);
    let u = decide(&c, "*x");
    assert_eq!((u.kind, u.matched), (EventKind::Unknown, None));
    // A +/-/? line without a space is abandoned.
    assert_eq!(decide(&c, "+x0").matched, None);
}

#[test]
fn anchoring_case_insensitivity_and_alternation() {
    let c = cfg("notify 0 { match \"system\" \"ifnet\"; action \"ci\"; }; notify 1 { match \"type\" \"a|b\"; action \"alt\"; };");
    assert_eq!(decide(&c, "!system=IFNET type=zzz").actions[..], ["ci"]);
    assert_eq!(decide(&c, "!system=IFNETX type=zzz").matched, None);
    assert_eq!(decide(&c, "!system=X type=a-starts").actions[..], ["alt"]);
    assert_eq!(decide(&c, "!system=X type=ends-b").actions[..], ["alt"]);
    assert_eq!(decide(&c, "!system=X type=xax").matched, None);
}

#[test]
fn inversion_and_unset_variables() {
    let c = cfg("notify 1 { match \"subsystem\" \"!(usbus|wlan)[0-9]+\"; action \"inv\"; }; notify 0 { match \"foo\" \".*\"; match \"bar\" \"!.+\"; action \"unset\"; };");
    assert_eq!(
        decide(&c, "!system=IFNET subsystem=em0").actions[..],
        ["inv"]
    );
    assert_eq!(
        decide(&c, "!system=IFNET subsystem=usbus0").actions[..],
        ["unset"]
    );
}

#[test]
fn invalid_regex_never_matches_or_always_when_inverted_with_warning() {
    let c = cfg("notify 1 { match \"system\" \"(\"; action \"never\"; };\nnotify 0 { match \"system\" \"!(\"; action \"always\"; };");
    assert_eq!(decide(&c, "!system=(").actions[..], ["always"]);
    assert_eq!(c.warnings().len(), 2);
    assert!(
        c.warnings()[0]
            .to_string()
            .starts_with("t.conf:1: regex \"^($\" does not compile"),
        "{}",
        c.warnings()[0]
    );
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    assert!(Config::parse_str("t.conf", "notify 1 { match \"system\" \"(\"; };", &strict).is_err());
}

#[test]
fn patterns_expand_at_load_time_with_set_values_of_that_moment() {
    let c = cfg("options { set drv \"(em|igb)\"; };\n\
         attach 1 { device-name \"$drv[0-9]+\"; action \"one $drv\"; };\n\
         options { set drv \"ix\"; };\n\
         attach 0 { device-name \"$drv[0-9]+\"; action \"two\"; };");
    // The first rule kept "(em|igb)"; its action sees the final value.
    assert_eq!(decide(&c, "+igb0 at on pci0").actions[..], ["one $'ix'"]);
    assert_eq!(decide(&c, "+ix0 at on pci0").actions[..], ["two"]);
}

#[test]
fn bang_through_set_is_literal_and_event_vars_in_patterns_are_empty() {
    let c = cfg("options { set neg \"!em0\"; }; attach 1 { device-name \"$neg\"; action \"lit\"; }; attach 0 { match \"bus\" \"$device-name\"; action \"empty-bus\"; };");
    assert_eq!(decide(&c, "+!em0 at on pci0").actions[..], ["lit"]);
    assert_eq!(decide(&c, "+em0 at on pci0").matched, None);
    assert_eq!(
        decide(&c, "+em0 at  x=1 on pci0").actions[..],
        ["empty-bus"]
    );
}

#[test]
fn event_variables_shadow_globals() {
    let c = cfg(
        "options { set system \"G\"; set extra \"E\"; }; notify 0 { action \"$system $extra\"; };",
    );
    assert_eq!(decide(&c, "!system=IFNET").actions[..], ["$'IFNET' $'E'"]);
}

struct Counting<'a> {
    inner: StaticMedia,
    calls: &'a Cell<u32>,
    last: &'a Cell<Option<String>>,
}
impl MediaProbe for Counting<'_> {
    fn media(&self, ifname: &str) -> Option<MediaType> {
        self.calls.set(self.calls.get() + 1);
        self.last.set(Some(ifname.to_string()));
        self.inner.media(ifname)
    }
}

#[test]
fn media_type_statements() {
    let c = cfg(
        "notify 2 { match \"type\" \"LINK_UP\"; media-type \"Ethernet\"; action \"eth $subsystem\"; };\n\
         notify 1 { match \"type\" \"LINK_UP\"; media-type \"802.11\"; action \"wifi\"; };\n\
         notify 0 { match \"type\" \"LINK_UP\"; media-type \"tokenring\"; action \"unknown\"; };\n\
         attach 0 { media-type \"ethernet\"; action \"att\"; };",
    );
    let mut m = StaticMedia::new();
    m.insert("em0", MediaType::Ethernet);
    m.insert("wlan0", MediaType::Ieee80211);
    m.insert("lo0", MediaType::Other(0x40));
    assert_eq!(
        decide_with(&c, "!system=IFNET subsystem=em0 type=LINK_UP", &m).actions[..],
        ["eth $'em0'"]
    );
    assert_eq!(
        decide_with(&c, "!system=IFNET subsystem=wlan0 type=LINK_UP", &m).actions[..],
        ["wifi"]
    );
    // Misspelled/removed names behave as "unknown": true only when the probe fails.
    assert_eq!(
        decide_with(&c, "!system=IFNET subsystem=gone0 type=LINK_UP", &m).actions[..],
        ["unknown"]
    );
    assert_eq!(
        decide_with(&c, "!system=IFNET subsystem=lo0 type=LINK_UP", &m).matched,
        None
    );
    // device-name is preferred over subsystem.
    let (calls, last) = (Cell::new(0), Cell::new(None));
    let probe = Counting {
        inner: m.clone(),
        calls: &calls,
        last: &last,
    };
    assert_eq!(
        Engine::new(c.clone())
            .decide(&ev("+em0 at subsystem=x on pci0"), &probe)
            .actions[..],
        ["att"]
    );
    assert_eq!(last.take().as_deref(), Some("em0"));
    // Short-circuit: no probe when an earlier match fails.
    calls.set(0);
    Engine::new(c).decide(&ev("!system=IFNET subsystem=em0 type=LINK_DOWN"), &probe);
    assert_eq!(calls.get(), 0);
}

/// devd copies the name into SIOCGIFMEDIA's 16-byte field (IFNAMSIZ), so the kernel looks up
/// only its first 15 bytes: a longer name whose first 15 bytes name an interface has that
/// interface's media, and the probe is asked for exactly those 15 bytes.
#[test]
fn media_type_looks_up_the_first_15_bytes_of_the_name() {
    let c = cfg(
        "notify 1 { match \"type\" \"LINK_UP\"; media-type \"ethernet\"; action \"eth\"; };\n\
         notify 0 { match \"type\" \"LINK_UP\"; media-type \"unknown\"; action \"none\"; };",
    );
    let mut m = StaticMedia::new();
    m.insert("vtnet0123456789", MediaType::Ethernet);
    let (calls, last) = (Cell::new(0), Cell::new(None));
    let probe = Counting {
        inner: m,
        calls: &calls,
        last: &last,
    };
    for (name, action) in [
        ("vtnet0123456789", "eth"),
        ("vtnet0123456789x", "eth"),
        ("vtnet0123456789-and-more", "eth"),
        ("vtnet012345678", "none"),
        ("vtnet01234567x9", "none"),
    ] {
        let line = format!("!system=IFNET subsystem={name} type=LINK_UP");
        assert_eq!(
            decide_with(&c, &line, &probe).actions[..],
            [action],
            "{name}"
        );
        let asked = last.take().unwrap();
        assert_eq!(asked.as_bytes(), &name.as_bytes()[..name.len().min(15)]);
    }
    // The same through device-name on an attach event.
    let c = cfg("attach 0 { media-type \"ethernet\"; action \"att\"; };");
    assert_eq!(
        decide_with(&c, "+vtnet0123456789abc at  on pci0", &probe).actions[..],
        ["att"]
    );
}

// §3 events, expansion, quoting ---------------------------------------------------------------

#[test]
fn builtin_variables_in_actions() {
    let a = actions(
        "notify 0 { action \"$* | $_ | $timestamp\"; };",
        "!system=A b=c",
    );
    assert_eq!(
        a,
        ["$'!system=A b=c' | $'system=A b=c' | $'1700000000.042137'"]
    );
}

#[test]
fn attach_bus_and_usb_location_collision() {
    let a = actions(
        "attach 0 { action \"$device-name $bus $port\"; };",
        "+umass0 at bus=0 hubaddr=1 port=2 on uhub0",
    );
    assert_eq!(a, ["$'umass0' $'uhub0' $'2'"]);
}

#[test]
fn empty_location_bug_and_option() {
    let text = "attach 0 { action \"v=$vendor b=$bus\"; };";
    assert_eq!(
        actions(text, "+foo0 at  vendor=0x1 on bar0"),
        ["v=$'' b=$''"]
    );
    let c = cfg(text);
    let e = Event::parse_with(
        b"+foo0 at  vendor=0x1 on bar0",
        &EventOptions {
            fix_empty_location: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        Engine::new(c).decide(&e, &NoMedia).actions[..],
        ["v=$'0x1' b=$'bar0'"]
    );
    // Empty location and empty pnp still set bus.
    assert_eq!(
        actions("nomatch 0 { action \"b=$bus\"; };", "? at   on acpi0"),
        ["b=$'acpi0'"]
    );
}

#[test]
fn expansion_rules_in_actions() {
    let a = actions(
        "notify 0 { action \"$$HOME ${x} $1 $(date +%s $(echo $cdev)) $cdev.x end$\"; };",
        "!cdev=da0",
    );
    assert_eq!(a, ["$HOME ${x} $1 $(date +%s $(echo $cdev)) $'da0'.x end$"]);
    let a = actions(
        "notify 0 { action \"[$device-name-x] [$nosuch]\"; };",
        "!device-name-x=v",
    );
    assert_eq!(a, ["[$'v'] [$'']"]);
}

#[test]
fn quoting_neutralises_shell_syntax_and_legacy_mode_does_not() {
    let text = "notify 0 { action \"echo $comm\"; };";
    let line = r#"!system=kernel comm="a'b; rm -rf / \\ $(x)""#;
    assert_eq!(actions(text, line), [r#"echo $'a\'b; rm -rf / \\\\ $(x)'"#]);
    let legacy = Config::parse_str(
        "t.conf",
        text,
        &LoadOptions {
            quoting: Quoting::Legacy,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        Engine::new(legacy).decide(&ev(line), &NoMedia).actions[..],
        [r#"echo a'b; rm -rf / \\ $(x)"#]
    );
}

#[test]
fn commands_are_quoted_for_the_runner_s_shell_and_a_nul_is_refused() {
    use hvnet_devd::expand::{Refused, Unquotable};
    let engine = Engine::new(cfg(
        "notify 0 { match \"system\" \"X\"; action \"echo $comm\"; action \"echo $cdev\"; };",
    ));
    let event = ev(r#"!system=X comm="a'b\c" cdev=da0"#);
    let rule = engine.find(&event, &NoMedia).unwrap();
    assert_eq!(
        engine.commands(rule, &event, Quoting::Shell),
        [
            Ok(br"echo $'a\'b\\c'".to_vec()),
            Ok(b"echo $'da0'".to_vec())
        ]
    );
    assert_eq!(
        engine.commands(rule, &event, Quoting::SingleQuotes),
        [Ok(br"echo 'a'\''b\c'".to_vec()), Ok(b"echo 'da0'".to_vec())]
    );
    // What devd match prints stays devd's form whatever the runner uses.
    assert_eq!(
        engine.decide(&event, &NoMedia).actions[..],
        [r"echo $'a\'b\\c'", "echo $'da0'"]
    );
    // Only the action that inserts the NUL is refused.
    let event = ev("!system=X comm=a\0b cdev=da0");
    let rule = engine.find(&event, &NoMedia).unwrap();
    for quoting in [Quoting::Shell, Quoting::SingleQuotes] {
        assert_eq!(
            engine.commands(rule, &event, quoting),
            [
                Err(Refused::Value {
                    name: (*b"comm").into(),
                    why: Unquotable::Nul
                }),
                Ok(format!(
                    "echo {}",
                    if quoting == Quoting::Shell {
                        "$'da0'"
                    } else {
                        "'da0'"
                    }
                )
                .into_bytes())
            ]
        );
    }
}

#[test]
fn single_quoted_template_bug_is_reproduced() {
    let a = actions(
        "notify 0 { action \"echo '$foo $bar'\"; };",
        "!foo=meta bar=var",
    );
    assert_eq!(a, ["echo '$'meta' $'var''"]);
}
