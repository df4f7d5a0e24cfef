//! Reading a realistic rc.conf and evaluating an interface's rules.
//! `cargo bench -p hvnet-rcconf`

use criterion::{criterion_group, criterion_main, Criterion};
use hvnet_rcconf::RcConf;

/// An Azure-image-like rc.conf (160 lines once repeated).
fn sample() -> String {
    let block = "hostname=\"vm\"\n\
                 ifconfig_hn0=\"SYNCDHCP\"\n\
                 ifconfig_hn0_alias0=\"inet 10.0.0.5-9/24\"\n\
                 ifconfig_hn0_ipv6=\"inet6 accept_rtadv\"\n\
                 ipv6_network_interfaces=auto\n\
                 sshd_enable=YES # ssh\n\
                 static_routes=\"a:hn0\"\n\
                 route_a=\"-net 10.1.0.0/16 10.0.0.1\"\n";
    block.repeat(20)
}

fn bench(c: &mut Criterion) {
    let text = sample();
    c.bench_function("from_text 160 lines", |b| {
        b.iter(|| RcConf::from_text("/etc/rc.conf", std::hint::black_box(&text)))
    });
    let conf = RcConf::from_text("/etc/rc.conf", &text);
    c.bench_function("interface(hn0)", |b| {
        b.iter(|| conf.interface(std::hint::black_box("hn0")))
    });
    c.bench_function("ifconfig_getargs+dhcpif+syncdhcpif", |b| {
        b.iter(|| {
            let i = std::hint::black_box("hn0");
            (
                conf.ifconfig_args(i, None),
                conf.dhcpif(i),
                conf.syncdhcpif(i),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
