//! dns_tunnel, dns_spoof, and data_exfiltration over DNS.
//!
//! **dns_tunnel**: a query is suspicious when its name is longer than `max_name_len`, or a
//! label left of the base domain is at least `min_label_len` long with Shannon entropy of
//! at least `entropy_bits`. Suspicious queries are counted per (client, base domain) and
//! fire at `min_queries` in the window. A resolver sending thousands of ordinary queries
//! (short, word-like names across many domains) never accumulates suspicious ones; reverse
//! lookups (`.arpa`) and mDNS/LLMNR are ignored.
//!
//! **data_exfiltration over DNS**: the bytes of those suspicious labels, per client and
//! base domain, reaching `data_exfiltration.dns_bytes` in the same window.
//!
//! **dns_spoof**, per outstanding query (client, client port, server, id, name):
//! - conflicting answers: two responses with different answer sets → severity high;
//! - an identical second response to a query sent once → severity low (decided: a weaker
//!   signal; a forger who guessed right and the real server both answered, or a
//!   middlebox duplicated the packet). Retransmitted queries make duplicates legitimate;
//! - an answer matching no outstanding query, sent to a client that queried within the
//!   timeout (so we do see its queries) → severity medium.

use std::net::IpAddr;

use serde_json::json;
use vigil_decode::Transport;
use vigil_decode::dns::{self, DnsMessage, RData};
use vigil_model::{Alert, Category, Severity};

use crate::config::{DnsSpoofConfig, DnsTunnelConfig, nanos};
use crate::ctx::{Pkt, roll, secs};
use crate::emit::{Draft, Emitter, Key};
use crate::net::{base_label_count, entropy, fnv1a, fnv1a_lower};
use crate::table::{Hasher, Table};

/// Most labels looked at in one name (a 255-byte name has at most 127).
const MAX_LABELS: usize = 128;

#[derive(Clone, Copy)]
struct TunState {
    win_start: i64,
    suspicious: u32,
    bytes: u64,
    max_entropy: f64,
    max_len: u32,
    fired_tunnel: bool,
    fired_exfil: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct QKey {
    client: IpAddr,
    port: u16,
    server: IpAddr,
    id: u16,
    name: u64,
}

#[derive(Clone, Copy)]
struct QState {
    queries: u8,
    answers: u8,
    answer: u64,
}

pub(crate) struct Dns {
    tunnel: Option<DnsTunnelConfig>,
    tunnel_window: i64,
    exfil_bytes: Option<u64>,
    spoof: Option<DnsSpoofConfig>,
    timeout: i64,
    tun: Table<(IpAddr, u64), TunState>,
    queries: Table<QKey, QState>,
    clients: Table<IpAddr, i64>,
}

/// The labels of a name, left to right, in a fixed array (no allocation).
fn labels_of(name: &dns::DnsName) -> ([&[u8]; MAX_LABELS], usize) {
    let mut out: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
    let mut n = 0;
    for l in name.labels() {
        if n == MAX_LABELS {
            break;
        }
        out[n] = l;
        n += 1;
    }
    (out, n)
}

fn join_lower(labels: &[&[u8]]) -> String {
    let mut s = String::new();
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        for &b in *l {
            if b.is_ascii_graphic() && b != b'.' {
                s.push(char::from(b.to_ascii_lowercase()));
            } else {
                s.push('?');
            }
        }
    }
    s
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// An order-independent fingerprint of a response: rcode and the answer records (type and
/// data, not TTL).
fn answer_fingerprint(m: &DnsMessage) -> u64 {
    let mut acc = u64::from(m.rcode()).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (m.answers.len() as u64) << 48;
    for r in &m.answers {
        let h = match &r.data {
            RData::A(a) => fnv1a(&a.octets()),
            RData::Aaaa(a) => fnv1a(&a.octets()),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => fnv1a_lower(n.wire()),
            RData::Mx { preference, exchange } => fnv1a_lower(exchange.wire()) ^ u64::from(*preference),
            RData::Txt { data, .. } => fnv1a(data),
            RData::Other { len } => u64::from(*len).wrapping_mul(0xff51_afd7_ed55_8ccd),
        };
        acc = acc.wrapping_add(h ^ u64::from(r.rtype).rotate_left(40));
    }
    acc
}

fn answers_text(m: &DnsMessage) -> Vec<String> {
    m.answers
        .iter()
        .take(8)
        .map(|r| match &r.data {
            RData::A(a) => format!("A {a}"),
            RData::Aaaa(a) => format!("AAAA {a}"),
            RData::Cname(n) => format!("CNAME {}", truncate(n.to_lowercase_string(), 100)),
            RData::Ns(n) => format!("NS {}", truncate(n.to_lowercase_string(), 100)),
            RData::Ptr(n) => format!("PTR {}", truncate(n.to_lowercase_string(), 100)),
            RData::Mx { exchange, .. } => format!("MX {}", truncate(exchange.to_lowercase_string(), 100)),
            RData::Txt { data, .. } => format!("TXT ({} bytes)", data.len()),
            RData::Other { len } => format!("type {} ({len} bytes)", r.rtype),
        })
        .collect()
}

/// The DNS message in a UDP or TCP payload on port 53.
pub(crate) fn dns_message(k: &Pkt) -> Option<(DnsMessage, u16, u16)> {
    match &k.p.transport {
        Transport::Udp(u) if (u.dst_port == 53 || u.src_port == 53) && !u.payload.is_empty() => {
            dns::parse(u.payload).ok().map(|m| (m, u.src_port, u.dst_port))
        }
        Transport::Tcp(t) if (t.dst_port == 53 || t.src_port == 53) && t.payload.len() > 2 => {
            dns::parse_tcp(t.payload).ok().map(|m| (m, t.src_port, t.dst_port))
        }
        _ => None,
    }
}

impl Dns {
    pub(crate) fn new(
        tunnel: Option<&DnsTunnelConfig>,
        exfil_bytes: Option<u64>,
        spoof: Option<&DnsSpoofConfig>,
        budget: u64,
        h: &Hasher,
    ) -> Self {
        let tunnel_window = tunnel.map_or(nanos(60.0), |t| nanos(t.window_secs));
        Dns {
            tunnel: tunnel.cloned(),
            tunnel_window,
            exfil_bytes,
            spoof: spoof.cloned(),
            timeout: spoof.map_or(nanos(10.0), |s| nanos(s.query_timeout_secs)),
            tun: Table::with_budget(budget / 4, h),
            queries: Table::with_budget(budget / 2, h),
            clients: Table::with_budget(budget / 4, h),
        }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        self.tun.mem_bytes() + self.queries.mem_bytes() + self.clients.mem_bytes()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.tun.evictions() + self.queries.evictions() + self.clients.evictions()
    }

