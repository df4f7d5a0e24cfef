//! FreeBSD-only system glue: sysctl(3) by name. Compiled only on FreeBSD.
//! (devd's socket client is in `devd_socket`, usable on any Unix.)

use std::ffi::CString;
use std::io;

fn cname(name: &str) -> io::Result<CString> {
    CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in sysctl name"))
}

/// Read a sysctl as raw bytes via sysctlbyname(3).
pub fn sysctl_bytes(name: &str) -> io::Result<Vec<u8>> {
    let c = cname(name)?;
    let mut len: libc::size_t = 0;
    // SAFETY: `c` is a NUL-terminated name alive for the call; a null old pointer makes
    // sysctlbyname only store the value's size in `len`, a live local; no new value.
    // (nix has no sysctl wrapper.)
    let r = unsafe {
        libc::sysctlbyname(
            c.as_ptr(),
            std::ptr::null_mut(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // The value may grow between the two calls; leave room.
    let mut buf = vec![0u8; len + 64];
    let mut len2: libc::size_t = buf.len();
    // SAFETY: sysctlbyname writes at most `len2` bytes at the old pointer, and `buf` has
    // `len2` writable bytes; it stores the length written in `len2`, a live local.
    let r = unsafe {
        libc::sysctlbyname(
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            &mut len2,
            std::ptr::null(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(len2);
    Ok(buf)
}

/// A string sysctl (trailing NUL removed).
pub fn sysctl_string(name: &str) -> io::Result<String> {
    let mut b = sysctl_bytes(name)?;
    while b.last() == Some(&0) {
        b.pop();
    }
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// An int sysctl.
pub fn sysctl_int(name: &str) -> io::Result<i32> {
    let b = sysctl_bytes(name)?;
    let arr: [u8; 4] = b
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: not an int")))?;
    Ok(i32::from_ne_bytes(arr))
}

/// The running kernel's major version (`kern.osreldate` / 100000).
pub fn freebsd_major() -> io::Result<u32> {
    Ok((sysctl_int("kern.osreldate")? / 100_000) as u32)
}
