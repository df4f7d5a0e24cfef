//! The daemons' Prometheus endpoint, served over plain HTTP only when configured: `GET
//! /metrics` in the OpenMetrics text format, anything else 404. `hvnet run` serves its
//! registry here, `hvnet devd run --metrics` its counters; each defines its own metrics.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Parse a metrics listen address: `PORT`, `:PORT` (both on 127.0.0.1), `IP:PORT`,
/// `[IPv6]:PORT` or `localhost:PORT`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let port_only = s.strip_prefix(':').unwrap_or(s);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
        }
    }
    s.parse::<SocketAddr>()
        .map_err(|_| format!("metrics: expected PORT, :PORT, IP:PORT or [IPv6]:PORT, found {s:?}"))
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
    fn listen_addresses_default_to_loopback() {
        assert_eq!(parse_listen("9100").unwrap().to_string(), "127.0.0.1:9100");
        assert_eq!(parse_listen(":9100").unwrap().to_string(), "127.0.0.1:9100");
        assert_eq!(
            parse_listen("localhost:9100").unwrap().to_string(),
            "127.0.0.1:9100"
        );
        assert_eq!(
            parse_listen("[::1]:9100").unwrap().to_string(),
            "[::1]:9100"
        );
        assert_eq!(
            parse_listen("0.0.0.0:9100").unwrap().to_string(),
            "0.0.0.0:9100"
        );
        assert!(parse_listen("host.example:1").is_err());
    }
}
