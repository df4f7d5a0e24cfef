//! Criterion: the one-hour scenario with 60 live migrations, kernel only
//! and with the original scripts in the guest.

use criterion::{criterion_group, criterion_main, Criterion};
use hvnet_sim::{builtin, no_agent, original_scripts, run, RunOptions};

fn hour(c: &mut Criterion) {
    let sc = builtin::get("hour-60-migrations").unwrap();
    c.bench_function("hour-60-migrations/none", |b| {
        b.iter(|| {
            run(sc.clone(), RunOptions::default(), no_agent())
                .unwrap()
                .summary
                .packets
                .sent
        })
    });
    c.bench_function("hour-60-migrations/scripts", |b| {
        b.iter(|| {
            run(sc.clone(), RunOptions::default(), original_scripts())
                .unwrap()
                .summary
                .packets
                .sent
        })
    });
}

criterion_group!(benches, hour);
criterion_main!(benches);
