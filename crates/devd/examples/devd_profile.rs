//! `cargo run --release -p hvnet-devd --example devd_profile -- MAIN.conf DIR-FOR-/etc/devd [SECONDS] [decide]`:
//! where hvnet's engine spends its time, per event class (kind and `system`), on the mixed
//! workload: rule selection alone and selection plus expansion, in ns per event, for the
//! whole class (mostly out of cache, as in `hvnet devd bench`) and for its first 16 events
//! (cached). With a fourth argument it only decides events for SECONDS, for `perf record`;
//! `PROFILE_CLASS=TEXT` then keeps the events whose line contains TEXT, and `PROFILE_FIRST=N`
//! the first N of those. `PROFILE_PARSE=1` only parses the workload's lines for SECONDS.

use std::collections::BTreeMap;
use std::time::Instant;

use hvnet_devd::{workload, Config, Engine, Event, EventOptions, LoadOptions, NoMedia};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let main = args
        .first()
        .expect("usage: devd_profile MAIN.conf DIR [SECONDS]");
    let opts = LoadOptions::default()
        .remap_dir("/etc/devd", args.get(1).expect("DIR"))
        .remap_dir("/usr/local/etc/devd", "/nonexistent");
    let secs: f64 = args
        .get(2)
        .map(|s| s.parse().expect("seconds"))
        .unwrap_or(1.0);
    let only_decide = args.get(3).is_some();
    let cfg = Config::load(main, &opts).unwrap_or_else(|e| panic!("{e}"));
    let lines = workload::mixed(&cfg, 10_000, 0x5eed);
    let eo = EventOptions {
        timestamp: Some((1_700_000_000, 0)),
        ..Default::default()
    };
    let events: Vec<Event> = lines
        .iter()
        .map(|l| Event::parse_with(l.as_bytes(), &eo).unwrap())
        .collect();
    let engine = Engine::new(cfg);
    let media = NoMedia;
    if std::env::var_os("PROFILE_PARSE").is_some() {
        // Parse only, for `perf record`.
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed().as_secs_f64() < secs {
            for l in &lines {
                n += Event::parse_with(l.as_bytes(), &eo).map_or(0, |e| e.line().len());
            }
        }
        println!("{n}");
        return;
    }
    if only_decide {
        // PROFILE_CLASS=ZFS: only events whose line contains that text.
        let events: Vec<Event> = match std::env::var("PROFILE_CLASS") {
            Ok(c) => events
                .into_iter()
                .filter(|e| e.line().windows(c.len()).any(|w| w == c.as_bytes()))
                .collect(),
            Err(_) => events,
        };
        // PROFILE_FIRST=N: only the first N of them (N small: they stay cached).
        let events: Vec<Event> = match std::env::var("PROFILE_FIRST") {
            Ok(n) => events
                .into_iter()
                .take(n.parse().expect("PROFILE_FIRST"))
                .collect(),
            Err(_) => events,
        };
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed().as_secs_f64() < secs {
            for e in &events {
                n += std::hint::black_box(engine.decide(e, &media)).actions.len();
            }
        }
        println!("{n}");
        return;
    }
    let mut classes: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in &events {
        let sys = e
            .get(b"system")
            .map(|s| String::from_utf8_lossy(s).into_owned());
        let key = format!("{} {}", e.kind().as_str(), sys.unwrap_or_default());
        classes.entry(key).or_default().push(e);
    }
    // Best of five short rounds: the machine is shared.
    let time = |evs: &[&Event], f: &dyn Fn(&Event) -> usize| -> f64 {
        (0..5)
            .map(|_| {
                let start = Instant::now();
                let mut rounds = 0usize;
                while start.elapsed().as_secs_f64() < secs / 50.0 {
                    for e in evs {
                        std::hint::black_box(f(e));
                    }
                    rounds += 1;
                }
                start.elapsed().as_nanos() as f64 / (rounds * evs.len()) as f64
            })
            .fold(f64::INFINITY, f64::min)
    };
    let all: Vec<&Event> = events.iter().collect();
    let mut rows: Vec<(String, usize, f64, f64, f64, f64)> = classes
        .iter()
        .map(|(k, evs)| {
            let find = time(evs, &|e| usize::from(engine.find(e, &media).is_some()));
            let decide = time(evs, &|e| engine.decide(e, &media).actions.len());
            // The same class with its first 16 events only: everything stays in L1.
            let hot = &evs[..evs.len().min(16)];
            let hot_find = time(hot, &|e| usize::from(engine.find(e, &media).is_some()));
            let hot_decide = time(hot, &|e| engine.decide(e, &media).actions.len());
            (k.clone(), evs.len(), find, decide, hot_find, hot_decide)
        })
        .collect();
    rows.push((
        "ALL (cold, in workload order)".into(),
        all.len(),
        time(&all, &|e| usize::from(engine.find(e, &media).is_some())),
        time(&all, &|e| engine.decide(e, &media).actions.len()),
        f64::NAN,
        f64::NAN,
    ));
    println!(
        "{:<32} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "class", "events", "find ns", "decide ns", "hot find", "hot dec."
    );
    for (k, n, f, d, hf, hd) in rows {
        println!("{k:<32} {n:>6} {f:>9.0} {d:>9.0} {hf:>9.0} {hd:>9.0}");
    }
}
