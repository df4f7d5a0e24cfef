//! devd's socket as the event source (the FreeBSD backend's; plain Unix sockets, so it is
//! built and tested everywhere).

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::Context;
use hvnet_freebsd::devd_socket::DevdSocket;

use crate::engine::Wake;

/// Read devd's seqpacket socket on a thread; reconnect (and ask for a resync: events
/// may have been lost) whenever devd goes away.
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub fn spawn_devd_reader(path: PathBuf, tx: Sender<Wake>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("devd-reader".into())
        .spawn(move || {
            let p = path.to_string_lossy().into_owned();
            let mut warned = false;
            loop {
                match DevdSocket::connect(&p) {
                    Ok(mut s) => {
                        tracing::info!("connected to devd at {p}");
                        warned = false;
                        if tx.send(Wake::Kick).is_err() {
                            return;
                        }
                        loop {
                            match s.recv_event() {
                                Ok(Some(line)) => {
                                    if tx.send(Wake::Event(line)).is_err() {
                                        return;
                                    }
                                }
                                Ok(None) => {
                                    tracing::warn!("devd closed {p}; reconnecting");
                                    break;
                                }
                                Err(e) => {
                                    tracing::warn!("{p}: {e}; reconnecting");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) if !warned => {
                        tracing::warn!("{p}: {e}; retrying every second");
                        warned = true;
                    }
                    Err(_) => {}
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .context("starting the devd reader")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;
    use std::time::{Duration, Instant};

    use super::*;
    use hvnet_devd_daemon::clients::{Clients, Kind, Listener, SEQPACKET_NAME};

    fn accept(l: &Listener) -> Clients {
        let t = Instant::now();
        let mut clients = Clients::default();
        while clients.is_empty() {
            match l.accept().unwrap() {
                Some(c) => clients.add(c),
                None => std::thread::sleep(Duration::from_millis(10)),
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "reader never connected"
            );
        }
        clients
    }

    #[test]
    fn events_are_forwarded_and_a_lost_devd_is_reconnected() {
        let dir = tempfile::tempdir().unwrap();
        let l = Listener::create(dir.path(), Kind::SeqPacket, 4).unwrap();
        let (tx, rx) = channel();
        spawn_devd_reader(dir.path().join(SEQPACKET_NAME), tx).unwrap();
        let wait = || rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let mut clients = accept(&l);
        assert!(matches!(wait(), Wake::Kick));
        clients.forward(b"!system=IFNET subsystem=hn0 type=LINK_UP\n");
        match wait() {
            Wake::Event(line) => assert_eq!(line, "!system=IFNET subsystem=hn0 type=LINK_UP"),
            other => panic!("{other:?}"),
        }
        // devd restarts: the reader connects again and asks for a resync.
        drop(clients);
        let mut clients = accept(&l);
        assert!(matches!(wait(), Wake::Kick));
        clients.forward(b"!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP\n");
        assert!(matches!(wait(), Wake::Event(l) if l.ends_with("type=VF_UP")));
    }
}
