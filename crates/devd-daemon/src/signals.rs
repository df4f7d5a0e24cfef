//! Signal flags (spec §5.5): handlers only set atomics; the poll loop sees EINTR and checks.
//!
//! The handled signals stay blocked except inside [`poll`] (ppoll with the old mask), so one
//! that arrives after the loop checked the flags but before it waits is still seen at once
//! instead of after the minute-long poll timeout.

use std::sync::atomic::{AtomicBool, Ordering};

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

fn install(sig: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: plain sigaction with an async-signal-safe handler (atomic store) or SIG_IGN.
    // No SA_RESTART, so a blocking poll returns EINTR and the loop notices the flag.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// devd's dispositions: SIGPIPE ignored; SIGTERM/SIGINT/SIGHUP terminate (SIGHUP reloads
/// instead when `reload_on_hup`); SIGINFO (where it exists) and SIGUSR1 report counters.
pub fn install_all(reload_on_hup: bool) {
    install(libc::SIGPIPE, libc::SIG_IGN);
    install(
        libc::SIGTERM,
        on_terminate as *const () as libc::sighandler_t,
    );
    install(
        libc::SIGINT,
        on_terminate as *const () as libc::sighandler_t,
    );
    let hup = if reload_on_hup {
        on_hup as *const () as libc::sighandler_t
    } else {
        on_terminate as *const () as libc::sighandler_t
    };
    install(libc::SIGHUP, hup);
    install(libc::SIGUSR1, on_report as *const () as libc::sighandler_t);
    #[cfg(any(
        target_os = "freebsd",
        target_os = "macos",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    ))]
    install(libc::SIGINFO, on_report as *const () as libc::sighandler_t);
}

/// The signals [`install_all`] takes over.
fn handled() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1] {
            libc::sigaddset(&mut set, sig);
        }
        #[cfg(target_os = "freebsd")]
        libc::sigaddset(&mut set, libc::SIGINFO);
        set
    }
}

/// Block the handled signals; returns the mask to wait with in [`poll`]. Children started
/// by `std::process::Command` get an empty mask, so actions are not affected.
pub fn block_handled() -> libc::sigset_t {
    let set = handled();
    // SAFETY: plain sigprocmask on valid sets.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// poll(2) during which the signals blocked by [`block_handled`] can arrive (EINTR).
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32, wait_mask: &libc::sigset_t) -> libc::c_int {
    let ms = timeout_ms.max(0);
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: fds is a valid slice of pollfd; ts and wait_mask live across the call.
    unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &ts, wait_mask) }
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
