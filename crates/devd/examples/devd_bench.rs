//! `cargo run --release -p hvnet-devd --example devd_bench -- MAIN.conf [DIR-FOR-/etc/devd] [SECONDS]`:
//! the same comparison as `hvnet devd bench`, without building the hvnet binary.

use hvnet_devd::{bench, workload, Config, LoadOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let main = args
        .first()
        .expect("usage: devd_bench MAIN.conf [DIR] [SECONDS]");
    let mut opts = LoadOptions::default();
    if let Some(dir) = args.get(1) {
        opts = opts.remap_dir("/etc/devd", dir);
    }
    let secs: f64 = args
        .get(2)
        .map(|s| s.parse().expect("seconds"))
        .unwrap_or(1.0);
    let cfg = Config::load(main, &opts).unwrap_or_else(|e| panic!("{e}"));
    let lines = workload::mixed(&cfg, 10_000, 0x5eed);
    let report = bench::compare(&cfg, &lines, std::time::Duration::from_secs_f64(secs))
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
}
