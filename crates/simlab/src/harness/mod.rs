//! The process harness: real programs in a simulated guest.
//!
//! A guest [`Root`] is a directory, mode 0700, with `bin/` wrappers (first on the programs'
//! `PATH`) for the commands the simulator answers. A wrapper is two lines of sh that exec the
//! [`ClientCommand`] (e.g. `hvnet simulate --client ROOT -- ifconfig -a`); the client
//! ([`client`]) checks that the socket `ROOT/sim.sock` is served by root or its own user,
//! sends the command's argv as one JSON line ([`Request`]), and relays the answer
//! ([`Response`]: status, stdout, stderr). The process that owns the simulator serves the
//! socket ([`Server`]): it answers only clients of its own user or root, and decides when
//! each answer goes back — which is how the drivers built on it keep virtual time
//! deterministic (`crate::freebsd_guest`, `crate::script_server`, `crate::original`).
//!
//! Files are created so that nothing planted is followed: a throw-away root is a fresh
//! directory with an unguessable name made by mkdir alone, a root the user names must pass
//! [`hvnet_sys::shared_dir::check_dir`], files in it are written with
//! [`hvnet_sys::shared_dir::write_atomic`], and the socket is bound 0600 in a private
//! staging directory and renamed into place ([`hvnet_sys::shared_dir::bind_socket`]).

mod root;
mod server;
mod wire;

use std::path::PathBuf;
use std::time::Duration;

pub use root::{ClientCommand, Root};
pub use server::{Move, Pending, Server};
pub use wire::{client, Request, Response, TASK_ENV};

/// The socket's name in the root.
pub const SOCKET: &str = "sim.sock";

/// Why the harness could not do its part.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{what} {}", .path.display())]
    Io {
        /// What was being done: `creating`, `writing`, `binding`, ...
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    UnsafeDir(#[from] hvnet_sys::shared_dir::UnsafeDir),
    #[error("{0}: paths with a single quote are not supported")]
    Quoted(PathBuf),
    #[error("{0:?}: a wrapper's command and arguments are plain words (letters, digits, - _ .)")]
    NotAWord(String),
    #[error("accepting a guest command")]
    Accept(#[source] std::io::Error),
    #[error(
        "a guest command from uid {uid}, neither root nor this process's user (uid {own}); refused"
    )]
    ForeignClient { uid: u32, own: u32 },
    #[error("reading a guest command")]
    Read(#[source] std::io::Error),
    #[error("a guest command request")]
    Request(#[source] serde_json::Error),
    #[error("connecting to the harness at {}", .path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Peer(#[from] hvnet_sys::peer::PeerError),
    #[error("the harness's answer")]
    Answer(#[source] std::io::Error),
    #[error("the harness's answer")]
    BadAnswer(#[source] serde_json::Error),
    #[error("starting {what}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("waiting for {what}")]
    Wait {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: no command and no exit for {after:?}")]
    Hung { what: String, after: Duration },
    #[error(transparent)]
    Sim(#[from] hvnet_sim::SimError),
}

impl HarnessError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| HarnessError::Io { what, path, source }
    }
}
