//! Loading from a file system root, as load_rc_config does.

use std::fs;
use std::path::Path;

use hvnet_rcconf::RcConf;

fn write(root: &Path, guest: &str, text: &str) {
    let p = root.join(guest.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

const DEFAULTS: &str = "rc_conf_files=\"/etc/rc.conf /etc/rc.conf.local\"\n\
local_startup=\"/usr/local/etc/rc.d\"\n\
ifconfig_DEFAULT=\"\"\nsynchronous_dhclient=\"NO\"\nhyperv_x=default\n";

#[test]
fn defaults_then_rc_conf_then_local() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "/etc/defaults/rc.conf", DEFAULTS);
    write(t.path(), "/etc/rc.conf", "ifconfig_hn0=DHCP\nhyperv_x=rc\n");
    write(t.path(), "/etc/rc.conf.local", "hyperv_x=local\n");
    let c = RcConf::load(t.path(), &[]);
    assert_eq!(c.get("hyperv_x"), Some("local"));
    assert_eq!(c.get("synchronous_dhclient"), Some("NO"));
    assert!(c.dhcpif("hn0"));
    assert_eq!(
        c.sourced_files(),
        [
            "/etc/defaults/rc.conf",
            "/etc/rc.conf",
            "/etc/rc.conf.local"
        ]
    );
    assert_eq!(
        c.var("hyperv_x").unwrap().origin.as_ref().unwrap().file,
        "/etc/rc.conf.local"
    );
}

#[test]
fn rc_conf_files_redefinition_is_rescanned_once() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "/etc/defaults/rc.conf", DEFAULTS);
    write(
        t.path(),
        "/etc/rc.conf",
        "rc_conf_files=\"/etc/rc.conf /etc/extra.conf\"\nx=rc\n",
    );
    write(t.path(), "/etc/rc.conf.local", "y=local\n");
    write(t.path(), "/etc/extra.conf", "x=extra\n");
    let c = RcConf::load(t.path(), &[]);
    // The first pass used the old list, so rc.conf.local was read; the
    // re-scan picked up extra.conf; rc.conf was not read twice.
    assert_eq!(c.get("y"), Some("local"));
    assert_eq!(c.get("x"), Some("extra"));
    assert_eq!(
        c.sourced_files(),
        [
            "/etc/defaults/rc.conf",
            "/etc/rc.conf",
            "/etc/rc.conf.local",
            "/etc/extra.conf"
        ]
    );
}

#[test]
fn without_defaults_only_rc_conf() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "/etc/rc.conf", "a=1\n");
    write(t.path(), "/etc/rc.conf.local", "a=2\n");
    let c = RcConf::load(t.path(), &[]);
    assert_eq!(c.get("a"), Some("1"));
}

#[test]
fn missing_files_are_skipped_silently() {
    let t = tempfile::tempdir().unwrap();
    let c = RcConf::load(t.path(), &["netif"]);
    assert!(c.diagnostics().is_empty());
    assert!(c.sourced_files().is_empty());
}

#[test]
fn service_file_and_directory() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "/etc/defaults/rc.conf", DEFAULTS);
    write(t.path(), "/etc/rc.conf", "a=rc\nb=rc\n");
    write(t.path(), "/etc/rc.conf.d/netif", "a=netif\n");
    write(t.path(), "/usr/local/etc/rc.conf.d/netif/20-b", "b=20\n");
    write(
        t.path(),
        "/usr/local/etc/rc.conf.d/netif/10-b",
        "b=10\nc=10\n",
    );
    write(
        t.path(),
        "/usr/local/etc/rc.conf.d/netif/.hidden",
        "c=hidden\n",
    );
    let c = RcConf::load(t.path(), &["netif"]);
    assert_eq!(c.get("a"), Some("netif"));
    assert_eq!(c.get("b"), Some("20"));
    assert_eq!(c.get("c"), Some("10"));
    let no_svc = RcConf::load(t.path(), &[]);
    assert_eq!(no_svc.get("a"), Some("rc"));
}

#[test]
fn load_file_reads_exactly_one_file() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "/etc/defaults/rc.conf", "hyperv_vf_delay=50\n");
    write(t.path(), "/etc/rc.conf", "hyperv_vf_delay=120\n");
    write(t.path(), "/etc/rc.conf.local", "hyperv_vf_delay=7\n");
    let c = RcConf::load_file(t.path(), "/etc/rc.conf");
    assert_eq!(c.hyperv_vf_delay(), 120);
    assert_eq!(
        RcConf::load_file(t.path(), "/etc/nothere").hyperv_vf_delay(),
        2
    );
}

#[test]
fn diagnostics_name_the_guest_file() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "/etc/rc.conf", "a=1\nb=$(hostname)\n");
    let c = RcConf::load(t.path(), &[]);
    let d: Vec<String> = c.errors().map(ToString::to_string).collect();
    assert_eq!(d.len(), 1);
    assert!(d[0].starts_with("/etc/rc.conf:2: "), "{}", d[0]);
}

