//! The [`Backend`] trait: the only way the reconciler touches a system.
//!
//! A backend turns the OS (FreeBSD ifconfig/sysctl/dhclient, Linux rtnetlink
//! and tc, or the simulator) into a [`SystemView`] and performs [`Op`]s.
//! Events (devctl lines, netlink notifications) are delivered outside this
//! trait: for the reconciler they are only wake-ups, because it is
//! level-triggered and always re-observes.

use std::error::Error;

use crate::model::{Op, SystemView};

/// Why a backend could not observe or apply: what failed ([`BackendError`]'s variant) and
/// the [`Cause`].
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Reading the system's state failed.
    #[error("observe: {source}")]
    Observe { source: Cause },
    /// An op failed.
    #[error("{op}{}: {source}", on(.interface))]
    Apply {
        /// The op kind ([`Op::name`]).
        op: &'static str,
        /// The interface involved, if any.
        interface: Option<String>,
        source: Cause,
    },
    /// The op can never succeed on this backend (e.g. steering on FreeBSD): retrying is
    /// pointless.
    #[error("{op}{}: not supported by this backend", on(.interface))]
    Unsupported {
        op: &'static str,
        interface: Option<String>,
    },
}

/// ` on IFACE`, or nothing.
fn on(interface: &Option<String>) -> String {
    interface
        .as_ref()
        .map(|i| format!(" on {i}"))
        .unwrap_or_default()
}

/// What went wrong underneath a [`BackendError`].
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// A command ran and exited unsuccessfully (FreeBSD's ifconfig, route, ...).
    #[error("{command}: exited with status {status}: {stderr}")]
    Command {
        command: String,
        status: i32,
        /// What it printed on stderr, trimmed.
        stderr: String,
    },
    /// The op needs an interface that does not exist.
    #[error("interface {0} does not exist")]
    NoSuchInterface(String),
    /// A helper daemon's device node is missing, so the daemon cannot run.
    #[error("open {0}: No such file or directory")]
    NoDevice(String),
    /// The platform failed or refused; its own error is the source: a netlink or I/O
    /// error, a command that could not be run or whose output could not be read, the
    /// simulated kernel's or the in-memory view's refusal.
    #[error("{0}")]
    Platform(#[source] Box<dyn Error + Send + Sync>),
    /// A failure injected by the simulator's fault injection.
    #[error("injected failure")]
    Injected,
}

impl Cause {
    /// The platform's own error as the cause.
    pub fn platform(e: impl Error + Send + Sync + 'static) -> Self {
        Cause::Platform(Box::new(e))
    }
}

impl BackendError {
    /// A failure while observing the system.
    pub fn observe(cause: impl Into<Cause>) -> Self {
        BackendError::Observe {
            source: cause.into(),
        }
    }

    /// A failure while applying `op`.
    pub fn apply(op: &Op, cause: impl Into<Cause>) -> Self {
        BackendError::Apply {
            op: op.name(),
            interface: op.interface().map(str::to_string),
            source: cause.into(),
        }
    }

    /// `op` is not supported by this backend (e.g. steering on FreeBSD).
    pub fn unsupported(op: &Op) -> Self {
        BackendError::Unsupported {
            op: op.name(),
            interface: op.interface().map(str::to_string),
        }
    }

    /// The op kind ([`Op::name`]) or `"observe"`.
    pub fn op(&self) -> &'static str {
        match self {
            BackendError::Observe { .. } => "observe",
            BackendError::Apply { op, .. } | BackendError::Unsupported { op, .. } => op,
        }
    }

    /// The interface involved, if any.
    pub fn interface(&self) -> Option<&str> {
        match self {
            BackendError::Observe { .. } => None,
            BackendError::Apply { interface, .. } | BackendError::Unsupported { interface, .. } => {
                interface.as_deref()
            }
        }
    }

    /// What went wrong, in the backend's words, without the op and interface.
    pub fn detail(&self) -> String {
        match self {
            BackendError::Observe { source } | BackendError::Apply { source, .. } => {
                source.to_string()
            }
            BackendError::Unsupported { .. } => "not supported by this backend".into(),
        }
    }

    /// Retrying cannot help: the op can never succeed on this backend. Anything else may be
    /// transient (a busy device, a VF that went away meanwhile) and is retried with back-off.
    pub fn is_permanent(&self) -> bool {
        matches!(self, BackendError::Unsupported { .. })
    }
}

