//! A Linux AF_PACKET receive ring (TPACKET_V3, memory-mapped), the one place in vigil
//! that needs `unsafe`.
//!
//! **Owns**: the packet socket, its mmap'd ring of blocks shared with the kernel, the
//! socket options around it (promiscuous membership, fanout groups, kernel statistics),
//! and `poll(2)` on it. Each `unsafe` block is a few lines with a `SAFETY:` comment; the
//! crate denies unsafe code everywhere else. The parsing of what the kernel wrote
//! (frame headers, offsets, lengths) is safe code over a byte slice, bounds-checked, so
//! even a confused kernel cannot make it read outside the ring.
//!
//! **Must not**: interpret packets (that is `vigil-decode`), allocate per packet, or
//! expose raw pointers. It knows nothing of vigil's other types; `vigil-capture` wraps it
//! into a packet source with vigil's errors and link types.
//!
//! **Thread**: a [`Ring`] is `Send` but not `Sync`: one capture thread owns it and calls
//! [`Ring::next_frame`] in a loop. Several rings (one per thread) join one fanout group to
//! spread a busy interface across threads by flow hash.
//!
//! How TPACKET_V3 works, briefly: the kernel fills fixed-size *blocks* with variable-size
//! frames and hands a block to user space by setting `TP_STATUS_USER` in its descriptor
//! (when the block is full or its retire timeout expires). User space reads every frame
//! of the block, then gives it back by writing `TP_STATUS_KERNEL`. Blocks are used in
//! order, so one index walks the ring.

#![cfg(target_os = "linux")]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// `ETH_P_ALL`: every protocol.
const ETH_P_ALL: u16 = 0x0003;
/// Size of `struct tpacket3_hdr`.
const TPACKET3_HDR: usize = 48;
/// Offset of the `sockaddr_ll` that follows the frame header (`TPACKET_ALIGN(48)`).
const SLL_OFFSET: usize = TPACKET3_HDR.next_multiple_of(16);
/// Size of `struct sockaddr_ll`.
const SLL_LEN: usize = 20;
/// `TPACKET3_HDRLEN`: the smallest frame size the kernel accepts.
const TPACKET3_HDRLEN: u32 = (SLL_OFFSET + SLL_LEN) as u32;
/// Offset of `block_status` in `struct tpacket_block_desc`.
const BLOCK_STATUS: usize = 8;
/// Largest block the kernel allocates (it uses page-order allocations; 4 MiB is a safe cap).
pub const MAX_BLOCK_SIZE: u32 = 4 << 20;
/// Most blocks per ring.
pub const MAX_BLOCKS: u32 = 4096;

/// Whether frames include the link-layer header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_RAW`: frames start with the device's link-layer header (Ethernet).
    Raw,
    /// `SOCK_DGRAM`: frames start at the network header; link-layer facts (packet type,
    /// hardware type and address, protocol) are in [`Frame`]. Used for the `any` device.
    Cooked,
}

/// Shape of the ring. The ring takes `block_size * block_count` bytes of locked kernel
/// memory per socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per block: a multiple of the page size (4096), at most [`MAX_BLOCK_SIZE`].
    pub block_size: u32,
    /// Number of blocks, 2 to [`MAX_BLOCKS`].
    pub block_count: u32,
    /// Nominal frame size the kernel checks the geometry with (frames are variable-sized
    /// in TPACKET_V3): a multiple of 16, at least 68, dividing `block_size`.
    pub frame_size: u32,
    /// How long the kernel waits before handing over a partly filled block, in ms. Bounds
    /// the latency of quiet traffic.
    pub block_timeout_ms: u32,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig { block_size: 1 << 20, block_count: 32, frame_size: 2048, block_timeout_ms: 20 }
    }
}

