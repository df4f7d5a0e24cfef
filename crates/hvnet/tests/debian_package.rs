//! The Debian package's cargo-deb metadata (`[package.metadata.deb]` in crates/hvnet's
//! Cargo.toml) against what it packages and what the docs say: the binary where the unit
//! starts it, the drop-ins exactly as `hvnet install` writes them (in the vendor
//! directories), a DEP-5 copyright file with the crate's licence, no maintainer scripts but
//! the generated systemd ones, and every installed path documented. Building, installing and
//! removing the package is `.ci/deb`'s job (it needs a release build and dpkg).

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn deb() -> toml::Table {
    let manifest: toml::Table = read(&crate_dir().join("Cargo.toml")).parse().unwrap();
    manifest["package"]["metadata"]["deb"]
        .as_table()
        .expect("[package.metadata.deb]")
        .clone()
}

/// One `assets` entry: source (relative to the crate), destination, mode.
#[derive(Debug)]
struct Asset {
    source: String,
    dest: String,
    mode: String,
}

impl Asset {
    /// Where the file ends up on the installed system (a destination ending in `/` is a
    /// directory; cargo-deb gzips man pages).
    fn installed(&self) -> String {
        let mut p = if self.dest.ends_with('/') {
            let name = Path::new(&self.source).file_name().unwrap();
            format!("/{}{}", self.dest, name.to_str().unwrap())
        } else {
            format!("/{}", self.dest)
        };
        if p.starts_with("/usr/share/man/") {
            p.push_str(".gz");
        }
        p
    }

    fn source_path(&self) -> PathBuf {
        crate_dir().join(&self.source)
    }
}

fn assets() -> Vec<Asset> {
    deb()["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().expect("assets as [source, dest, mode]");
            let s = |i: usize| a[i].as_str().unwrap().to_string();
            Asset {
                source: s(0),
                dest: s(1),
                mode: s(2),
            }
        })
        .collect()
}

fn asset_installed_at(path: &str) -> Asset {
    assets()
        .into_iter()
        .find(|a| a.installed() == path)
        .unwrap_or_else(|| panic!("no asset is installed at {path}"))
}

#[test]
fn every_asset_source_exists_and_files_are_not_executable_but_the_binary() {
    for a in assets() {
        if a.source == "target/release/hvnet" {
            // cargo-deb's name for the binary it builds itself.
            assert_eq!((a.dest.as_str(), a.mode.as_str()), ("usr/sbin/", "755"));
            continue;
        }
        assert!(a.source_path().is_file(), "{a:?}: no such file");
        assert_eq!(a.mode, "644", "{a:?}");
    }
}

#[test]
fn the_unit_starts_the_packaged_binary() {
    let unit = read(&repo().join("packaging/systemd/hvnet.service"));
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let program = exec.split_whitespace().next().unwrap();
    assert_eq!(asset_installed_at(program).source, "target/release/hvnet");
    // cargo-deb installs packaging/systemd/<package>.service as the unit.
    let units = deb()["systemd-units"].as_table().unwrap().clone();
    let dir = crate_dir().join(units["unit-scripts"].as_str().unwrap());
    assert!(dir.join("hvnet.service").is_file(), "{}", dir.display());
    assert_eq!(units["enable"].as_bool(), Some(true));
}

#[test]
fn the_drop_ins_are_what_hvnet_install_writes_in_the_vendor_directories() {
    use hvnet_linux::install::{
        networkd_file, nm_conf, udev_rule, NETWORKD_FILE, NM_CONF, UDEV_RULE,
    };
    for (etc, text) in [
        (UDEV_RULE, udev_rule(&[])),
        (NETWORKD_FILE, networkd_file()),
        (NM_CONF, nm_conf(&[])),
    ] {
        // udev, networkd and NetworkManager all read /usr/lib/X and let /etc/X of the same
        // name override it: the package's copy is the default, `hvnet install`'s the local one.
        let vendor = format!("/usr/lib/{}", etc.strip_prefix("etc/").unwrap());
        let a = asset_installed_at(&vendor);
        assert_eq!(
            read(&a.source_path()),
            text,
            "{}: differs from what `hvnet install` writes",
            a.source
        );
    }
}

