//! The engine: decodes each frame once, runs the enabled detectors, sorts what one packet
//! raised into a canonical order, and keeps the books.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use vigil_decode::hint::flow_tuple;
use vigil_decode::{DecodeError, LinkType, Outcome, Packet, decode};
use vigil_model::{Alert, Category};

use crate::blocklist::Blocklist;
use crate::config::{ConfigError, DetectConfig, nanos};
use crate::ctx::Pkt;
use crate::detect::anomaly::PacketAnomaly;
use crate::detect::arp::{ArpSpoof, Gateway};
use crate::detect::brute::BruteForce;
use crate::detect::dns::Dns;
use crate::detect::exfil::Exfil;
use crate::detect::flood::{IcmpFlood, SynFlood};
use crate::detect::flow::Flows;
use crate::detect::intel::Intel;
use crate::detect::ports::SuspiciousPort;
use crate::detect::scan::PortScan;
use crate::emit::{At, Emitter, alert_order};
use crate::net::Networks;
use crate::table::Hasher;

/// A timestamp going backwards by more than this resynchronises the engine clock (a new
/// capture file, a clock step); smaller steps back are absorbed (the clock stays put).
pub const CLOCK_RESYNC_NANOS: i64 = 300 * 1_000_000_000;

/// One captured frame, as the engine needs it (`vigil_capture::RawPacket` maps 1:1).
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture time, nanoseconds since the Unix epoch (may go backwards; never trusted).
    pub ts_nanos: i64,
    /// `LINKTYPE_*` of the frame.
    pub link_type: u32,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// Detectors come in three groups with disjoint state, so `vigil analyze --threads N` can
/// run groups on different threads over the same packet stream and merge the alerts: the
/// result is byte-identical to one engine running all groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// port_scan, syn_flood, icmp_flood, brute_force: rate counters keyed by addresses.
    Rates,
    /// The TCP flow table: session_hijack, insecure_protocol, unencrypted_http,
    /// plaintext_credentials, weak_tls, tls_certificate_change.
    Flows,
    /// arp_spoof, gateway_mac_change, dns_tunnel, dns_spoof, data_exfiltration,
    /// suspicious_port, packet_anomaly, threat_intel_match.
    Local,
}

impl Group {
    /// Every group.
    pub const ALL: [Group; 3] = [Group::Rates, Group::Flows, Group::Local];

    /// The categories this group raises.
    pub fn categories(self) -> &'static [Category] {
        match self {
            Group::Rates => &[Category::PortScan, Category::SynFlood, Category::IcmpFlood, Category::BruteForce],
            Group::Flows => &[
                Category::SessionHijack,
                Category::InsecureProtocol,
                Category::UnencryptedHttp,
                Category::PlaintextCredentials,
                Category::WeakTls,
                Category::TlsCertificateChange,
            ],
            Group::Local => &[
                Category::ArpSpoof,
                Category::GatewayMacChange,
                Category::DnsTunnel,
                Category::DnsSpoof,
                Category::DataExfiltration,
                Category::SuspiciousPort,
                Category::PacketAnomaly,
                Category::ThreatIntelMatch,
            ],
        }
    }
}

/// How the engine is built beyond its configuration.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Parsed blocklists for threat_intel_match (shared between engines).
    pub blocklist: Arc<Blocklist>,
    /// Which detector groups to run (default: all).
    pub groups: Vec<Group>,
    /// Seed of the tables' keyed hasher. Outputs never depend on it (tables are never
    /// iterated in hash order). Random by default, so that nobody can precompute keys
    /// that collide in the tables (a capture crafted to make analysis crawl); set it
    /// only to reproduce a run's exact memory layout.
    pub hash_seed: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            blocklist: Arc::new(Blocklist::new()),
            groups: Group::ALL.to_vec(),
            // std seeds every `RandomState` from the OS's random source.
            hash_seed: std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), 0x005e_ed0f_7191_u64),
        }
    }
}

