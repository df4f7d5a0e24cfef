//! Criterion: hvnet's engine vs devd's linear scan on the mixed workload, with the whole
//! corpus (testdata/devd/corpus) and without devmatch.conf.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hvnet_devd::{
    workload, Config, Engine, Event, EventOptions, LinearMatcher, LoadOptions, NoMedia,
};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/devd/corpus")
}

fn setup(with_devmatch: bool) -> Config {
    let dir = std::env::temp_dir().join(format!(
        "hvnet-devd-bench-{}-{with_devmatch}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(corpus()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if p.is_file()
            && name.ends_with(".conf")
            && name != "devd.conf"
            && (with_devmatch || name != "devmatch.conf")
        {
            std::fs::copy(&p, dir.join(&name)).unwrap();
        }
    }
    let cfg = Config::load(
        corpus().join("devd.conf"),
        &LoadOptions::default().remap_dir("/etc/devd", &dir),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    cfg
}

fn matching(c: &mut Criterion) {
    let mut g = c.benchmark_group("devd_decide");
    for (name, with_devmatch) in [("full", true), ("no-devmatch", false)] {
        let cfg = setup(with_devmatch);
        let opts = EventOptions {
            timestamp: Some((1_700_000_000, 0)),
            ..Default::default()
        };
        let events: Vec<Event> = workload::mixed(&cfg, 2_000, 0x5eed)
            .iter()
            .map(|l| Event::parse_with(l.as_bytes(), &opts).unwrap())
            .collect();
        let engine = Engine::new(cfg.clone());
        let linear = LinearMatcher::new(&cfg);
        g.throughput(Throughput::Elements(events.len() as u64));
        g.bench_with_input(BenchmarkId::new("hvnet", name), &events, |b, evs| {
            b.iter(|| {
                evs.iter()
                    .map(|e| engine.decide(e, &NoMedia).actions.len())
                    .sum::<usize>()
            })
        });
        g.bench_with_input(BenchmarkId::new("linear", name), &events, |b, evs| {
            b.iter(|| {
                evs.iter()
                    .map(|e| linear.decide(e, &NoMedia).actions.len())
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = matching
}
criterion_main!(benches);
