//! Prometheus metrics (prometheus-client), served over plain HTTP only when `metrics` is
//! configured: `GET /metrics` in the OpenMetrics text format, anything else 404.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Labels = Vec<(String, String)>;

/// The daemon's counters. Clones share the same values.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub failovers: Family<Labels, Counter>,
    pub without_vf: Family<Labels, Counter<f64, AtomicU64>>,
    pub on_vf: Family<Labels, Gauge>,
    pub packets: Family<Labels, Gauge>,
    pub actions_applied: Counter,
    pub actions_failed: Counter,
    pub steps: Counter,
    pub devd_events: Counter,
    pub devd_actions_run: Counter,
    pub devd_actions_failed: Counter,
}

/// Label set of one pair.
pub fn pair(synthetic: &str) -> Labels {
    vec![("synthetic".into(), synthetic.into())]
}

impl Metrics {
    /// A registry exposing these counters.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("hvnet");
        r.register(
            "failovers",
            "Changes of the path carrying a pair's traffic (hn <-> VF)",
            self.failovers.clone(),
        );
        r.register(
            "without_vf_seconds",
            "Time a pair's traffic was not on a VF",
            self.without_vf.clone(),
        );
        r.register(
            "on_vf",
            "1 when the pair's traffic is on its VF, 0 when on the synthetic NIC",
            self.on_vf.clone(),
        );
        r.register(
            "interface_packets",
            "Packets counted by the kernel per interface and direction, where known",
            self.packets.clone(),
        );
        r.register(
            "actions_applied",
            "Actions the VF manager applied successfully",
            self.actions_applied.clone(),
        );
        r.register(
            "actions_failed",
            "Actions that failed (they are retried)",
            self.actions_failed.clone(),
        );
        r.register(
            "reconcile_steps",
            "Observe/plan/apply steps",
            self.steps.clone(),
        );
        r.register(
            "devd_events",
            "Events seen by the hosted devd rules",
            self.devd_events.clone(),
        );
        r.register(
            "devd_actions_run",
            "Hosted devd actions run",
            self.devd_actions_run.clone(),
        );
        r.register(
            "devd_actions_failed",
            "Hosted devd actions that failed (non-zero exit, signal, or not started)",
            self.devd_actions_failed.clone(),
        );
        r
    }
}

/// The text exposition of `registry`.
pub fn exposition(registry: &Registry) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut s, registry);
    s
}

/// Bind the metrics listener (before the daemon reports ready, so errors are fatal).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serve `GET /metrics` forever.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    loop {
        let (mut conn, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("metrics: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let request_line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
            let mut words = request_line.split(|b| *b == b' ');
            let method = words.next().unwrap_or_default();
            let target = words.next().unwrap_or_default();
            let response = if method == b"GET" && (target == b"/metrics" || target == b"/") {
                let body = exposition(&registry);
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            };
            let _ = conn.write_all(response.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_exposition() {
        let m = Metrics::default();
        m.failovers.get_or_create(&pair("hn0")).inc_by(2);
        m.without_vf.get_or_create(&pair("hn0")).inc_by(1.5);
        m.actions_failed.inc();
        let text = exposition(&m.registry());
        assert!(
            text.contains("hvnet_failovers_total{synthetic=\"hn0\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("hvnet_without_vf_seconds_total{synthetic=\"hn0\"} 1.5"),
            "{text}"
        );
        assert!(text.contains("hvnet_actions_failed_total 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