#[test]
fn the_configuration_is_the_example_in_etc_and_in_the_docs() {
    let conf = asset_installed_at("/etc/hvnet.conf");
    let example = asset_installed_at("/usr/share/doc/hvnet/hvnet.conf.example");
    assert_eq!(conf.source, "../../packaging/hvnet.conf.example");
    assert_eq!(example.source, conf.source);
    // Only /etc holds configuration (conffiles): nothing else the package installs is there.
    let in_etc: Vec<String> = assets()
        .iter()
        .map(Asset::installed)
        .filter(|p| p.starts_with("/etc/"))
        .collect();
    assert_eq!(in_etc, ["/etc/hvnet.conf"]);
}

#[test]
fn man_pages_are_installed_in_their_sections() {
    assert_eq!(
        asset_installed_at("/usr/share/man/man8/hvnet.8.gz").source,
        "../../docs/hvnet.8"
    );
    assert_eq!(
        asset_installed_at("/usr/share/man/man5/hvnet.conf.5.gz").source,
        "../../docs/hvnet.conf.5"
    );
}

/// `license-file`: a DEP-5 file, which cargo-deb installs as
/// /usr/share/doc/hvnet/copyright unchanged.
#[test]
fn copyright_is_dep5_with_the_crates_licence() {
    let lf = deb()["license-file"].as_array().unwrap().clone();
    assert_eq!(lf[1].as_str(), Some("0"), "no lines skipped");
    let text = read(&crate_dir().join(lf[0].as_str().unwrap()));
    assert!(text.starts_with(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
    ));
    let workspace: toml::Table = read(&repo().join("Cargo.toml")).parse().unwrap();
    let licence = workspace["workspace"]["package"]["license"]
        .as_str()
        .unwrap();
    assert!(
        text.contains(&format!("\nLicense: {licence}\n")),
        "{licence}"
    );
    assert!(
        text.contains("Redistributions in binary form"),
        "the licence text itself"
    );
}

/// The package is built without debug info (the workspace's release profile keeps it for
/// profiling), so cargo-deb strips the binary.
#[test]
fn the_package_profile_is_release_without_debug_info() {
    assert_eq!(deb()["profile"].as_str(), Some("deb"));
    let workspace: toml::Table = read(&repo().join("Cargo.toml")).parse().unwrap();
    let p = &workspace["profile"]["deb"];
    assert_eq!(p["inherits"].as_str(), Some("release"));
    assert_eq!(p["debug"].as_bool(), Some(false));
}

#[test]
fn no_maintainer_scripts_but_the_generated_systemd_ones() {
    let dir = crate_dir().join(deb()["maintainer-scripts"].as_str().unwrap());
    for name in [
        "preinst",
        "postinst",
        "prerm",
        "postrm",
        "config",
        "templates",
    ] {
        assert!(
            !dir.join(name).exists(),
            "{}: Cargo.toml says the package has no scripts of its own",
            dir.join(name).display()
        );
    }
}

#[test]
fn configuration_md_lists_every_installed_path() {
    let doc = read(&repo().join("docs/CONFIGURATION.md"));
    let section = doc
        .split("\n## Installing on Linux")
        .nth(1)
        .expect("docs/CONFIGURATION.md: a section \"Installing on Linux\"");
    let section = section.split("\n## ").next().unwrap();
    let mut paths: Vec<String> = assets().iter().map(Asset::installed).collect();
    paths.push("/usr/lib/systemd/system/hvnet.service".into());
    paths.push("/usr/share/doc/hvnet/copyright".into());
    for p in paths {
        assert!(
            section.contains(&format!("`{p}`")),
            "docs/CONFIGURATION.md \"Installing on Linux\" does not name `{p}`"
        );
    }
}

/// README.md, docs/CONFIGURATION.md and hvnet(8) give the same two commands: the
/// cargo-deb version .ci/deb installs, and the file name of this version's package.
#[test]
fn the_docs_build_and_install_commands_are_the_ones_ci_runs() {
    let ci = read(&repo().join(".ci/deb"));
    let pinned = ci
        .lines()
        .find_map(|l| l.strip_prefix("CARGO_DEB_VERSION="))
        .expect(".ci/deb: CARGO_DEB_VERSION=");
    let build =
        format!("cargo install cargo-deb --version {pinned} --locked && cargo deb -p hvnet");
    let file = format!(
        "target/debian/hvnet_{}-1_$(dpkg --print-architecture).deb",
        env!("CARGO_PKG_VERSION")
    );
    for doc in ["README.md", "docs/CONFIGURATION.md", "docs/hvnet.8"] {
        let text = read(&repo().join(doc));
        assert!(text.contains(&build), "{doc}: not `{build}`");
        assert!(
            text.contains(&format!("dpkg -i {file}")),
            "{doc}: not `dpkg -i {file}`"
        );
    }
}