    pub(crate) fn on_packet(&mut self, k: &Pkt, em: &mut Emitter, out: &mut Vec<Alert>) {
        let (Some(src), Some(dst)) = (k.src, k.dst) else { return };
        let Some((m, sport, dport)) = dns_message(k) else { return };
        if m.header.flags.opcode() != 0 {
            return;
        }
        let Some(q) = m.question() else { return };
        let name_hash = fnv1a_lower(q.name.wire());
        let now = k.now();
        if !m.is_response() {
            if self.spoof.is_some() {
                let (st, _) = self.queries.get_or_insert_with(
                    QKey { client: src, port: sport, server: dst, id: m.id(), name: name_hash },
                    || QState { queries: 0, answers: 0, answer: 0 },
                );
                st.queries = st.queries.saturating_add(1);
                let (t, _) = self.clients.get_or_insert_with(src, || now);
                *t = now;
            }
            if self.tunnel.is_some() || self.exfil_bytes.is_some() {
                self.tunnel_query(k, src, dst, &q.name, em, out);
            }
        } else if let Some(cfg) = &self.spoof {
            let (report_dup, report_unmatched) = (cfg.report_identical_duplicates, cfg.report_unmatched);
            let key = QKey { client: dst, port: dport, server: src, id: m.id(), name: name_hash };
            let fp = answer_fingerprint(&m);
            let kind = match self.queries.get_mut(&key) {
                Some(st) => {
                    st.answers = st.answers.saturating_add(1);
                    if st.answers == 1 {
                        st.answer = fp;
                        None
                    } else if st.answer != fp {
                        Some(("conflicting_answers", Severity::High, 1))
                    } else if st.queries <= 1 && report_dup {
                        Some(("identical_duplicate", Severity::Low, 2))
                    } else {
                        None
                    }
                }
                None => {
                    let active =
                        self.clients.peek(&dst).is_some_and(|&t| now >= t && now.saturating_sub(t) <= self.timeout);
                    (report_unmatched && active).then_some(("unmatched_answer", Severity::Medium, 3))
                }
            };
            if let Some((kind, severity, tag)) = kind {
                let id = m.id();
                em.fire(k.at, Key::new(Category::DnsSpoof, Some(src), Some(dst), name_hash ^ tag), out, || {
                    let name = truncate(q.name.to_lowercase_string(), 120);
                    let what = match kind {
                        "conflicting_answers" => "a conflicting second answer",
                        "identical_duplicate" => "a duplicate answer",
                        _ => "an answer matching no outstanding query",
                    };
                    Draft::new(format!("{src} sent {dst} {what} for {name} (id {id})"))
                        .severity(severity)
                        .ports(Some(sport), Some(dport))
                        .mac(k.src_mac)
                        .ev("kind", kind)
                        .ev("query", name)
                        .ev("dns_id", id)
                        .ev("rcode", m.rcode())
                        .ev("answers", json!(answers_text(&m)))
                });
            }
        }
    }

