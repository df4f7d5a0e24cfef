//! The harness's side of the socket: one request per connection, answered when the driver
//! decides.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use super::{HarnessError, Request, Response};

/// How long to wait between looks at a running program and the socket.
const POLL: Duration = Duration::from_micros(100);

/// The socket of a root, removed when the server goes.
#[derive(Debug)]
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
}

/// A request read from a guest program, waiting for its answer.
#[derive(Debug)]
pub struct Pending {
    pub request: Request,
    stream: UnixStream,
}

impl Pending {
    /// Send the answer; a program that went away meanwhile is no error of the harness.
    pub fn answer(self, r: &Response) {
        if let Ok(text) = serde_json::to_string(r) {
            let mut s = self.stream;
            let _ = writeln!(s, "{text}");
        }
    }
}

/// What a running program did next.
#[derive(Debug)]
pub enum Move {
    /// It sent a command (it waits for the answer).
    Request(Pending),
    /// It exited.
    Exited(ExitStatus),
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Server {
    pub(super) fn new(listener: UnixListener, path: PathBuf) -> Server {
        Server { listener, path }
    }

    /// The next request if a program is waiting to send one; never blocks for a connection.
    pub fn try_next(&self) -> Result<Option<Pending>, HarnessError> {
        match self.listener.accept() {
            Ok((stream, _)) => read(stream).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(HarnessError::Accept(e)),
        }
    }

    /// Wait for the next request.
    pub fn next(&self) -> Result<Pending, HarnessError> {
        self.listener
            .set_nonblocking(false)
            .map_err(HarnessError::Accept)?;
        let accepted = self.listener.accept();
        self.listener
            .set_nonblocking(true)
            .map_err(HarnessError::Accept)?;
        read(accepted.map_err(HarnessError::Accept)?.0)
    }

    /// Serve nothing but watch `child` (called `what` in errors) until it sends a request or
    /// exits; after `hung` of neither, it is taken as hung (the caller stops it).
    pub fn next_move(
        &self,
        child: &mut Child,
        what: &str,
        hung: Duration,
    ) -> Result<Move, HarnessError> {
        let t0 = Instant::now();
        loop {
            if let Some(p) = self.try_next()? {
                return Ok(Move::Request(p));
            }
            let exited = child.try_wait().map_err(|source| HarnessError::Wait {
                what: what.to_string(),
                source,
            })?;
            if let Some(status) = exited {
                return Ok(Move::Exited(status));
            }
            if t0.elapsed() > hung {
                return Err(HarnessError::Hung {
                    what: what.to_string(),
                    after: hung,
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

/// One request from a connection: only from root or this process's own user.
fn read(stream: UnixStream) -> Result<Pending, HarnessError> {
    stream.set_nonblocking(false).map_err(HarnessError::Read)?;
    let uid = hvnet_sys::peer::peer_uid(&stream).map_err(HarnessError::Read)?;
    let own = nix::unistd::geteuid().as_raw();
    if !hvnet_sys::peer::allowed(uid, own) {
        return Err(HarnessError::ForeignClient { uid, own });
    }
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(HarnessError::Read)?;
    let request = serde_json::from_str(&line).map_err(HarnessError::Request)?;
    Ok(Pending { request, stream })
}