#[test]
fn directory_in_place_of_file_is_reported() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir_all(t.path().join("etc/rc.conf")).unwrap();
    let c = RcConf::load(t.path(), &[]);
    assert_eq!(c.errors().count(), 1);
}

#[test]
fn localbase_is_preset_for_newer_defaults() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "/etc/defaults/rc.conf",
        "rc_conf_files=\"/etc/rc.conf\"\nlocal_startup=\"${_localbase}/etc/rc.d\"\n",
    );
    write(t.path(), "/usr/local/etc/rc.conf.d/netif", "z=1\n");
    let c = RcConf::load(t.path(), &["netif"]);
    assert_eq!(c.get("local_startup"), Some("/usr/local/etc/rc.d"));
    assert_eq!(c.get("z"), Some("1"));
}

/// The end of FreeBSD's /etc/defaults/rc.conf: a guarded function
/// definition and an optional vendor file.
const DEFAULTS_TAIL: &str = r#"
if [ -z "${source_rc_confs_defined}" ]; then
	source_rc_confs_defined=yes
	source_rc_confs() {
		local i sourced_files
		for i in ${rc_conf_files}; do
			case ${sourced_files} in
			*:$i:*)
				;;
			*)
				sourced_files="${sourced_files}:$i:"
				if [ -r $i ]; then
					. $i
				fi
				;;
			esac
		done
	}
fi

# Allow vendors to override FreeBSD defaults in /etc/default/rc.conf
# without the need to carefully manage /etc/rc.conf.
if [ -r /etc/defaults/vendor.conf ]; then
	. /etc/defaults/vendor.conf
fi
"#;

#[test]
fn real_defaults_tail_evaluates_without_errors_and_reads_vendor_conf() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "/etc/defaults/rc.conf",
        &format!("{DEFAULTS}{DEFAULTS_TAIL}"),
    );
    write(t.path(), "/etc/rc.conf", "ifconfig_hn0=DHCP\n");
    let c = RcConf::load(t.path(), &[]);
    assert_eq!(c.errors().count(), 0, "{:?}", c.diagnostics());
    assert_eq!(c.get("source_rc_confs_defined"), Some("yes"));
    assert_eq!(c.get("synchronous_dhclient"), Some("NO"));
    // The function definition is noted, not an error.
    assert_eq!(c.diagnostics().len(), 1);
    write(
        t.path(),
        "/etc/defaults/vendor.conf",
        "synchronous_dhclient=YES\n",
    );
    let c = RcConf::load(t.path(), &[]);
    assert_eq!(c.get("synchronous_dhclient"), Some("YES"));
    assert!(c
        .sourced_files()
        .contains(&"/etc/defaults/vendor.conf".to_string()));
}

#[test]
fn if_else_elif_with_file_and_string_tests() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "/etc/present", "");
    write(
        t.path(),
        "/etc/rc.conf",
        "x=a\n\
         if [ -f /etc/absent ]; then r1=no; elif [ \"$x\" = a ]; then r1=elif; else r1=else; fi\n\
         if test -d /etc; then r2=dir; fi\n\
         if [ ! -e /etc/present ]; then r3=no\nelse\n  r3=else\nfi\n\
         if [ 3 -gt 2 ]; then if [ -n \"$x\" ]; then r4=nested; fi; fi\n",
    );
    let c = RcConf::load(t.path(), &[]);
    assert_eq!(c.errors().count(), 0, "{:?}", c.diagnostics());
    assert_eq!(c.get("r1"), Some("elif"));
    assert_eq!(c.get("r2"), Some("dir"));
    assert_eq!(c.get("r3"), Some("else"));
    assert_eq!(c.get("r4"), Some("nested"));
}

#[test]
fn unsupported_conditions_and_sources_are_reported() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "/etc/rc.conf",
        "if grep -q x /etc/y; then a=1; fi\n\
         if [ -f /a ] && [ -f /b ]; then b=1; fi\n\
         . /etc/missing.conf\n\
         . /etc/self.conf\n",
    );
    write(t.path(), "/etc/self.conf", ". /etc/self.conf\n");
    let c = RcConf::load(t.path(), &[]);
    assert_eq!(c.get("a"), None);
    assert_eq!(c.get("b"), None);
    let errs: Vec<String> = c.errors().map(ToString::to_string).collect();
    assert!(
        errs[0].starts_with("/etc/rc.conf:1: cannot evaluate the `if` condition"),
        "{errs:?}"
    );
    assert!(errs[1].starts_with("/etc/rc.conf:2: "), "{errs:?}");
    assert!(
        errs[2].starts_with("/etc/rc.conf:3: `. /etc/missing.conf`"),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("more than 16 deep")),
        "{errs:?}"
    );
}