/// The engine's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Frames processed.
    pub packets: u64,
    /// Bytes on the wire (sum of original lengths).
    pub bytes: u64,
    /// Bytes captured.
    pub captured_bytes: u64,
    /// Frames whose link type is not supported (not decoded at all).
    pub decode_errors: u64,
    /// Frames with a malformed header (decoded up to it).
    pub malformed: u64,
    /// Frames with a header cut short (by the packet or the snap length).
    pub truncated: u64,
    /// Alerts raised, per category.
    pub alerts: BTreeMap<Category, u64>,
    /// Table entries evicted to stay within the memory budget, all tables.
    pub evictions: u64,
    /// Evictions per detector.
    pub evictions_by_detector: BTreeMap<&'static str, u64>,
    /// Estimated bytes held by the engine's tables now.
    pub memory_bytes: u64,
    /// The configured budget.
    pub memory_budget_bytes: u64,
    /// Times the clock was resynchronised after timestamps jumped back.
    pub clock_resyncs: u64,
    /// Frames whose timestamp was earlier than the engine clock.
    pub out_of_order: u64,
    /// First and last frame timestamps (nanoseconds), in stream order.
    pub first_ts: Option<i64>,
    /// Last frame timestamp.
    pub last_ts: Option<i64>,
    /// Lowest and highest timestamps seen.
    pub min_ts: Option<i64>,
    /// Highest timestamp seen.
    pub max_ts: Option<i64>,
    /// TCP flows tracked now.
    pub flows: u64,
}

impl Stats {
    /// Folds the stats of another engine that saw the same packet stream with other
    /// detector groups (`vigil analyze --threads`): alerts, evictions and memory add up;
    /// packet counters are the same and kept.
    pub fn merge_partition(&mut self, other: &Stats) {
        for (c, n) in &other.alerts {
            *self.alerts.entry(*c).or_default() += n;
        }
        self.evictions += other.evictions;
        for (d, n) in &other.evictions_by_detector {
            *self.evictions_by_detector.entry(d).or_default() += n;
        }
        self.memory_bytes += other.memory_bytes;
        self.flows += other.flows;
        if self.packets == 0 {
            let (a, e, m, f) = (self.alerts.clone(), self.evictions, self.memory_bytes, self.flows);
            *self = Stats { alerts: a, evictions: e, memory_bytes: m, flows: f, ..other.clone() };
            self.evictions_by_detector = other.evictions_by_detector.clone();
        }
    }

    /// Capture duration in nanoseconds (highest minus lowest timestamp).
    pub fn duration_nanos(&self) -> i64 {
        match (self.min_ts, self.max_ts) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        }
    }
}

struct Clock {
    now: i64,
    started: bool,
    resyncs: u64,
    out_of_order: u64,
}

impl Clock {
    fn advance(&mut self, ts: i64) -> i64 {
        if !self.started || ts >= self.now {
            self.started = true;
            self.now = ts;
        } else {
            self.out_of_order += 1;
            if self.now.saturating_sub(ts) > CLOCK_RESYNC_NANOS {
                self.now = ts;
                self.resyncs += 1;
            }
        }
        self.now
    }
}

struct Rates {
    em: Emitter,
    scan: Option<PortScan>,
    syn: Option<SynFlood>,
    icmp: Option<IcmpFlood>,
    brute: Option<BruteForce>,
}

struct FlowGroup {
    em: Emitter,
    flows: Option<Flows>,
}

struct Local {
    em: Emitter,
    arp: Option<ArpSpoof>,
    gw: Option<Gateway>,
    dns: Option<Dns>,
    exfil: Option<Exfil>,
    ports: Option<SuspiciousPort>,
    anomaly: Option<PacketAnomaly>,
    intel: Option<Intel>,
}

/// The detection engine. Pure: no I/O, no clock (time is the packets'), no threads, no
/// globals. See the crate documentation.
pub struct Engine {
    clock: Clock,
    stats: Stats,
    rates: Option<Rates>,
    flows: Option<FlowGroup>,
    local: Option<Local>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("packets", &self.stats.packets).finish_non_exhaustive()
    }
}

/// Shares of the memory budget, per mille, per table. Fixed, so every partition of the
/// groups sizes its tables exactly as one engine would (identical evictions, identical
/// output). They add up to 895‰; the rest covers fixed structures.
mod share {
    pub const SCAN_PAIRS: u64 = 60;
    pub const SCAN_PORTS: u64 = 120;
    pub const SCAN_SWEEPS: u64 = 20;
    pub const SYN_SRC: u64 = 80;
    pub const SYN_DST: u64 = 20;
    pub const ICMP: u64 = 20;
    pub const BRUTE: u64 = 30;
    pub const FLOWS: u64 = 250;
    pub const TLS_STREAMS: u64 = 60;
    pub const CERTS: u64 = 10;
    pub const ARP: u64 = 15;
    pub const DNS: u64 = 80;
    pub const EXFIL: u64 = 40;
    pub const FRAGS: u64 = 30;
    pub const DEDUP: u64 = 20; // per group
}