    fn tunnel_query(
        &mut self,
        k: &Pkt,
        client: IpAddr,
        server: IpAddr,
        name: &dns::DnsName,
        em: &mut Emitter,
        out: &mut Vec<Alert>,
    ) {
        let (labels, n) = labels_of(name);
        let labels = &labels[..n];
        let Some(last) = labels.last() else { return };
        if last.eq_ignore_ascii_case(b"arpa") || last.eq_ignore_ascii_case(b"local") {
            return;
        }
        let base_n = base_label_count(labels);
        let sub = &labels[..n - base_n];
        if sub.is_empty() {
            return;
        }
        let (max_len, min_label, bits, min_queries) = match &self.tunnel {
            Some(t) => (t.max_name_len, t.min_label_len, t.entropy_bits, t.min_queries),
            None => {
                let d = DnsTunnelConfig::default();
                (d.max_name_len, d.min_label_len, d.entropy_bits, u32::MAX)
            }
        };
        let text_len = u32::try_from(name.text_len()).unwrap_or(u32::MAX);
        let mut ent: f64 = 0.0;
        for l in sub {
            if l.len() >= min_label as usize {
                ent = ent.max(entropy(l));
            }
        }
        let long = text_len > max_len;
        if !long && ent < bits {
            return;
        }
        let sub_bytes: u64 = sub.iter().map(|l| l.len() as u64).sum();
        let base = &labels[n - base_n..];
        let base_hash = base.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, l| (h ^ fnv1a_lower(l)).wrapping_mul(31));
        let now = k.now();
        let window = self.tunnel_window;
        let (st, _) = self.tun.get_or_insert_with((client, base_hash), || TunState {
            win_start: now,
            suspicious: 0,
            bytes: 0,
            max_entropy: 0.0,
            max_len: 0,
            fired_tunnel: false,
            fired_exfil: false,
        });
        if roll(&mut st.win_start, now, window) {
            *st = TunState {
                win_start: now,
                suspicious: 0,
                bytes: 0,
                max_entropy: 0.0,
                max_len: 0,
                fired_tunnel: false,
                fired_exfil: false,
            };
        }
        st.suspicious += 1;
        st.bytes += sub_bytes;
        st.max_entropy = st.max_entropy.max(ent);
        st.max_len = st.max_len.max(text_len);
        let fire_tunnel = self.tunnel.is_some() && !st.fired_tunnel && st.suspicious >= min_queries;
        let fire_exfil = self.exfil_bytes.is_some_and(|b| !st.fired_exfil && st.bytes >= b);
        st.fired_tunnel |= fire_tunnel;
        st.fired_exfil |= fire_exfil;
        let st = *st;
        if !fire_tunnel && !fire_exfil {
            return;
        }
        let base_s = join_lower(base);
        let sample = truncate(name.to_lowercase_string(), 120);
        let ports = (k.p.src_port(), k.p.dst_port());
        if fire_tunnel {
            em.fire(k.at, Key::new(Category::DnsTunnel, Some(client), Some(server), base_hash), out, || {
                Draft::new(format!(
                    "{client} sent {} long or high-entropy DNS queries under {base_s} within {} s",
                    st.suspicious,
                    secs(window)
                ))
                .ports(ports.0, ports.1)
                .mac(k.src_mac)
                .ev("base_domain", base_s.clone())
                .ev("suspicious_queries", st.suspicious)
                .ev("threshold", min_queries)
                .ev("window_secs", secs(window))
                .ev("max_name_len", st.max_len)
                .ev("max_label_entropy", (st.max_entropy * 100.0).round() / 100.0)
                .ev("sample_query", sample.clone())
                .ev("encoded_bytes", st.bytes)
            });
        }
        if fire_exfil {
            let limit = self.exfil_bytes.unwrap_or(0);
            em.fire(k.at, Key::new(Category::DataExfiltration, Some(client), Some(server), base_hash), out, || {
                Draft::new(format!(
                    "{client} sent {} bytes encoded in DNS query names under {base_s} within {} s",
                    st.bytes,
                    secs(window)
                ))
                .ports(ports.0, ports.1)
                .mac(k.src_mac)
                .ev("channel", "dns")
                .ev("base_domain", base_s)
                .ev("bytes", st.bytes)
                .ev("threshold_bytes", limit)
                .ev("window_secs", secs(window))
                .ev("queries", st.suspicious)
                .ev("sample_query", sample)
            });
        }
    }
}
