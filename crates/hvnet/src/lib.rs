//! hvnet: keeps a VM's network up while its SR-IOV VF comes and goes.
//!
//! The modules behind the `hvnet` binary: `src/main.rs` parses the command line and calls
//! [`cmd`]. A library so that fuzz targets and tests reach the daemons' input handling
//! ([`inputs`]) directly; the other modules stay private to it.

pub mod cmd;
mod logging;

pub use hvnet_daemon::limits;

/// The daemons' input handling, for fuzz targets and property tests: hvnet.conf (`hvnet
/// run`), the control socket's requests and answers (`hvnet run`, `hvnet status`), devctl
/// records (`hvnet devd run`).
pub mod inputs {
    pub use hvnet_daemon::config::{Backend, BackendKind, Config, ConfigError};
    pub use hvnet_daemon::protocol::{
        answer, parse_answer, parse_request, AnswerError, Request, MAX_REQUEST,
    };
    pub use hvnet_daemon::report::{
        ActionRecord, DevdAction, DevdReport, PairReport, Report, SimReport,
    };
    pub use hvnet_devd_daemon::framing::{classify, LineSplitter, Record, MAX_RECORD};
    pub use hvnet_devd_daemon::record::{decide, event_line, Outcome};
    pub use hvnet_vf::{DaemonStatus, DataPath, ErrorStatus, Mode, PairStatus, VfState};
}