/// A system the VF manager can observe and change.
///
/// Contract:
/// - `observe` reads the whole relevant state from scratch (no caching of
///   earlier results that could hide a change), so a restarted manager
///   converges from whatever it finds.
/// - `apply` performs one [`Op`]. Ops are retry-safe: applying an op whose
///   effect is already present succeeds without changing anything (e.g.
///   adding an existing address, stopping a pid that is gone). It must not
///   block for long (no waiting for DHCP leases or sleeps).
/// - Errors are returned, never panics; the reconciler retries and reports.
pub trait Backend {
    /// Read the current state.
    fn observe(&mut self) -> Result<SystemView, BackendError>;

    /// Perform one action.
    fn apply(&mut self, op: &Op) -> Result<(), BackendError>;
}

impl<B: Backend + ?Sized> Backend for &mut B {
    fn observe(&mut self) -> Result<SystemView, BackendError> {
        (**self).observe()
    }

    fn apply(&mut self, op: &Op) -> Result<(), BackendError> {
        (**self).apply(op)
    }
}

impl<B: Backend + ?Sized> Backend for Box<B> {
    fn observe(&mut self) -> Result<SystemView, BackendError> {
        (**self).observe()
    }

    fn apply(&mut self, op: &Op) -> Result<(), BackendError> {
        (**self).apply(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("SIOCSIFMTU: Invalid argument")]
    struct Einval(#[source] std::io::Error);

    #[test]
    fn error_message_names_op_and_interface() {
        let op = Op::SetMtu {
            iface: "mce0".into(),
            mtu: 9000,
        };
        let e = BackendError::apply(
            &op,
            Cause::Command {
                command: "ifconfig mce0 mtu 9000".into(),
                status: 1,
                stderr: "ifconfig: SIOCSIFMTU: Invalid argument".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "set_mtu on mce0: ifconfig mce0 mtu 9000: exited with status 1: \
             ifconfig: SIOCSIFMTU: Invalid argument"
        );
        assert_eq!((e.op(), e.interface()), ("set_mtu", Some("mce0")));
        assert!(!e.is_permanent());
        let u = BackendError::unsupported(&op);
        assert!(u.is_permanent());
        assert_eq!(
            u.to_string(),
            "set_mtu on mce0: not supported by this backend"
        );
        assert_eq!(u.detail(), "not supported by this backend");
        let o = BackendError::observe(Cause::Injected);
        assert_eq!(o.to_string(), "observe: injected failure");
        assert_eq!((o.op(), o.interface()), ("observe", None));
    }

    #[test]
    fn platform_errors_are_the_source_chain() {
        let op = Op::SetMtu {
            iface: "mce0".into(),
            mtu: 9000,
        };
        let io = std::io::Error::from_raw_os_error(22);
        let e = BackendError::apply(&op, Cause::platform(Einval(io)));
        assert_eq!(
            e.to_string(),
            "set_mtu on mce0: SIOCSIFMTU: Invalid argument"
        );
        assert_eq!(e.detail(), "SIOCSIFMTU: Invalid argument");
        // BackendError -> Cause -> the platform's error -> its I/O error.
        let cause = e.source().expect("a cause");
        assert!(cause.downcast_ref::<Cause>().is_some());
        let platform = cause.source().expect("the platform's error");
        assert!(platform.downcast_ref::<Einval>().is_some());
        let io = platform.source().expect("the I/O error");
        let io = io.downcast_ref::<std::io::Error>().expect("an io::Error");
        assert_eq!(io.raw_os_error(), Some(22));
    }
}
