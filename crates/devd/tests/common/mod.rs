//! Shared helpers: locating the repository's devd test data and building the conformance setup.
#![allow(dead_code)]

use std::path::PathBuf;

use hvnet_devd::{Config, LoadOptions};

/// The repository's `testdata/devd` (corpus and conformance data; see its README).
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/devd")
}

pub fn corpus() -> PathBuf {
    testdata().join("corpus")
}

/// The top-level `*.conf` files of the corpus other than devd.conf.
pub fn corpus_dir_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| e == "conf")
                && p.file_name().unwrap() != "devd.conf"
        })
        .collect();
    v.sort();
    v
}

/// The conformance setup: devd.conf as main file, `/etc/devd` remapped to a temp dir holding
/// the other corpus files (optionally without devmatch.conf), `/usr/local/etc/devd` missing.
pub fn conformance_config(with_devmatch: bool) -> (Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for f in corpus_dir_files() {
        if !with_devmatch && f.file_name().unwrap() == "devmatch.conf" {
            continue;
        }
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let missing = dir.path().join("does-not-exist");
    let opts = LoadOptions::default()
        .remap_dir("/etc/devd", dir.path())
        .remap_dir("/usr/local/etc/devd", missing);
    let cfg = Config::load(corpus().join("devd.conf"), &opts).unwrap();
    (cfg, dir)
}

/// (event, expected actions) pairs from a conformance JSONL file.
pub fn conformance_cases(name: &str) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(testdata().join("conformance").join(name)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let event = v["event"].as_str().unwrap().to_string();
            let actions = v["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            (event, actions)
        })
        .collect()
}
