//! `cargo run --release -p hvnet-devd --example devd_scaling -- CORPUS_DIR [SECONDS]`:
//! per-event cost as usb.conf's nomatch rules are replicated 1x..16x (distinct vendor ids per
//! copy), for hvnet's engine and the linear scan, without devmatch.conf (so usb.conf decides
//! USB events). Prints a Markdown table.

use std::time::Duration;

use hvnet_devd::{bench, workload, Config, LoadOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let corpus = std::path::PathBuf::from(
        args.first()
            .expect("usage: devd_scaling CORPUS_DIR [SECONDS]"),
    );
    let secs: f64 = args
        .get(1)
        .map(|s| s.parse().expect("seconds"))
        .unwrap_or(0.5);
    let usb = std::fs::read_to_string(corpus.join("usb.conf")).expect("usb.conf");
    let base =
        Config::parse_str("usb.conf", &usb, &LoadOptions::default()).expect("usb.conf loads");
    // The same events for every size: built from the 1x rules.
    let lines = workload::mixed(&base, 5_000, 0x5eed);
    println!("| usb.conf copies | rules | hvnet events/s | hvnet ns/event | linear events/s | linear ns/event | speedup |");
    println!("|---|---|---|---|---|---|---|");
    for copies in [1, 2, 4, 8, 16] {
        let dir = tempfile_dir();
        for entry in std::fs::read_dir(&corpus).expect("corpus") {
            let p = entry.expect("entry").path();
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if p.is_file()
                && name.ends_with(".conf")
                && !["devd.conf", "devmatch.conf", "usb.conf"].contains(&name.as_str())
            {
                std::fs::copy(&p, dir.join(&name)).expect("copy");
            }
        }
        std::fs::write(
            dir.join("usb.conf"),
            workload::replicate_vendor_rules(&usb, copies),
        )
        .expect("write");
        let opts = LoadOptions::default().remap_dir("/etc/devd", &dir);
        let cfg = Config::load(corpus.join("devd.conf"), &opts).expect("load");
        let r = bench::compare(&cfg, &lines, Duration::from_secs_f64(secs)).expect("compare");
        println!(
            "| {copies}x | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1}x |",
            r.rules,
            r.hvnet_events_per_sec,
            1e9 / r.hvnet_events_per_sec,
            r.linear_events_per_sec,
            1e9 / r.linear_events_per_sec,
            r.speedup
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "hvnet-devd-scaling-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
