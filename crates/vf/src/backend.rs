//! The [`Backend`] trait: the only way the reconciler touches a system.
//!
//! A backend turns the OS (FreeBSD ifconfig/sysctl/dhclient, Linux rtnetlink
//! and tc, or the simulator) into a [`SystemView`] and performs [`Op`]s.
//! Events (devctl lines, netlink notifications) are delivered outside this
//! trait: for the reconciler they are only wake-ups, because it is
//! level-triggered and always re-observes.

use crate::model::{Op, SystemView};

/// Why a backend could not observe or apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}{}: {message}", interface.as_ref().map(|i| format!(" on {i}")).unwrap_or_default())]
pub struct BackendError {
    /// The op kind ([`Op::name`]) or `"observe"`.
    pub op: String,
    /// The interface involved, if any.
    pub interface: Option<String>,
    /// What went wrong, in the backend's words (command, errno, ...).
    pub message: String,
    /// The op can never succeed on this backend (retrying is pointless).
    pub unsupported: bool,
}

impl BackendError {
    /// A failure while observing the system.
    pub fn observe(message: impl Into<String>) -> Self {
        BackendError {
            op: "observe".into(),
            interface: None,
            message: message.into(),
            unsupported: false,
        }
    }

    /// A failure while applying `op`.
    pub fn apply(op: &Op, message: impl Into<String>) -> Self {
        BackendError {
            op: op.name().into(),
            interface: op.interface().map(str::to_string),
            message: message.into(),
            unsupported: false,
        }
    }

    /// `op` is not supported by this backend (e.g. steering on FreeBSD).
    pub fn unsupported(op: &Op) -> Self {
        BackendError {
            unsupported: true,
            ..BackendError::apply(op, "not supported by this backend")
        }
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

    #[test]
    fn error_message_names_op_and_interface() {
        let op = Op::SetMtu {
            iface: "mce0".into(),
            mtu: 9000,
        };
        let e = BackendError::apply(&op, "ifconfig: SIOCSIFMTU: Invalid argument");
        assert_eq!(
            e.to_string(),
            "set_mtu on mce0: ifconfig: SIOCSIFMTU: Invalid argument"
        );
        assert!(!e.unsupported);
        assert!(BackendError::unsupported(&op).unsupported);
        assert_eq!(BackendError::observe("x").to_string(), "observe: x");
    }
}