impl RingConfig {
    /// Checks the geometry the kernel would otherwise refuse with a bare `EINVAL`.
    pub fn validate(&self) -> Result<(), String> {
        if self.block_size == 0 || !self.block_size.is_multiple_of(4096) || self.block_size > MAX_BLOCK_SIZE {
            return Err(format!(
                "block size {} must be a multiple of 4096 between 4096 and {MAX_BLOCK_SIZE}",
                self.block_size
            ));
        }
        if !(2..=MAX_BLOCKS).contains(&self.block_count) {
            return Err(format!("block count {} must be between 2 and {MAX_BLOCKS}", self.block_count));
        }
        if self.frame_size < TPACKET3_HDRLEN
            || !self.frame_size.is_multiple_of(16)
            || !self.block_size.is_multiple_of(self.frame_size)
        {
            return Err(format!(
                "frame size {} must be a multiple of 16, at least {TPACKET3_HDRLEN}, and divide the block size",
                self.frame_size
            ));
        }
        if self.block_timeout_ms == 0 || self.block_timeout_ms > 10_000 {
            return Err(format!("block timeout {} ms must be between 1 and 10000", self.block_timeout_ms));
        }
        Ok(())
    }

    /// Bytes of ring memory.
    pub fn ring_bytes(&self) -> usize {
        usize::try_from(u64::from(self.block_size) * u64::from(self.block_count)).unwrap_or(usize::MAX)
    }
}

/// A failed system call: which one, and the OS error (check
/// [`io::Error::raw_os_error`] for `EPERM`).
#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct Error {
    /// The call or socket option, e.g. `"socket(AF_PACKET)"`, `"setsockopt(PACKET_RX_RING)"`.
    pub op: &'static str,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl Error {
    fn last(op: &'static str) -> Self {
        Error { op, source: io::Error::last_os_error() }
    }

    fn invalid(op: &'static str, msg: String) -> Self {
        Error { op, source: io::Error::new(io::ErrorKind::InvalidInput, msg) }
    }

    /// The call failed for lack of privilege (`EPERM` or `EACCES`).
    pub fn is_permission(&self) -> bool {
        matches!(self.source.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
    }
}

/// Kernel counters of one socket since it was opened (the kernel resets them at each
/// read; [`Ring::stats`] keeps the running sums).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets that reached the socket, including those dropped (`tp_packets`).
    pub packets: u64,
    /// Packets dropped because the ring was full (`tp_drops`).
    pub drops: u64,
    /// Times the ring was frozen for lack of a free block (`tp_freeze_q_cnt`).
    pub freeze_q: u64,
}

/// One captured frame, borrowed from the ring until the next [`Ring::next_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Capture time, seconds since the Unix epoch.
    pub sec: u32,
    /// Nanoseconds within `sec`.
    pub nsec: u32,
    /// Length on the wire.
    pub wire_len: u32,
    /// The captured bytes (link-layer header first for [`SocketKind::Raw`]).
    pub data: &'a [u8],
    /// `TP_STATUS_*` bits of the frame.
    pub status: u32,
    /// The VLAN tag the driver stripped, if any (`TP_STATUS_VLAN_VALID`).
    pub vlan_tci: Option<u16>,
    /// The stripped tag's TPID (0x8100 when the kernel did not say).
    pub vlan_tpid: u16,
    /// Interface index the frame was seen on.
    pub ifindex: i32,
    /// ARPHRD_* hardware type of that interface.
    pub hatype: u16,
    /// PACKET_* packet type: 0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing.
    pub pkttype: u8,
    /// Link-layer protocol (EtherType), host byte order.
    pub protocol: u16,
    /// Link-layer source address (first `halen` bytes valid).
    pub addr: [u8; 8],
    /// Length of `addr` in use.
    pub halen: u8,
}

/// `PACKET_OUTGOING`.
pub const PACKET_OUTGOING: u8 = 4;

/// A TPACKET_V3 receive ring on one packet socket.
pub struct Ring {
    fd: OwnedFd,
    map: NonNull<u8>,
    map_len: usize,
    block_size: usize,
    block_count: usize,
    /// Index of the block being read or waited for.
    cur: usize,
    /// Whether user space holds block `cur`.
    held: bool,
    /// Frames left in the held block.
    left: u32,
    /// Offset of the next frame in the held block.
    next_off: usize,
    totals: KernelStats,
}

// SAFETY: the mapping and the socket are owned by this value alone (no aliases are handed
// out beyond borrows of `&mut self`), and nothing in them is tied to the creating thread.
#[allow(unsafe_code)]
unsafe impl Send for Ring {}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("fd", &self.fd.as_raw_fd())
            .field("block_size", &self.block_size)
            .field("block_count", &self.block_count)
            .finish_non_exhaustive()
    }
}

