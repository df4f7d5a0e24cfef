//! Property tests: the reader never panics, simple assignments round-trip,
//! and the network rules never panic on arbitrary values.

use hvnet_rcconf::edit::{quote, set_var};
use hvnet_rcconf::{syntax, Af, RcConf};
use proptest::prelude::*;

fn shellish() -> impl Strategy<Value = String> {
    // Characters that exercise the lexer: quotes, expansions, operators.
    proptest::collection::vec(
        prop_oneof![
            Just("a".to_string()),
            Just("=".to_string()),
            Just("\"".to_string()),
            Just("'".to_string()),
            Just("\\".to_string()),
            Just("$".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just("`".to_string()),
            Just("\n".to_string()),
            Just(" ".to_string()),
            Just(";".to_string()),
            Just("#".to_string()),
            Just("%".to_string()),
            Just(":-".to_string()),
            Just("if ".to_string()),
            Just("fi".to_string()),
            Just("f() ".to_string()),
            Just("ifconfig_hn0=".to_string()),
            Just("*".to_string()),
            Just("[".to_string()),
            "[a-z0-9_.-]{1,4}",
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn parser_never_panics_on_any_text(s in any::<String>()) {
        let _ = syntax::parse(&s);
        let _ = syntax::parse_words(&s);
        let _ = RcConf::from_text("f", &s);
    }

    #[test]
    fn parser_never_panics_on_shellish_text(s in shellish()) {
        let c = RcConf::from_text("f", &s);
        for d in c.diagnostics() {
            prop_assert!(d.line <= s.lines().count() + 1);
        }
    }

    #[test]
    fn simple_assignments_round_trip(
        name in "[A-Za-z_][A-Za-z0-9_]{0,12}",
        value in any::<String>(),
    ) {
        let text = format!("{name}={}\n", quote(&value));
        let c = RcConf::from_text("f", &text);
        prop_assert_eq!(c.get(&name), Some(value.as_str()));
        prop_assert!(c.diagnostics().is_empty());
    }

    #[test]
    fn single_quoted_and_bare_round_trip(
        name in "[a-z_][a-z0-9_]{0,8}",
        sq in "[^']*",
        bare in "[A-Za-z0-9_./:,+@%-]*",
    ) {
        let c = RcConf::from_text("f", &format!("{name}='{sq}'\nb_{name}={bare}\n"));
        prop_assert_eq!(c.get(&name), Some(sq.as_str()));
        let bname = format!("b_{name}");
        prop_assert_eq!(c.get(&bname), Some(bare.as_str()));
    }

    #[test]
    fn set_var_then_read_gives_value_and_keeps_others(
        others in proptest::collection::vec(("[a-z]{1,6}", "[a-z0-9 ]{0,8}"), 0..6),
        value in any::<String>(),
    ) {
        let mut text = String::new();
        for (n, v) in &others {
            text.push_str(&format!("o_{n}=\"{v}\"\n"));
        }
        let before = RcConf::from_text("f", &text);
        let out = set_var(&text, "f", "target", &value).unwrap();
        let after = RcConf::from_text("f", &out);
        prop_assert_eq!(after.get("target"), Some(value.as_str()));
        for (n, _) in &others {
            let k = format!("o_{n}");
            prop_assert_eq!(after.get(&k), before.get(&k));
        }
    }

    #[test]
    fn network_rules_never_panic(
        vals in proptest::collection::vec(
            (prop_oneof![
                Just("ifconfig_hn0"), Just("ifconfig_hn0_alias0"), Just("ifconfig_hn0_alias1"),
                Just("ifconfig_hn0_aliases"), Just("ipv4_addrs_hn0"), Just("ifconfig_hn0_ipv6"),
                Just("ipv6_prefix_hn0"), Just("static_routes"), Just("route_a"),
                Just("hyperv_vf_delay"), Just("netif_ipexpand_max"), Just("ifconfig_DEFAULT"),
                Just("ipv6_network_interfaces"), Just("ipv6_ifconfig_hn0_alias0"),
            ], "[ -~\n]{0,40}"),
            0..8),
    ) {
        let mut c = RcConf::new();
        for (k, v) in &vals {
            c.set(k, v).unwrap();
        }
        let _ = c.interface("hn0").addresses();
        let _ = c.ifconfig_args_eval("hn0", None);
        let _ = c.hyperv_vf_delay();
        for af in [Af::Inet, Af::Inet6, Af::Link, Af::Ether] {
            let _ = c.aliases("hn0", af);
        }
    }
}
