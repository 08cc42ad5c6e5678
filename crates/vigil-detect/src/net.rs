//! Address helpers: internal networks, multicast tests, a compact flow key.

use std::net::IpAddr;

use ipnet::IpNet;

/// The internal networks as (address, mask) pairs, checked linearly (lists are short; the
/// common case is a handful of masked compares, no allocation).
#[derive(Debug, Clone)]
pub(crate) struct Networks {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl Networks {
    pub(crate) fn new(nets: &[IpNet]) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for n in nets {
            match n.trunc() {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.netmask()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.netmask()))),
            }
        }
        Networks { v4, v6 }
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|&(net, mask)| a & mask == net)
            }
        }
    }
}

/// Multicast, broadcast or unspecified: never a unicast peer.
pub(crate) fn is_group(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified(),
    }
}

/// Shannon entropy of `bytes` in bits per byte (0 for empty input).
pub(crate) fn entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u16; 256];
    for &b in bytes {
        let c = &mut counts[usize::from(b.to_ascii_lowercase())];
        *c = c.saturating_add(1);
    }
    let n = bytes.len() as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / n).map(|p| -p * p.log2()).sum()
}

/// A fast, fixed (seedless) 64-bit FNV-1a hash for values that end up in output (alert
/// ids, name fingerprints): unlike the tables' keyed hasher it must not vary between runs.
pub(crate) fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// FNV-1a over the lowercase form of `data`.
pub(crate) fn fnv1a_lower(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A 512-bit linear counter: estimates distinct values (sources of a flood) in 64 bytes,
/// accurate to a few percent up to about a thousand and saturating near 3 000.
#[derive(Clone, Copy, Default)]
pub(crate) struct LinearCounter {
    bits: [u64; 8],
}

impl LinearCounter {
    pub(crate) fn insert(&mut self, hash: u64) {
        let bit = (hash >> 55) as usize; // top 9 bits: 0..512
        self.bits[bit / 64] |= 1 << (bit % 64);
    }

    pub(crate) fn estimate(&self) -> u32 {
        let set: u32 = self.bits.iter().map(|w| w.count_ones()).sum();
        let zero = 512 - set;
        if zero == 0 {
            return 3_200;
        }
        let m = 512.0f64;
        (-m * (f64::from(zero) / m).ln()).round() as u32
    }
}

/// Mixes an address into 64 bits with a fixed function (for the linear counter: the value
/// only feeds a count, never output order).
pub(crate) fn ip_hash(ip: IpAddr) -> u64 {
    let v = match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let mut x = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
    // splitmix64 finaliser
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The registrable part of a DNS name (its "base domain"), as a label count from the right:
/// two labels (`example.com`), or three under a two-letter country code whose second level
/// is a generic one (`example.co.uk`, `example.com.au`).
pub(crate) fn base_label_count(labels: &[&[u8]]) -> usize {
    let n = labels.len();
    if n >= 3 {
        let tld = labels[n - 1];
        let sld = labels[n - 2];
        let generic = [&b"co"[..], b"com", b"net", b"org", b"gov", b"edu", b"ac", b"or", b"ne", b"go"];
        if tld.len() == 2 && generic.iter().any(|g| sld.eq_ignore_ascii_case(g)) {
            return 3;
        }
    }
    n.min(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_and_group() {
        let n = Networks::new(&crate::config::default_internal_networks());
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(n.contains("192.168.1.1".parse().unwrap()));
        assert!(n.contains("fd00::1".parse().unwrap()));
        assert!(!n.contains("8.8.8.8".parse().unwrap()));
        assert!(!n.contains("2001:db8::1".parse().unwrap()));
        assert!(is_group("224.0.0.251".parse().unwrap()));
        assert!(is_group("255.255.255.255".parse().unwrap()));
        assert!(!is_group("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn entropy_orders_text_kinds() {
        assert_eq!(entropy(b""), 0.0);
        assert_eq!(entropy(b"aaaa"), 0.0);
        assert!((entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert!(entropy(b"laczi1dwmfbaywb0fm5xhkrgz0heotzq") > 3.5);
        assert!(entropy(b"googleusercontent") < 3.5);
    }

    #[test]
    fn linear_counter_estimates() {
        let mut c = LinearCounter::default();
        for i in 0..100u32 {
            c.insert(ip_hash(IpAddr::from(i.to_be_bytes())));
        }
        let e = c.estimate();
        assert!((85..=115).contains(&e), "{e}");
        let mut one = LinearCounter::default();
        for _ in 0..1000 {
            one.insert(ip_hash("10.0.0.1".parse().unwrap()));
        }
        assert_eq!(one.estimate(), 1);
    }

    #[test]
    fn base_domains() {
        let l = |s: &'static str| s.split('.').map(str::as_bytes).collect::<Vec<_>>();
        assert_eq!(base_label_count(&l("a.b.example.com")), 2);
        assert_eq!(base_label_count(&l("x.example.co.uk")), 3);
        assert_eq!(base_label_count(&l("com")), 1);
    }
}