impl Engine {
    /// An engine with every detector group, no blocklist and a fixed hash seed. Fails when
    /// the configuration does not validate.
    pub fn new(config: DetectConfig) -> Result<Engine, ConfigError> {
        Self::with_options(config, EngineOptions::default())
    }

    /// An engine with a blocklist, a subset of the groups and a hash seed.
    pub fn with_options(c: DetectConfig, o: EngineOptions) -> Result<Engine, ConfigError> {
        c.validate()?;
        let b = c.memory_budget_bytes;
        let part = |permille: u64| b / 1000 * permille;
        let h = Hasher::with_seeds(
            o.hash_seed,
            o.hash_seed.rotate_left(17) ^ 0x9e37_79b9,
            0x243f_6a88_85a3_08d3,
            0x1319_8a2e_0370_7344,
        );
        let cooldown = nanos(c.cooldown_secs);
        let internal = Networks::new(&c.internal_networks);
        let has = |g: Group| o.groups.contains(&g);
        let rates = has(Group::Rates).then(|| Rates {
            em: Emitter::new(cooldown, part(share::DEDUP), &h),
            scan: c.port_scan.enabled.then(|| {
                PortScan::new(
                    &c.port_scan,
                    part(share::SCAN_PAIRS),
                    part(share::SCAN_PORTS),
                    part(share::SCAN_SWEEPS),
                    &h,
                )
            }),
            syn: c
                .syn_flood
                .enabled
                .then(|| SynFlood::new(&c.syn_flood, part(share::SYN_SRC), part(share::SYN_DST), &h)),
            icmp: c.icmp_flood.enabled.then(|| IcmpFlood::new(&c.icmp_flood, part(share::ICMP), &h)),
            brute: c.brute_force.enabled.then(|| BruteForce::new(&c.brute_force, part(share::BRUTE), &h)),
        });
        let any_flow = c.session_hijack.enabled
            || c.insecure_protocol.enabled
            || c.unencrypted_http.enabled
            || c.plaintext_credentials.enabled
            || c.tls.weak_versions
            || c.tls.certificate_change;
        let flows = has(Group::Flows).then(|| FlowGroup {
            em: Emitter::new(cooldown, part(share::DEDUP), &h),
            flows: any_flow
                .then(|| Flows::new(&c, part(share::FLOWS), part(share::TLS_STREAMS), part(share::CERTS), &h)),
        });
        let dns_on = c.dns_tunnel.enabled || c.dns_spoof.enabled || c.data_exfiltration.enabled;
        let local = has(Group::Local).then(|| Local {
            em: Emitter::new(cooldown, part(share::DEDUP), &h),
            arp: c.arp_spoof.enabled.then(|| ArpSpoof::new(&c.arp_spoof, part(share::ARP), &h)),
            gw: c.gateway.enabled.then(|| Gateway::new(&c.gateway, internal.clone())),
            dns: dns_on.then(|| {
                Dns::new(
                    c.dns_tunnel.enabled.then_some(&c.dns_tunnel),
                    c.data_exfiltration.enabled.then_some(c.data_exfiltration.dns_bytes),
                    c.dns_spoof.enabled.then_some(&c.dns_spoof),
                    part(share::DNS),
                    &h,
                )
            }),
            exfil: c
                .data_exfiltration
                .enabled
                .then(|| Exfil::new(&c.data_exfiltration, internal.clone(), part(share::EXFIL), &h)),
            ports: c.suspicious_port.enabled.then(|| SuspiciousPort::new(&c.suspicious_port)),
            anomaly: c.packet_anomaly.enabled.then(|| PacketAnomaly::new(&c.packet_anomaly, part(share::FRAGS), &h)),
            intel: (c.threat_intel.enabled && !o.blocklist.is_empty()).then(|| Intel::new(o.blocklist.clone())),
        });
        Ok(Engine {
            clock: Clock { now: 0, started: false, resyncs: 0, out_of_order: 0 },
            stats: Stats { memory_budget_bytes: b, ..Stats::default() },
            rates,
            flows,
            local,
        })
    }

    /// Processes one frame; alerts it raises are appended to `out` in canonical order
    /// ([`crate::alert_order`]). Never panics, whatever the bytes.
    pub fn process(&mut self, f: &Frame<'_>, out: &mut Vec<Alert>) {
        // The decoded packet is dropped where it was built, not copied out (248 bytes).
        self.process_then(f, out, |_| None::<()>);
    }

