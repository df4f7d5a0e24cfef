//! Every file of testdata/devd/corpus loads; block counts and `set` variables match the spec's
//! appendix A and the conformance README.

mod common;

use hvnet_devd::{Config, EventKind, LoadOptions};

fn load_alone(path: &std::path::Path) -> Config {
    let opts = LoadOptions {
        no_directories: true,
        ..Default::default()
    };
    Config::load(path, &opts).unwrap_or_else(|e| panic!("{e}"))
}

fn all_corpus_files() -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![common::corpus()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "conf") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_corpus_file_loads_without_regex_or_syntax_problems() {
    let files = all_corpus_files();
    assert!(
        files.len() >= 24,
        "expected the whole corpus, found {}",
        files.len()
    );
    for f in files {
        let cfg = load_alone(&f);
        for w in cfg.warnings() {
            assert!(!w.message.contains("does not compile"), "{w}");
            assert!(!w.message.contains("stray"), "{w}");
        }
    }
}

#[test]
fn appendix_block_counts() {
    let c = common::corpus();
    let count = |p: &str| load_alone(&c.join(p)).rule_count();
    assert_eq!(count("devd.conf"), 10);
    assert_eq!(count("uath.conf"), 13);
    assert_eq!(count("usb.conf"), 576);
    assert_eq!(count("ulpt.conf"), 0);
    assert_eq!(count("u3g.conf"), 0);
    assert_eq!(count("historic-9.2/devd.conf"), 30);
    assert_eq!(count("historic-9.2/usb.conf"), 576);
    let usb = load_alone(&c.join("usb.conf"));
    assert_eq!(usb.rules(EventKind::Nomatch).len(), 576);
}

#[test]
fn devd_conf_kinds_variables_and_options() {
    let cfg = load_alone(&common::corpus().join("devd.conf"));
    assert_eq!(cfg.rules(EventKind::Attach).len(), 2);
    assert_eq!(cfg.rules(EventKind::Detach).len(), 2);
    assert_eq!(cfg.rules(EventKind::Nomatch).len(), 2);
    assert_eq!(cfg.rules(EventKind::Notify).len(), 4);
    // `nomatch 0 { # commented action };` is an empty block.
    assert_eq!(cfg.discarded_empty_blocks(), 1);
    let vars: Vec<_> = cfg
        .variables()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(vars, vec!["wifi-driver-regex"]);
    let v = String::from_utf8(cfg.variable(b"wifi-driver-regex").unwrap().to_vec()).unwrap();
    // The backslash-newline continuation ate the indentation of the next line.
    assert!(
        v.starts_with("(ath|ath[0-9]+k|") && v.contains("|otus|ral|rsu|") && v.ends_with(")[0-9]+"),
        "{v}"
    );
    assert_eq!(cfg.directories(), ["/etc/devd", "/usr/local/etc/devd"]);
    assert_eq!(cfg.pid_file(), Some("/var/run/devd.pid"));
}

#[test]
fn historic_devd_conf_variables() {
    let cfg = load_alone(&common::corpus().join("historic-9.2/devd.conf"));
    let vars: Vec<_> = cfg
        .variables()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(vars, vec!["scsi-controller-regex"]);
}

#[test]
fn conformance_setup_block_counts() {
    let (full, _d1) = common::conformance_config(true);
    assert_eq!(full.rule_count(), 657);
    let (nodm, _d2) = common::conformance_config(false);
    assert_eq!(nodm.rule_count(), 654);
    // The second directory does not exist and is skipped silently.
    assert_eq!(full.directories().len(), 2);
    assert_eq!(full.files().len(), 1 + common::corpus_dir_files().len());
}
