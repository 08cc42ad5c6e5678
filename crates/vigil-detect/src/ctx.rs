//! What every detector gets per packet, and small shared helpers (port sets, windows).

use std::net::IpAddr;

use vigil_decode::{MacAddr, Packet};

use crate::emit::At;

/// One decoded packet with its place in time and in the stream.
pub(crate) struct Pkt<'a> {
    pub at: At,
    pub p: &'a Packet<'a>,
    /// Length on the wire.
    pub orig_len: u32,
    /// Bytes captured.
    pub caplen: usize,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    /// Source MAC on Ethernet-like links (not zero, not multicast).
    pub src_mac: Option<MacAddr>,
}

impl Pkt<'_> {
    pub(crate) fn now(&self) -> i64 {
        self.at.now
    }
}

/// A set of the 65 536 ports, one bit each.
#[derive(Clone)]
pub(crate) struct PortSet(Box<[u64; 1024]>);

impl PortSet {
    pub(crate) fn new(ports: &[u16]) -> Self {
        let mut s = PortSet(Box::new([0; 1024]));
        for &p in ports {
            s.0[usize::from(p >> 6)] |= 1 << (p & 63);
        }
        s
    }

    pub(crate) fn contains(&self, p: u16) -> bool {
        self.0[usize::from(p >> 6)] & (1 << (p & 63)) != 0
    }
}

/// Restarts a fixed window (Snort's "track, count, seconds" semantics: the window opens at
/// the first event after the previous one closed) when `now` is past it, or before its start
/// (the clock was resynchronised backwards). Returns true when it restarted.
pub(crate) fn roll(start: &mut i64, now: i64, window: i64) -> bool {
    if now < *start || now.saturating_sub(*start) >= window {
        *start = now;
        true
    } else {
        false
    }
}

/// Appends `v` to a small inline sample unless present or full.
pub(crate) fn sample_push<T: PartialEq + Copy, const N: usize>(buf: &mut [T; N], len: &mut u8, v: T) {
    let n = usize::from(*len);
    if n < N && !buf[..n].contains(&v) {
        buf[n] = v;
        *len += 1;
    }
}

/// Seconds as a JSON-friendly float.
pub(crate) fn secs(nanos: i64) -> f64 {
    nanos as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_set_and_window() {
        let s = PortSet::new(&[0, 22, 65535, 4444]);
        assert!(s.contains(22) && s.contains(65535) && s.contains(0) && s.contains(4444));
        assert!(!s.contains(23));
        let mut start = 0;
        assert!(!roll(&mut start, 5, 10));
        assert!(roll(&mut start, 10, 10));
        assert_eq!(start, 10);
        assert!(roll(&mut start, 3, 10)); // backwards
        let mut buf = [0u16; 3];
        let mut n = 0;
        for v in [1, 1, 2, 3, 4] {
            sample_push(&mut buf, &mut n, v);
        }
        assert_eq!((buf, n), ([1, 2, 3], 3));
    }
}
