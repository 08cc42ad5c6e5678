//! packet_anomaly: malformed or truncated headers, impossible TCP flag combinations
//! (SYN+FIN, XMAS, NULL, SYN+RST), reserved bits, land attacks, bad checksums, oversize
//! and overlapping IP fragments.
//!
//! The decoder flags most of these ([`vigil_decode::Anomalies`]); this detector adds L4
//! checksum verification (optional) and fragment overlap tracking, and drops truncation
//! caused by the capture's snap length (the capture's fault, not the packet's) unless told
//! otherwise. One alert per (source, destination, set of flags) per cooldown.

use std::net::IpAddr;

use serde_json::json;
use vigil_decode::Anomalies;
use vigil_model::{Alert, Category, Severity};

use crate::config::PacketAnomalyConfig;
use crate::ctx::Pkt;
use crate::emit::{Draft, Emitter, Key};
use crate::table::{Hasher, Table};

/// Flag set by this detector when fragments of one datagram overlap (above the 32 bits of
/// [`Anomalies`], so it never collides with a decoder flag).
const FRAG_OVERLAP_BIT: u64 = 1 << 40;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

#[derive(Clone, Copy)]
struct FragState {
    ranges: [(u32, u32); 8],
    n: u8,
}

pub(crate) struct PacketAnomaly {
    c: PacketAnomalyConfig,
    frags: Table<FragKey, FragState>,
}

fn severity_of(a: Anomalies, overlap: bool) -> Severity {
    let crafted = Anomalies::TCP_SYN_FIN
        | Anomalies::TCP_XMAS
        | Anomalies::TCP_NULL
        | Anomalies::TCP_SYN_RST
        | Anomalies::LAND
        | Anomalies::IP_FRAGMENT_OVERSIZE;
    if overlap || a.intersects(crafted) { Severity::Medium } else { Severity::Low }
}

impl PacketAnomaly {
    pub(crate) fn new(c: &PacketAnomalyConfig, budget: u64, h: &Hasher) -> Self {
        PacketAnomaly { c: c.clone(), frags: Table::with_budget(budget, h) }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        self.frags.mem_bytes()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.frags.evictions()
    }

    fn overlap(&mut self, k: &Pkt) -> bool {
        let (Some(f), Some(src), Some(dst)) = (k.p.fragment(), k.src, k.dst) else { return false };
        let start = f.offset;
        let end = f.offset.saturating_add(f.len);
        let (st, _) = self.frags.get_or_insert_with(FragKey { src, dst, proto: f.protocol, id: f.id }, || FragState {
            ranges: [(0, 0); 8],
            n: 0,
        });
        let n = usize::from(st.n);
        let mut hit = false;
        for &(s, e) in &st.ranges[..n] {
            // Exact duplicates (retransmission, capture duplication) are not overlaps.
            if start < e && s < end && (s, e) != (start, end) {
                hit = true;
            }
        }
        if n < st.ranges.len() && !st.ranges[..n].contains(&(start, end)) {
            st.ranges[n] = (start, end);
            st.n += 1;
        }
        hit
    }

    pub(crate) fn on_packet(&mut self, k: &Pkt, em: &mut Emitter, out: &mut Vec<Alert>) {
        let mut a = k.p.anomalies;
        // Linux cooked captures mark packets the capturing host sent (type 4): with checksum
        // offload their checksums are filled in later by the NIC, so they are not checked.
        let outgoing = k.p.link.sll_packet_type == Some(4);
        let small = k.p.l4_payload().len() + 60 <= self.c.verify_checksums_max_bytes as usize;
        if self.c.verify_checksums && a.is_empty() && !outgoing && small && k.p.l4_checksum_ok() == Some(false) {
            a.insert(Anomalies::L4_CHECKSUM_BAD);
        }
        let snaplen_cut = (k.orig_len as usize) > k.caplen;
        if snaplen_cut && !self.c.report_snaplen_truncation {
            a.remove(Anomalies::TRUNCATED_MASK);
        }
        a.remove(Anomalies::CAPTURE_TRUNCATED);
        let reported = a & (Anomalies::SUSPICIOUS_MASK | Anomalies::MALFORMED_MASK | Anomalies::TRUNCATED_MASK);
        let overlap = k.p.fragment().is_some() && self.overlap(k);
        if reported.is_empty() && !overlap {
            return;
        }
        let extra = u64::from(reported.bits()) | if overlap { FRAG_OVERLAP_BIT } else { 0 };
        let (src, dst) = (k.src, k.dst);
        em.fire(k.at, Key::new(Category::PacketAnomaly, src, dst, extra), out, || {
            let mut names: Vec<&str> = reported.names().collect();
            if overlap {
                names.push("ip_fragment_overlap");
            }
            let between = match (src, dst) {
                (Some(s), Some(d)) => format!("from {s} to {d}"),
                _ => "without a usable IP header".to_owned(),
            };
            Draft::new(format!("packet {between}: {}", names.join(", ")))
                .severity(severity_of(reported, overlap))
                .ports(k.p.src_port(), k.p.dst_port())
                .mac(k.src_mac)
                .ev("anomalies", json!(names))
                .ev("frame_len", k.orig_len)
                .ev("captured_len", k.caplen)
        });
    }
}