    /// Starts loading into the cache the state that the frame after the one about to be
    /// processed will need (its TCP flow; for a SYN, also its port_scan and syn_flood
    /// entries, or what inserting them would evict), so that its lookups do not wait on
    /// memory.
    /// Purely a speed hint: it changes no state and no output, and a frame it cannot read
    /// is ignored, and it does nothing while the flow table is small enough to stay in
    /// cache. Callers that see frames ahead (a capture file, a ring) pass the next one
    /// before processing the current one.
    pub fn prefetch(&mut self, link_type: u32, data: &[u8]) {
        let (scan, syn) = match &mut self.rates {
            Some(g) => (g.scan.as_mut().filter(|d| d.wants_prefetch()), g.syn.as_mut().filter(|d| d.wants_prefetch())),
            None => (None, None),
        };
        let flows = self.flows.as_mut().and_then(|g| g.flows.as_mut()).filter(|d| d.wants_prefetch());
        if scan.is_none() && syn.is_none() && flows.is_none() {
            return; // Everything fits in cache: not even the frame is read.
        }
        let Some(t) = flow_tuple(LinkType(link_type), data) else { return };
        if let Some(d) = scan {
            d.prefetch(&t);
        }
        if let Some(d) = syn {
            d.prefetch(&t);
        }
        if let Some(d) = flows {
            d.prefetch(&t);
        }
    }

    /// Second step of [`Engine::prefetch`], at the end of the current packet: the index
    /// buckets asked for have arrived, so the slots they name can be asked for.
    fn warm(&mut self) {
        if let Some(g) = &mut self.rates {
            if let Some(d) = &mut g.scan {
                d.warm();
            }
            if let Some(d) = &mut g.syn {
                d.warm();
            }
        }
        if let Some(g) = &mut self.flows
            && let Some(d) = &mut g.flows
        {
            d.warm();
        }
    }

