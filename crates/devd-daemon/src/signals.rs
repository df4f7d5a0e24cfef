//! Signal flags (spec §5.5): handlers only set atomics; the poll loop sees EINTR and checks.
//!
//! The handled signals stay blocked except inside [`poll`] (ppoll with the old mask), so one
//! that arrives after the loop checked the flags but before it waits is still seen at once
//! instead of after the minute-long poll timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::poll::{ppoll, PollFd};
use nix::sys::signal::{
    sigaction, sigprocmask, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal,
};
use nix::sys::time::TimeSpec;

static TERMINATE: AtomicBool = AtomicBool::new(false);
static HUP: AtomicBool = AtomicBool::new(false);
static REPORT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
}
extern "C" fn on_hup(_: libc::c_int) {
    HUP.store(true, Ordering::SeqCst);
}
extern "C" fn on_report(_: libc::c_int) {
    REPORT.store(true, Ordering::SeqCst);
}

/// No SA_RESTART, so a blocking poll returns EINTR and the loop notices the flag.
fn install(sig: Signal, handler: SigHandler) {
    let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
    // SAFETY: sigaction is unsafe because a handler runs at any point of any thread. These
    // handlers only store to atomics, which is async-signal-safe and touches no state the
    // interrupted code could hold half-updated; SIG_IGN runs nothing.
    let _ = unsafe { sigaction(sig, &action) };
}

/// devd's dispositions: SIGPIPE ignored; SIGTERM/SIGINT/SIGHUP terminate (SIGHUP reloads
/// instead when `reload_on_hup`); SIGINFO (where it exists) and SIGUSR1 report counters.
pub fn install_all(reload_on_hup: bool) {
    install(Signal::SIGPIPE, SigHandler::SigIgn);
    install(Signal::SIGTERM, SigHandler::Handler(on_terminate));
    install(Signal::SIGINT, SigHandler::Handler(on_terminate));
    let hup = if reload_on_hup { on_hup } else { on_terminate };
    install(Signal::SIGHUP, SigHandler::Handler(hup));
    install(Signal::SIGUSR1, SigHandler::Handler(on_report));
    #[cfg(any(
        target_os = "freebsd",
        target_os = "macos",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    ))]
    install(Signal::SIGINFO, SigHandler::Handler(on_report));
}

/// The signals [`install_all`] takes over.
fn handled() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ] {
        set.add(sig);
    }
    #[cfg(target_os = "freebsd")]
    set.add(Signal::SIGINFO);
    set
}

/// Block the handled signals; returns the mask to wait with in [`poll`]. Children started
/// by `std::process::Command` get an empty mask, so actions are not affected.
pub fn block_handled() -> SigSet {
    let mut old = SigSet::empty();
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled()), Some(&mut old));
    old
}

/// poll(2) during which the signals blocked by [`block_handled`] can arrive (EINTR).
pub fn poll(fds: &mut [PollFd], timeout_ms: i32, wait_mask: SigSet) -> nix::Result<libc::c_int> {
    let ms = u64::try_from(timeout_ms).unwrap_or(0);
    let timeout = TimeSpec::from(Duration::from_millis(ms));
    ppoll(fds, Some(timeout), Some(wait_mask))
}

pub fn terminate_requested() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}
pub fn take_hup() -> bool {
    HUP.swap(false, Ordering::SeqCst)
}
pub fn take_report() -> bool {
    REPORT.swap(false, Ordering::SeqCst)
}
