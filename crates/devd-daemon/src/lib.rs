//! A drop-in devd(8), as `hvnet devd run` runs it, and the parts of it that the VF daemon's
//! hosted devd rules share (the action runner, the shell choice, the media probe).
//!
//! Modules: [`daemon`] (the event loop), [`cli`] (devd's `-l` and default pid file),
//! [`source`] (devctl or a FIFO/seqpacket stand-in), [`framing`] (records out of what the
//! source reads), [`record`] (what one record decides), [`clients`] (the two client
//! sockets), [`action`] (`sh -c` like devd's `my_system`), [`shell`] (which shell, which
//! quoting: chosen once at start by probing), [`media`] (the `media-type` probe), [`log`]
//! (syslog/stderr), [`signals`], [`counters`] (the status file and `--metrics`),
//! [`status_view`] (that file as `hvnet status --devd` shows it). Pid files and shared
//! directories are [`hvnet_sys`]'s.

pub mod action;
pub mod cli;
pub mod clients;
pub mod counters;
pub mod daemon;
pub mod framing;
pub mod log;
pub mod media;
pub mod record;
pub mod shell;
pub mod signals;
pub mod source;
pub mod status_view;