    /// Like [`Engine::process`], and returns the decoded frame (`None` when its link type
    /// is not supported), for a caller that needs more of the packet than the alerts (the
    /// agent's traffic statistics) without decoding it a second time.
    pub fn process_and_decode<'a>(&mut self, f: &Frame<'a>, out: &mut Vec<Alert>) -> Option<Packet<'a>> {
        self.process_then(f, out, Result::ok)
    }

    /// Processes one frame, then hands its decoded packet to `then` (`None` when the
    /// link type is not supported).
    #[inline(always)]
    fn process_then<'a, R>(
        &mut self,
        f: &Frame<'a>,
        out: &mut Vec<Alert>,
        then: impl FnOnce(Result<Packet<'a>, DecodeError>) -> Option<R>,
    ) -> Option<R> {
        let seq = self.stats.packets;
        let st = &mut self.stats;
        st.packets += 1;
        st.bytes += u64::from(f.orig_len);
        st.captured_bytes += f.data.len() as u64;
        st.first_ts.get_or_insert(f.ts_nanos);
        st.last_ts = Some(f.ts_nanos);
        st.min_ts = Some(st.min_ts.map_or(f.ts_nanos, |m| m.min(f.ts_nanos)));
        st.max_ts = Some(st.max_ts.map_or(f.ts_nanos, |m| m.max(f.ts_nanos)));
        let now = self.clock.advance(f.ts_nanos);
        // Borrowed where `decode` built it: moving the 248-byte packet out costs a copy.
        let decoded = decode(LinkType(f.link_type), f.data);
        let Ok(p) = &decoded else {
            self.stats.decode_errors += 1;
            return None;
        };
        match p.outcome() {
            Outcome::Complete => {}
            Outcome::Malformed => self.stats.malformed += 1,
            Outcome::Truncated => self.stats.truncated += 1,
        }
        let k = Pkt {
            at: At { now, ts: f.ts_nanos, seq },
            p,
            orig_len: f.orig_len,
            caplen: f.data.len(),
            src: p.src_ip(),
            dst: p.dst_ip(),
            src_mac: p.link.src_mac.filter(|m| !m.is_zero() && !m.is_multicast()),
        };
        let start = out.len();
        if let Some(g) = &mut self.rates {
            if let Some(d) = &mut g.scan {
                d.on_packet(&k, &mut g.em, out);
            }
            if let Some(d) = &mut g.syn {
                d.on_packet(&k, &mut g.em, out);
            }
            if let Some(d) = &mut g.icmp {
                d.on_packet(&k, &mut g.em, out);
            }
            if let Some(d) = &mut g.brute {
                d.on_packet(&k, &mut g.em, out);
            }
        }
        if let Some(g) = &mut self.flows
            && let Some(d) = &mut g.flows
        {
            d.on_packet(&k, &mut g.em, out);
        }
        if let Some(g) = &mut self.local {
            if let Some(arp) = p.arp() {
                if let Some(d) = &mut g.arp {
                    d.on_arp(&k, arp, &mut g.em, out);
                }
                if let Some(d) = &mut g.gw {
                    d.on_arp(&k, arp, &mut g.em, out);
                }
            } else if k.src.is_some() {
                if let Some(d) = &mut g.gw {
                    d.on_ip(&k, &mut g.em, out);
                }
                if let Some(d) = &mut g.dns {
                    d.on_packet(&k, &mut g.em, out);
                }
                if let Some(d) = &mut g.exfil {
                    d.on_packet(&k, &mut g.em, out);
                }
                if let Some(d) = &mut g.ports {
                    d.on_packet(&k, &mut g.em, out);
                }
                if let Some(d) = &mut g.intel {
                    d.on_packet(&k, &mut g.em, out);
                }
            }
            if let Some(d) = &mut g.anomaly {
                d.on_packet(&k, &mut g.em, out);
            }
        }
        self.warm();
        if out.len() > start {
            let new = out.get_mut(start..).unwrap_or_default();
            new.sort_by(alert_order);
            for a in new.iter() {
                *self.stats.alerts.entry(a.category).or_default() += 1;
            }
        }
        then(decoded)
    }

    /// Processes one frame and returns its alerts (allocates; [`Engine::process`] reuses
    /// the caller's vector).
    pub fn process_iter(&mut self, f: &Frame<'_>) -> impl Iterator<Item = Alert> + use<> {
        let mut out = Vec::new();
        self.process(f, &mut out);
        out.into_iter()
    }

    /// Tells the engine time has reached `end_ts` without packets (end of a capture, or an
    /// idle live interface): idle state is dropped. Alerts are only ever raised by packets,
    /// so nothing is emitted.
    pub fn flush(&mut self, end_ts: i64) {
        let now = self.clock.advance(end_ts);
        if let Some(g) = &mut self.flows
            && let Some(f) = &mut g.flows
        {
            f.sweep(now);
        }
    }

    /// Frames processed so far (also the index the next frame gets).
    pub fn packets(&self) -> u64 {
        self.stats.packets
    }

    /// The counters, with evictions and the memory estimate as of now.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.clock_resyncs = self.clock.resyncs;
        s.out_of_order = self.clock.out_of_order;
        let mut mem = 0u64;
        let mut ev = BTreeMap::new();
        let mut add = |name: &'static str, m: u64, e: u64| {
            mem += m;
            if e > 0 {
                ev.insert(name, e);
            }
        };
        if let Some(g) = &self.rates {
            add("dedup_rates", g.em.mem_bytes(), g.em.evictions());
            if let Some(d) = &g.scan {
                add("port_scan", d.mem_bytes(), d.evictions());
            }
            if let Some(d) = &g.syn {
                add("syn_flood", d.mem_bytes(), d.evictions());
            }
            if let Some(d) = &g.icmp {
                add("icmp_flood", d.mem_bytes(), d.evictions());
            }
            if let Some(d) = &g.brute {
                add("brute_force", d.mem_bytes(), d.evictions());
            }
        }
        if let Some(g) = &self.flows {
            add("dedup_flows", g.em.mem_bytes(), g.em.evictions());
            if let Some(d) = &g.flows {
                add("flows", d.mem_bytes(), d.evictions());
                s.flows = d.flows() as u64;
            }
        }
        if let Some(g) = &self.local {
            add("dedup_local", g.em.mem_bytes(), g.em.evictions());
            if let Some(d) = &g.arp {
                add("arp_spoof", d.mem_bytes(), d.evictions());
            }
            if let Some(d) = &g.dns {
                add("dns", d.mem_bytes(), d.evictions());
            }
            if let Some(d) = &g.exfil {
                add("data_exfiltration", d.mem_bytes(), d.evictions());
            }
            if let Some(d) = &g.ports {
                add("suspicious_port", d.mem_bytes(), 0);
            }
            if let Some(d) = &g.anomaly {
                add("packet_anomaly", d.mem_bytes(), d.evictions());
            }
            if let Some(d) = &g.intel {
                add("threat_intel", d.mem_bytes(), 0);
            }
        }
        s.memory_bytes = mem;
        s.evictions = ev.values().sum();
        s.evictions_by_detector = ev;
        s
    }
}
