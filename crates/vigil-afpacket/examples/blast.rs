//! A packet blaster for the live-capture benchmark (BENCHMARKS.md, "Live capture"):
//! sends the frames of a classic pcap file, in order and over and over, out of one
//! interface as fast as it can or at a target rate.
//!
//! ```text
//! blast IFACE FILE.pcap COUNT [PPS] [THREADS]
//! ```
//!
//! COUNT frames in all; PPS 0 or absent = as fast as possible; THREADS senders (default
//! 1), each with its own socket and an equal share of COUNT and PPS. Prints the frames
//! sent, the wall time and the rate achieved. Only for interfaces in a network namespace
//! the benchmark made (a veth pair): it puts frames on the wire exactly as they are in
//! the file.
//!
//! Why our own, rather than a tool or a crate: the kernel's `pktgen` is not available
//! here (no module), and `tcpreplay` sends one frame per system call through the qdisc,
//! which tops out at 170–260 k frames/s on the benchmark machine, far below the ≥ 1 M
//! frames/s the capture side must be shown to take. No maintained Rust crate drives an
//! AF_PACKET socket for sending in batches (`pnet` sends one frame per call and is barely
//! maintained; the few TX-ring crates are abandoned), and the job is small: one packet
//! socket with `PACKET_QDISC_BYPASS` (the frames go straight to the driver, no queueing
//! discipline), frames preloaded in memory, and `sendmmsg(2)` handing the kernel 256 of
//! them per system call. On a veth pair the receiving side runs in the sender's system
//! call, so the sender's CPU time includes the kernel's receive path and the copy into the
//! capture ring; the capture process's own cost is measured separately.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[cfg(target_os = "linux")]
fn main() {
    if let Err(e) = linux::run() {
        eprintln!("blast: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("blast: Linux only (AF_PACKET)");
    std::process::exit(1);
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    /// Frames per `sendmmsg` call.
    const BATCH: usize = 256;

    pub fn run() -> Result<(), String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.len() < 3 {
            return Err("usage: blast IFACE FILE.pcap COUNT [PPS] [THREADS]".into());
        }
        let ifindex = vigil_afpacket::interface_index(&args[0]).map_err(|e| format!("interface {}: {e}", args[0]))?;
        let frames = load_pcap(&args[1])?;
        let count: u64 = args[2].parse().map_err(|_| format!("COUNT {:?} is not a number", args[2]))?;
        let pps: u64 = match args.get(3) {
            Some(s) => s.parse().map_err(|_| format!("PPS {s:?} is not a number"))?,
            None => 0,
        };
        let threads: u64 = match args.get(4) {
            Some(s) => s.parse().map_err(|_| format!("THREADS {s:?} is not a number"))?,
            None => 1,
        };
        if threads == 0 || threads > 64 {
            return Err(format!("THREADS {threads} must be between 1 and 64"));
        }
        let frames = std::sync::Arc::new(frames);
        let t0 = Instant::now();
        let mut handles = Vec::new();
        for t in 0..threads {
            let frames = frames.clone();
            let share = count / threads + u64::from(t < count % threads);
            let rate = pps / threads;
            // Each thread starts at a different place in the file, so their mixes differ.
            let start = (frames.len() as u64 * t / threads) as usize;
            handles.push(std::thread::spawn(move || send(ifindex, &frames, start, share, rate)));
        }
        let mut sent = 0u64;
        let mut bytes = 0u64;
        for h in handles {
            let (n, b) = h.join().map_err(|_| "a sender thread panicked".to_string())??;
            sent += n;
            bytes += b;
        }
        let secs = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds();
        // On a veth pair the receiving side (and any capture ring's copy) runs in the
        // sender's system calls, so this CPU time includes the kernel's receive path.
        println!(
            "sent {sent} frames ({bytes} bytes) in {secs:.3} s: {:.0} frames/s, {:.1} Mbit/s; \
             sender CPU {cpu:.2} s = {:.0} ns/frame (kernel receive path included)",
            sent as f64 / secs,
            bytes as f64 * 8.0 / secs / 1e6,
            cpu * 1e9 / sent.max(1) as f64
        );
        Ok(())
    }

    /// The frames of a classic pcap file (either byte order, µs or ns timestamps).
    fn load_pcap(path: &str) -> Result<Vec<Vec<u8>>, String> {
        let data = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let magic = data.get(..4).ok_or_else(|| format!("{path}: shorter than a pcap header"))?;
        let le = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
            [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
            _ => return Err(format!("{path}: not a classic pcap file (pcapng is not supported here)")),
        };
        let u32_at = |at: usize| -> Option<u32> {
            let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
            Some(if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
        };
        if u32_at(20) != Some(1) {
            return Err(format!("{path}: link type is not Ethernet"));
        }
        let mut frames = Vec::new();
        let mut off = 24;
        while off + 16 <= data.len() {
            let caplen = u32_at(off + 8).unwrap_or(0) as usize;
            let body = data.get(off + 16..off + 16 + caplen).ok_or_else(|| format!("{path}: truncated record"))?;
            if (14..=9216).contains(&caplen) {
                frames.push(body.to_vec());
            }
            off += 16 + caplen;
        }
        if frames.is_empty() {
            return Err(format!("{path}: no Ethernet frames"));
        }
        Ok(frames)
    }

    /// User plus system CPU time of this process so far, in seconds.
    fn cpu_seconds() -> f64 {
        // SAFETY: `rusage` is plain data for which all-zero is a valid value.
        #[allow(unsafe_code)]
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a live rusage the kernel fills in.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        if rc < 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }

    fn os_err(op: &str) -> String {
        format!("{op}: {}", std::io::Error::last_os_error())
    }

    /// Sends `count` frames from `frames` (cycling, starting at `start`) at about `pps`
    /// frames/s (0: no limit). Returns frames and bytes sent.
    fn send(ifindex: u32, frames: &[Vec<u8>], start: usize, count: u64, pps: u64) -> Result<(u64, u64), String> {
        // Protocol 0: this socket receives nothing, it only sends.
        // SAFETY: plain system call with constant arguments.
        #[allow(unsafe_code)]
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os_err("socket(AF_PACKET)"));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        #[allow(unsafe_code)]
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        // SAFETY: `one` is a live c_int and its exact size is passed.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                std::ptr::from_ref(&one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(os_err("setsockopt(PACKET_QDISC_BYPASS)"));
        }
        let sll = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as libc::c_ushort,
            sll_protocol: 0,
            sll_ifindex: ifindex as libc::c_int,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: `sll` is an initialised sockaddr_ll and its exact size is passed.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&sll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(os_err("bind(AF_PACKET)"));
        }

        // The iovecs point into `frames`, which outlives every call below; the kernel only
        // reads through them.
        let mut iov: Vec<libc::iovec> =
            frames.iter().map(|f| libc::iovec { iov_base: f.as_ptr().cast_mut().cast(), iov_len: f.len() }).collect();
        // SAFETY: `mmsghdr` is plain data for which all-zero is a valid value.
        #[allow(unsafe_code)]
        let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
        let t0 = Instant::now();
        let mut next = start % frames.len();
        let (mut sent, mut bytes) = (0u64, 0u64);
        while sent < count {
            if pps > 0 {
                // Pace in whole batches: never ahead of `pps` by more than one batch.
                let due = Duration::from_secs_f64(sent as f64 / pps as f64);
                let now = t0.elapsed();
                if due > now {
                    let wait = due - now;
                    if wait > Duration::from_micros(200) {
                        std::thread::sleep(wait);
                    } else {
                        std::hint::spin_loop();
                        continue;
                    }
                }
            }
            let n = usize::try_from((count - sent).min(BATCH as u64)).unwrap_or(BATCH);
            for m in msgs.iter_mut().take(n) {
                m.msg_hdr.msg_iov = &mut iov[next];
                m.msg_hdr.msg_iovlen = 1;
                m.msg_len = 0;
                next = (next + 1) % frames.len();
            }
            // SAFETY: the first `n` headers are initialised and each points at one live iovec
            // over a live frame; the kernel writes only `msg_len` of each header.
            #[allow(unsafe_code)]
            let rc = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), n as libc::c_uint, 0) };
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    // The driver's queue is full: go round again.
                    Some(libc::ENOBUFS) | Some(libc::EAGAIN) | Some(libc::EINTR) => {
                        // Rewind the frames not sent so the sequence stays in order.
                        next = (next + frames.len() - n % frames.len()) % frames.len();
                        continue;
                    }
                    _ => return Err(format!("sendmmsg: {e}")),
                }
            }
            let done = rc as usize;
            for m in &msgs[..done] {
                bytes += u64::from(m.msg_len);
            }
            sent += done as u64;
            if done < n {
                next = (next + frames.len() - (n - done) % frames.len()) % frames.len();
            }
        }
        Ok((sent, bytes))
    }
}