impl Ring {
    /// Opens a packet socket with a receive ring of shape `cfg`, bound to interface
    /// `ifindex` (0 = every interface). Traffic is captured from the bind on.
    pub fn open(ifindex: u32, kind: SocketKind, cfg: &RingConfig) -> Result<Ring, Error> {
        cfg.validate().map_err(|m| Error::invalid("ring configuration", m))?;
        let ty = match kind {
            SocketKind::Raw => libc::SOCK_RAW,
            SocketKind::Cooked => libc::SOCK_DGRAM,
        };
        // Protocol 0: receive nothing until bound, so no packet lands before the ring exists.
        // SAFETY: plain system call with constant arguments.
        #[allow(unsafe_code)]
        let raw = unsafe { libc::socket(libc::AF_PACKET, ty | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(Error::last("socket(AF_PACKET)"));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        #[allow(unsafe_code)]
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let version: libc::c_int = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(fd.as_raw_fd(), libc::PACKET_VERSION, &version, "setsockopt(PACKET_VERSION, TPACKET_V3)")?;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_count,
            tp_frame_size: cfg.frame_size,
            tp_frame_nr: (cfg.block_size / cfg.frame_size) * cfg.block_count,
            tp_retire_blk_tov: cfg.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(fd.as_raw_fd(), libc::PACKET_RX_RING, &req, "setsockopt(PACKET_RX_RING)")?;
        let map_len = cfg.ring_bytes();
        // SAFETY: maps `map_len` bytes of the ring the kernel just allocated for this
        // socket; the result is checked before use and unmapped in Drop.
        #[allow(unsafe_code)]
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::last("mmap(packet ring)"));
        }
        let Some(map) = NonNull::new(ptr.cast::<u8>()) else {
            return Err(Error::invalid("mmap(packet ring)", "mapped at address 0".into()));
        };
        let ring = Ring {
            fd,
            map,
            map_len,
            block_size: cfg.block_size as usize,
            block_count: cfg.block_count as usize,
            cur: 0,
            held: false,
            left: 0,
            next_off: 0,
            totals: KernelStats::default(),
        };
        let sll = sockaddr_ll(ifindex)?;
        // SAFETY: `sll` is a properly initialised sockaddr_ll and its exact size is passed.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                std::ptr::from_ref(&sll).cast::<libc::sockaddr>(),
                socklen::<libc::sockaddr_ll>(),
            )
        };
        if rc < 0 {
            return Err(Error::last("bind(AF_PACKET)"));
        }
        Ok(ring)
    }

    /// Puts interface `ifindex` in promiscuous mode for as long as this socket is open
    /// (the kernel counts memberships, so other users of promiscuous mode are unaffected).
    pub fn set_promiscuous(&self, ifindex: u32) -> Result<(), Error> {
        let mreq = libc::packet_mreq {
            mr_ifindex: libc::c_int::try_from(ifindex)
                .map_err(|_| Error::invalid("PACKET_ADD_MEMBERSHIP", format!("interface index {ifindex}")))?,
            mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(
            self.fd.as_raw_fd(),
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
            "setsockopt(PACKET_ADD_MEMBERSHIP, PROMISC)",
        )
    }

    /// Joins a flow-hash fanout group (`PACKET_FANOUT_HASH` with IP defragmentation, so
    /// every packet of a flow goes to the same socket). `None` asks the kernel for a new
    /// group with a unique id; pass the returned id to the other sockets.
    pub fn join_fanout(&self, group: Option<u16>) -> Result<u16, Error> {
        let flags = libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG;
        let arg: libc::c_int = match group {
            Some(id) => i32::from(id) | ((flags as i32) << 16),
            None => ((flags | libc::PACKET_FANOUT_FLAG_UNIQUEID) as i32) << 16,
        };
        setsockopt(self.fd.as_raw_fd(), libc::PACKET_FANOUT, &arg, "setsockopt(PACKET_FANOUT)")?;
        if let Some(id) = group {
            return Ok(id);
        }
        let mut val: libc::c_int = 0;
        getsockopt(self.fd.as_raw_fd(), libc::PACKET_FANOUT, &mut val, "getsockopt(PACKET_FANOUT)")?;
        Ok((val & 0xffff) as u16)
    }

    /// Running totals of the kernel counters of this socket.
    pub fn stats(&mut self) -> Result<KernelStats, Error> {
        let mut st = libc::tpacket_stats_v3 { tp_packets: 0, tp_drops: 0, tp_freeze_q_cnt: 0 };
        getsockopt(self.fd.as_raw_fd(), libc::PACKET_STATISTICS, &mut st, "getsockopt(PACKET_STATISTICS)")?;
        self.totals.packets = self.totals.packets.saturating_add(u64::from(st.tp_packets));
        self.totals.drops = self.totals.drops.saturating_add(u64::from(st.tp_drops));
        self.totals.freeze_q = self.totals.freeze_q.saturating_add(u64::from(st.tp_freeze_q_cnt));
        Ok(self.totals)
    }

    /// Bytes of ring memory mapped.
    pub fn ring_bytes(&self) -> usize {
        self.map_len
    }

    /// The next frame, waiting up to `timeout` for one; `Ok(None)` when none came (or a
    /// signal interrupted the wait). The frame borrows the ring: its block goes back to the
    /// kernel at the next call.
    pub fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame<'_>>, Error> {
        let mut waited = false;
        loop {
            if self.held {
                if self.left > 0 {
                    self.left -= 1;
                    let off = self.next_off;
                    // The header is parsed once, into plain values, so that the walk's state
                    // can move on before the frame borrows the block.
                    let Some((mut frame, data, next)) = parse_header(self.block(self.cur), off) else {
                        // A frame that does not fit ends the block.
                        self.left = 0;
                        continue;
                    };
                    // `next` 0 marks the last frame; a bad offset ends the block.
                    if next == 0 || off.checked_add(next).is_none_or(|n| n >= self.block_size) {
                        self.left = 0;
                    }
                    self.next_off = off.wrapping_add(next);
                    // `parse_header` checked that `data` lies inside the block.
                    frame.data = self.block(self.cur).get(data).unwrap_or_default();
                    return Ok(Some(frame));
                }
                self.release(self.cur);
                self.held = false;
                self.cur = (self.cur + 1) % self.block_count;
            }
            if self.block_status(self.cur) & libc::TP_STATUS_USER != 0 {
                let block = self.block(self.cur);
                let num = read_u32(block, 12).unwrap_or(0);
                let first = read_u32(block, 16).unwrap_or(0) as usize;
                self.held = true;
                self.left = num;
                self.next_off = first;
                continue;
            }
            if waited {
                return Ok(None);
            }
            waited = true;
            if !self.wait(timeout)? {
                return Ok(None);
            }
        }
    }

    /// Waits for the socket to become readable; `false` on timeout or signal.
    fn wait(&self, timeout: Duration) -> Result<bool, Error> {
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN | libc::POLLERR, revents: 0 };
        // SAFETY: one valid pollfd, count 1.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(Error { op: "poll(packet socket)", source: e });
        }
        Ok(rc > 0)
    }

    fn status_word(&self, index: usize) -> &AtomicU32 {
        debug_assert!(index < self.block_count);
        // SAFETY: `index < block_count`, so the word lies inside the mapping, which lives as
        // long as `self`; blocks start page-aligned, so offset 8 is 4-aligned. The kernel
        // and we only ever access this word atomically.
        #[allow(unsafe_code)]
        unsafe {
            AtomicU32::from_ptr(self.map.as_ptr().add(index * self.block_size + BLOCK_STATUS).cast::<u32>())
        }
    }

    fn block_status(&self, index: usize) -> u32 {
        // Acquire: everything the kernel wrote into the block before handing it over is visible.
        self.status_word(index).load(Ordering::Acquire)
    }

    fn release(&self, index: usize) {
        // Release: our reads of the block happen before the kernel may overwrite it.
        self.status_word(index).store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }

    /// The bytes of block `index`. Only called while user space holds that block.
    fn block(&self, index: usize) -> &[u8] {
        debug_assert!(index < self.block_count);
        // SAFETY: the block lies inside the mapping (index < block_count), which outlives
        // `&self`. User space owns it (TP_STATUS_USER seen with Acquire) until `release`,
        // which takes `&self` from `next_frame(&mut self)` only after every borrow handed
        // out from the previous call has ended; the kernel does not write an owned block.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(index * self.block_size), self.block_size)
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in `open`; no borrow of it can outlive
        // `self`. The socket closes after (OwnedFd).
        #[allow(unsafe_code)]
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

/// Parses the frame at `off` in `block`: the frame and the offset of the next one
/// (`tp_next_offset`). `None` when the header or the data would lie outside the block.
#[cfg(test)]
fn parse_frame(block: &[u8], off: usize) -> Option<(Frame<'_>, usize)> {
    let (mut frame, data, next) = parse_header(block, off)?;
    frame.data = block.get(data)?;
    Some((frame, next))
}

/// Parses the header of the frame at `off` in `block`: the frame without its data, where
/// its data lies in `block` (checked to be inside it), and the offset of the next frame
/// (`tp_next_offset`). `None` when the header or the data would lie outside the block.
fn parse_header(block: &[u8], off: usize) -> Option<(Frame<'static>, std::ops::Range<usize>, usize)> {
    let hdr = block.get(off..off.checked_add(SLL_OFFSET + SLL_LEN)?)?;
    let next = read_u32(hdr, 0)? as usize;
    let sec = read_u32(hdr, 4)?;
    let nsec = read_u32(hdr, 8)?;
    let snaplen = read_u32(hdr, 12)? as usize;
    let wire_len = read_u32(hdr, 16)?;
    let status = read_u32(hdr, 20)?;
    let mac = usize::from(read_u16(hdr, 24)?);
    let vlan_tci_raw = read_u32(hdr, 32)?;
    let vlan_tpid_raw = read_u16(hdr, 36)?;
    let sll = &hdr[SLL_OFFSET..];
    let protocol = u16::from_be_bytes([sll[2], sll[3]]);
    let ifindex = i32::from_ne_bytes([sll[4], sll[5], sll[6], sll[7]]);
    let hatype = u16::from_ne_bytes([sll[8], sll[9]]);
    let pkttype = sll[10];
    let halen = sll[11].min(8);
    let mut addr = [0u8; 8];
    addr.copy_from_slice(&sll[12..20]);
    let start = off.checked_add(mac)?;
    let end = start.checked_add(snaplen)?;
    if end > block.len() {
        return None;
    }
    let vlan_tci = (status & libc::TP_STATUS_VLAN_VALID != 0).then_some((vlan_tci_raw & 0xffff) as u16);
    let vlan_tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 { vlan_tpid_raw } else { 0x8100 };
    let frame = Frame {
        sec,
        nsec,
        wire_len,
        data: &[],
        status,
        vlan_tci,
        vlan_tpid,
        ifindex,
        hatype,
        pkttype,
        protocol,
        addr,
        halen,
    };
    Some((frame, start..end, next))
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

fn sockaddr_ll(ifindex: u32) -> Result<libc::sockaddr_ll, Error> {
    Ok(libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: ETH_P_ALL.to_be(),
        sll_ifindex: libc::c_int::try_from(ifindex)
            .map_err(|_| Error::invalid("bind(AF_PACKET)", format!("interface index {ifindex}")))?,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    })
}

fn setsockopt<T>(fd: RawFd, name: libc::c_int, val: &T, op: &'static str) -> Result<(), Error> {
    // SAFETY: `val` points to a live, initialised T and its exact size is passed.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(fd, libc::SOL_PACKET, name, std::ptr::from_ref(val).cast::<libc::c_void>(), socklen::<T>())
    };
    if rc < 0 { Err(Error::last(op)) } else { Ok(()) }
}

fn getsockopt<T>(fd: RawFd, name: libc::c_int, val: &mut T, op: &'static str) -> Result<(), Error> {
    let mut len = socklen::<T>();
    // SAFETY: `val` is a live T the kernel may write at most `len` (= its size) bytes into.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getsockopt(fd, libc::SOL_PACKET, name, std::ptr::from_mut(val).cast::<libc::c_void>(), &mut len)
    };
    if rc < 0 { Err(Error::last(op)) } else { Ok(()) }
}

/// The index of interface `name` in the current network namespace.
pub fn interface_index(name: &str) -> Result<u32, Error> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| Error::invalid("if_nametoindex", format!("interface name {name:?} contains a NUL byte")))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    #[allow(unsafe_code)]
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 { Err(Error::last("if_nametoindex")) } else { Ok(idx) }
}

#[cfg(test)]
mod tests;
