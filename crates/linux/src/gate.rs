//! The steering gate: a tiny BPF classifier (cls_bpf, direct action) in front of the
//! redirect filter on the synthetic NIC's egress. It reads one value from a BPF array map:
//! 1 lets packets on to the redirect (to the VF), 0 sends them straight out of the
//! synthetic NIC. Closing the gate is a map write, which takes no RTNL lock, so when a VF
//! vanishes, traffic is back on the synthetic NIC at once, even while the kernel still
//! holds RTNL to unregister the VF (a tc filter change has to wait for that). The filters
//! are then removed as usual.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The map (one u32) and the program reading it, both owned here.
#[derive(Debug)]
pub struct Gate {
    map: OwnedFd,
    prog: OwnedFd,
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
/// TC_ACT_UNSPEC: go on to the next filter (the redirect).
const TC_ACT_UNSPEC: i32 = -1;
/// TC_ACT_OK: done, the packet leaves through this device.
const TC_ACT_OK: i32 = 0;

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Clone, Copy)]
#[repr(C)]
struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high nibble
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// The gate program for map `map_fd`:
/// `v = map[0]; return (v && *v) ? TC_ACT_UNSPEC : TC_ACT_OK`.
fn program(map_fd: RawFd) -> [Insn; 13] {
    [
        insn(0x62, 10, 0, -4, 0),           // *(u32 *)(r10 - 4) = 0      key
        insn(0xbf, 2, 10, 0, 0),            // r2 = r10
        insn(0x07, 2, 0, 0, -4),            // r2 += -4
        insn(0x18, 1, 1, 0, map_fd),        // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
        insn(0x00, 0, 0, 0, 0),             //   (second half of ld_imm64)
        insn(0x85, 0, 0, 0, 1),             // call bpf_map_lookup_elem
        insn(0x15, 0, 0, 4, 0),             // if r0 == 0 goto ok
        insn(0x61, 1, 0, 0, 0),             // r1 = *(u32 *)(r0 + 0)
        insn(0x15, 1, 0, 2, 0),             // if r1 == 0 goto ok
        insn(0xb7, 0, 0, 0, TC_ACT_UNSPEC), // r0 = TC_ACT_UNSPEC
        insn(0x95, 0, 0, 0, 0),             // exit
        insn(0xb7, 0, 0, 0, TC_ACT_OK),     // ok: r0 = TC_ACT_OK
        insn(0x95, 0, 0, 0, 0),             // exit
    ]
}

/// bpf(2) with the attribute block `attr` (nix has no wrapper for it).
///
/// # Safety
///
/// Every address stored in `attr` must point at memory that is valid for what `cmd` does
/// with it (read or, for a lookup, written) at the size the command implies, until the call
/// returns; the kernel follows those addresses.
unsafe fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live 128-byte block and we pass its size, so the kernel reads and
    // writes only inside it; the addresses in it are valid by this function's contract.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn put_u32(attr: &mut [u8; 128], at: usize, v: u32) {
    attr[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(attr: &mut [u8; 128], at: usize, v: u64) {
    attr[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

impl Gate {
    /// Create the map (gate open) and load the program. Needs CAP_BPF/CAP_SYS_ADMIN (root).
    pub fn new() -> io::Result<Gate> {
        let mut attr = [0u8; 128];
        put_u32(&mut attr, 0, BPF_MAP_TYPE_ARRAY);
        put_u32(&mut attr, 4, 4); // key_size
        put_u32(&mut attr, 8, 4); // value_size
        put_u32(&mut attr, 12, 1); // max_entries
                                   // SAFETY: a map's attributes are integers only: no address in `attr`.
        let fd = unsafe { bpf(BPF_MAP_CREATE, &mut attr) }?;
        // SAFETY: BPF_MAP_CREATE just returned this descriptor: open, owned by nothing else.
        let map = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };

        let insns = program(map.as_raw_fd());
        let license = b"GPL\0";
        let mut attr = [0u8; 128];
        put_u32(&mut attr, 0, BPF_PROG_TYPE_SCHED_CLS);
        put_u32(&mut attr, 4, insns.len() as u32);
        put_u64(&mut attr, 8, insns.as_ptr() as u64);
        put_u64(&mut attr, 16, license.as_ptr() as u64);
        attr[48..58].copy_from_slice(b"hvnet_gate"); // prog_name
                                                     // SAFETY: the two addresses are `insns` (insn_cnt instructions of 8 bytes, as given)
                                                     // and `license` (NUL-terminated), both alive until the call returns; the kernel copies
                                                     // them and keeps no pointer.
        let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr) }?;
        // SAFETY: BPF_PROG_LOAD just returned this descriptor: open, owned by nothing else.
        let prog = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        let gate = Gate { map, prog };
        gate.set(true)?;
        Ok(gate)
    }

    /// Open (packets go on to the redirect) or close (straight out) the gate.
    pub fn set(&self, open: bool) -> io::Result<()> {
        let key = 0u32;
        let value = u32::from(open);
        let mut attr = [0u8; 128];
        put_u32(&mut attr, 0, self.map.as_raw_fd() as u32);
        put_u64(&mut attr, 8, &key as *const u32 as u64);
        put_u64(&mut attr, 16, &value as *const u32 as u64);
        // SAFETY: the addresses are `key` and `value`, live u32 locals: the map's key and
        // value size (4 bytes), which the kernel reads.
        unsafe { bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }.map(drop)
    }

    /// Whether the gate is open, as the kernel's map holds it.
    pub fn is_open(&self) -> io::Result<bool> {
        let key = 0u32;
        let mut value = 0u32;
        let mut attr = [0u8; 128];
        put_u32(&mut attr, 0, self.map.as_raw_fd() as u32);
        put_u64(&mut attr, 8, &key as *const u32 as u64);
        put_u64(&mut attr, 16, &mut value as *mut u32 as u64);
        // SAFETY: the addresses are `key` (read) and `value` (written), live u32 locals: the
        // map's key and value size (4 bytes).
        unsafe { bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) }?;
        Ok(value != 0)
    }

    /// The program, for attaching with cls_bpf.
    pub fn prog_fd(&self) -> RawFd {
        self.prog.as_raw_fd()
    }
}
