//! Per-connection detectors sharing one TCP flow table: session_hijack, insecure_protocol,
//! unencrypted_http, plaintext_credentials, weak_tls and tls_certificate_change (plus the
//! stateless UDP cases of insecure_protocol: TFTP, SNMP v1/v2c).
//!
//! **session_hijack**: on Ethernet links, one direction of a connection arriving from a
//! second MAC (an injector on the LAN), or `desync_segments` data segments whose sequence
//! number lies farther than `min_seq_gap` (or twice the peer's window) from where the
//! stream was (an injection desynchronising the real peers). Other link types (Linux
//! "any" captures see a routed packet twice with two MACs) skip the MAC check.
//!
//! **plaintext_credentials** stores the protocol and the user name, never the password:
//! the password line is only recognised, and Telnet password keystrokes only counted.
//!
//! **tls_certificate_change**: the leaf certificate a server presents for a name (SNI,
//! else the certificate's CN, else the server address) and port, compared with the last
//! one seen. CDNs and load balancers that rotate certificates legitimately will show up;
//! the evidence names both fingerprints.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use vigil_decode::cleartext::{self, AuthCommand, Protocol};
use vigil_decode::hint::{FlowTuple, IPPROTO_TCP};
use vigil_decode::telnet::IacStripper;
use vigil_decode::tls::{self, Handshake, Sslv2Hello, TlsMessage, TlsStream, TlsVersion};
use vigil_decode::{LinkType, MacAddr, Network, Tcp, Transport, http};
use vigil_model::{Alert, Category, Severity};

use crate::config::DetectConfig;
use crate::ctx::Pkt;
use crate::emit::{Draft, Emitter, Key};
use crate::net::{fnv1a, fnv1a_lower};
use crate::table::{Hasher, Table};

/// Longest user name kept (characters).
const MAX_USER: usize = 64;
/// Server segments fed to a TLS stream before giving up on finding the certificate.
const MAX_TLS_SEGMENTS: u8 = 32;
/// Flows idle this long are dropped when the table is swept.
const FLOW_IDLE: i64 = 300 * 1_000_000_000;

#[derive(Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    a: IpAddr,
    ap: u16,
    b: IpAddr,
    bp: u16,
}

/// An address as one integer (IPv4 as its IPv4-mapped IPv6 form): cheap to hash and to
/// order. Both ends of a flow are of one family, so the order of two addresses is the
/// order of `IpAddr`.
fn addr_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Three words instead of the derived field-by-field hash of two `IpAddr` enums: the key is
/// hashed for every TCP packet, twice with the prefetch. Equal keys give equal words.
impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u128(addr_bits(self.a));
        h.write_u128(addr_bits(self.b));
        h.write_u32(u32::from(self.ap) << 16 | u32::from(self.bp));
    }
}

impl FlowKey {
    /// The key of a packet from `src`:`sp` to `dst`:`dp`, and its direction (0: a→b).
    fn of(src: IpAddr, sp: u16, dst: IpAddr, dp: u16) -> (FlowKey, u8) {
        if (addr_bits(src), sp) <= (addr_bits(dst), dp) {
            (FlowKey { a: src, ap: sp, b: dst, bp: dp }, 0)
        } else {
            (FlowKey { a: dst, ap: dp, b: src, bp: sp }, 1)
        }
    }
}

/// Services recognised by port.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Svc {
    Ftp,
    Telnet,
    Smtp,
    Pop3,
    Imap,
    Rexec,
    Rlogin,
    Rsh,
    Smb,
    Vnc,
    Redis,
}

impl Svc {
    fn of(port: u16) -> Option<Svc> {
        Some(match port {
            21 => Svc::Ftp,
            23 => Svc::Telnet,
            25 | 587 => Svc::Smtp,
            110 => Svc::Pop3,
            143 => Svc::Imap,
            512 => Svc::Rexec,
            513 => Svc::Rlogin,
            514 => Svc::Rsh,
            139 | 445 => Svc::Smb,
            5900..=5903 => Svc::Vnc,
            6379 => Svc::Redis,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Svc::Ftp => "ftp",
            Svc::Telnet => "telnet",
            Svc::Smtp => "smtp",
            Svc::Pop3 => "pop3",
            Svc::Imap => "imap",
            Svc::Rexec => "rexec",
            Svc::Rlogin => "rlogin",
            Svc::Rsh => "rsh",
            Svc::Smb => "smbv1",
            Svc::Vnc => "vnc",
            Svc::Redis => "redis",
        }
    }

    fn line_protocol(self) -> Option<Protocol> {
        match self {
            Svc::Ftp => Some(Protocol::Ftp),
            Svc::Pop3 => Some(Protocol::Pop3),
            Svc::Imap => Some(Protocol::Imap),
            Svc::Smtp => Some(Protocol::Smtp),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sasl {
    None,
    ExpectUser,
    ExpectPass,
    ExpectPlain,
}

struct LineState {
    proto: Protocol,
    user: Option<String>,
    sasl: Sasl,
    tls: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TelPhase {
    Idle,
    User,
    UserDone,
    Pass,
}

struct TelnetState {
    strip: [IacStripper; 2],
    phase: TelPhase,
    user: String,
    typed: u32,
}

struct TlsState {
    sni: Option<String>,
    stream: Option<TlsStream>,
    segments: u8,
    live: Arc<AtomicUsize>,
}

impl Drop for TlsState {
    fn drop(&mut self) {
        if self.stream.take().is_some() {
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl TlsState {
    fn stop(&mut self) {
        if self.stream.take().is_some() {
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

enum App {
    /// Nothing recognised yet.
    Unknown,
    /// Nothing more to parse.
    Plain,
    Lines(Box<LineState>),
    Telnet(Box<TelnetState>),
    Tls(Box<TlsState>),
}

const REPORTED_INSECURE: u8 = 1;

struct Flow {
    last_seen: i64,
    mac: [Option<MacAddr>; 2],
    next_seq: [u32; 2],
    seq_known: [bool; 2],
    window: [u16; 2],
    wscale: [Option<u8>; 2],
    desync: u16,
    /// Direction (0: a→b, 1: b→a) of the client, when known.
    client: Option<u8>,
    svc: Option<Svc>,
    flags: u8,
    app: App,
}

#[derive(Clone, Copy)]
struct CertRec {
    fp: [u8; 32],
    since: i64,
}

/// What is enabled in this group.
struct On {
    hijack: bool,
    insecure: bool,
    http: bool,
    creds: bool,
    weak_tls: bool,
    cert_change: bool,
}

pub(crate) struct Flows {
    on: On,
    min_seq_gap: u32,
    desync_segments: u16,
    min_tls: u16,
    stream_bytes: usize,
    max_streams: usize,
    live_streams: Arc<AtomicUsize>,
    streams_refused: u64,
    flows: Table<FlowKey, Flow>,
    /// Hash of the next packet's flow, whose slot is to be prefetched ([`Flows::prefetch`]).
    ahead: Option<u64>,
    certs: Table<(u64, u16), CertRec>,
    scratch: Vec<u8>,
    swept_at: i64,
}

fn usable(m: MacAddr) -> bool {
    !m.is_zero() && !m.is_multicast()
}

fn push_user(user: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if user.chars().count() >= MAX_USER {
            return;
        }
        if b.is_ascii_graphic() || b == b' ' {
            user.push(char::from(b));
        }
    }
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Declared TCP segment length (the capture may hold less).
fn seg_len(p: &vigil_decode::Packet, t: &Tcp) -> u32 {
    let ip_payload = match &p.network {
        Network::Ipv4(ip) => ip.declared_payload_len(),
        Network::Ipv6(ip) => ip.declared_payload_len(),
        _ => t.payload.len(),
    };
    let hl = usize::from(t.data_offset) * 4;
    let declared = ip_payload.saturating_sub(hl);
    u32::try_from(declared.max(t.payload.len())).unwrap_or(u32::MAX)
}

impl Flows {
    pub(crate) fn new(c: &DetectConfig, flow_budget: u64, tls_budget: u64, cert_budget: u64, h: &Hasher) -> Self {
        let stream_bytes = c.tls.stream_bytes as usize;
        Flows {
            on: On {
                hijack: c.session_hijack.enabled,
                insecure: c.insecure_protocol.enabled,
                http: c.unencrypted_http.enabled,
                creds: c.plaintext_credentials.enabled,
                weak_tls: c.tls.weak_versions,
                cert_change: c.tls.certificate_change,
            },
            min_seq_gap: c.session_hijack.min_seq_gap,
            desync_segments: u16::try_from(c.session_hijack.desync_segments).unwrap_or(u16::MAX),
            min_tls: c.tls.min_version_wire().unwrap_or(0x0303),
            stream_bytes,
            max_streams: usize::try_from(tls_budget / (stream_bytes as u64 * 2).max(1)).unwrap_or(0).max(1),
            live_streams: Arc::new(AtomicUsize::new(0)),
            streams_refused: 0,
            flows: Table::with_budget(flow_budget, h),
            ahead: None,
            certs: Table::with_budget(cert_budget, h),
            scratch: Vec::with_capacity(2048),
            swept_at: i64::MIN,
        }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        // Boxed app states: bounded small structs, about 128 bytes each, plus live TLS
        // streams at their (doubled, for Vec growth) byte limit.
        let boxes = self.flows.len() as u64 * 16;
        let streams = self.live_streams.load(Ordering::Relaxed) as u64 * self.stream_bytes as u64 * 2;
        self.flows.mem_bytes() + self.certs.mem_bytes() + boxes + streams + self.scratch.capacity() as u64
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.flows.evictions() + self.certs.evictions() + self.streams_refused
    }

    pub(crate) fn flows(&self) -> usize {
        self.flows.len()
    }

    /// Drops flows idle for five minutes (amortised: at most once per 10 s of capture).
    pub(crate) fn sweep(&mut self, now: i64) {
        if now < self.swept_at || now.saturating_sub(self.swept_at) >= 10_000_000_000 {
            self.swept_at = now;
            self.flows.expire(|f| now.saturating_sub(f.last_seen) > FLOW_IDLE);
        }
    }

    /// Whether [`Flows::prefetch`] pays (the flow table outgrew the cache).
    pub(crate) fn wants_prefetch(&self) -> bool {
        self.flows.worth_prefetching()
    }

    /// Starts warming the flow entry of the TCP packet that comes after the current one
    /// (index bucket and eviction victim now, the rest in [`Flows::warm`]).
    pub(crate) fn prefetch(&mut self, t: &FlowTuple) {
        self.ahead = (t.protocol == IPPROTO_TCP)
            .then(|| self.flows.prefetch_key(&FlowKey::of(t.src, t.src_port, t.dst, t.dst_port).0));
    }

    /// Second step of [`Flows::prefetch`], once the index bucket has had time to arrive.
    pub(crate) fn warm(&mut self) {
        if let Some(hash) = self.ahead.take() {
            self.flows.warm_key(hash);
        }
    }

    pub(crate) fn on_packet(&mut self, k: &Pkt, em: &mut Emitter, out: &mut Vec<Alert>) {
        match &k.p.transport {
            Transport::Tcp(t) => self.on_tcp(k, t, em, out),
            Transport::Udp(u) if self.on.insecure => {
                self.on_udp_insecure(k, u.src_port, u.dst_port, u.payload, em, out)
            }
            _ => {}
        }
    }

    fn on_udp_insecure(
        &mut self,
        k: &Pkt,
        sport: u16,
        dport: u16,
        payload: &[u8],
        em: &mut Emitter,
        out: &mut Vec<Alert>,
    ) {
        let (Some(src), Some(dst)) = (k.src, k.dst) else { return };
        let label = match (dport, payload) {
            (69, [0, 1 | 2, ..]) => "tftp",
            (161 | 162, [0x30, ..]) => match snmp_version(payload) {
                Some(0) => "snmpv1",
                Some(1) => "snmpv2c",
                _ => return,
            },
            _ => return,
        };
        em.fire(k.at, Key::new(Category::InsecureProtocol, Some(src), Some(dst), fnv1a(label.as_bytes())), out, || {
            Draft::new(format!("{src} uses cleartext {label} with {dst}"))
                .ports(Some(sport), Some(dport))
                .mac(k.src_mac)
                .ev("protocol", label)
                .ev("transport", "udp")
        });
    }

    fn on_tcp(&mut self, k: &Pkt, t: &Tcp, em: &mut Emitter, out: &mut Vec<Alert>) {
        let (Some(src), Some(dst)) = (k.src, k.dst) else { return };
        let now = k.now();
        self.sweep(now);
        let (key, dir) = FlowKey::of(src, t.src_port, dst, t.dst_port);
        let syn_only = t.flags.is_syn_only();
        let (flow, _) = self.flows.get_or_insert_with(key, || {
            let svc_dst = Svc::of(t.dst_port);
            let svc_src = Svc::of(t.src_port);
            // The client is the SYN sender, else the side not on the service port.
            let client = if syn_only || svc_dst.is_some() {
                Some(dir)
            } else if svc_src.is_some() || t.flags.is_syn_ack() {
                Some(1 - dir)
            } else {
                None
            };
            let svc = svc_dst.or(svc_src);
            Flow {
                last_seen: now,
                mac: [None; 2],
                next_seq: [0; 2],
                seq_known: [false; 2],
                window: [0; 2],
                wscale: [None; 2],
                desync: 0,
                client,
                svc,
                flags: 0,
                app: App::Unknown,
            }
        });
        flow.last_seen = now;
        let d = usize::from(dir);
        flow.window[d] = t.window;
        if syn_only && flow.client.is_none() {
            flow.client = Some(dir);
        }

        // --- session_hijack -------------------------------------------------------
        if self.on.hijack {
            let mut event: Option<(&'static str, String, String)> = None;
            if k.p.link.link_type == LinkType::ETHERNET
                && let Some(m) = k.src_mac.filter(|m| usable(*m))
            {
                match flow.mac[d] {
                    Some(old) if old != m => {
                        event = Some(("mac_conflict", old.to_string(), m.to_string()));
                        flow.mac[d] = Some(m);
                    }
                    None => flow.mac[d] = Some(m),
                    _ => {}
                }
            }
            let len = seg_len(k.p, t);
            if t.flags.syn() {
                flow.next_seq[d] = t.seq.wrapping_add(1);
                flow.seq_known[d] = true;
                flow.wscale[d] = t.parsed_options().window_scale;
            } else if !t.flags.rst() && (len > 0 || t.flags.fin()) {
                let end = t.seq.wrapping_add(len).wrapping_add(u32::from(t.flags.fin()));
                if flow.seq_known[d] {
                    let diff = t.seq.wrapping_sub(flow.next_seq[d]) as i32;
                    let peer = 1 - d;
                    let scale = match (flow.wscale[0], flow.wscale[1]) {
                        (Some(_), Some(_)) => flow.wscale[peer].unwrap_or(0).min(14),
                        _ => 0,
                    };
                    let peer_window = u32::from(flow.window[peer]) << scale;
                    let allowed = self.min_seq_gap.max(peer_window.saturating_mul(2));
                    if diff.unsigned_abs() > allowed {
                        flow.desync = flow.desync.saturating_add(1);
                        flow.next_seq[d] = end;
                        if flow.desync == self.desync_segments {
                            event = Some(("sequence_desync", flow.desync.to_string(), diff.to_string()));
                        }
                    } else if (end.wrapping_sub(flow.next_seq[d]) as i32) > 0 {
                        flow.next_seq[d] = end;
                    }
                } else {
                    flow.next_seq[d] = end;
                    flow.seq_known[d] = true;
                }
            }
            if let Some((kind, a, b)) = event {
                let hijack_key = Key::new(
                    Category::SessionHijack,
                    Some(src),
                    Some(dst),
                    u64::from(t.src_port) << 16 | u64::from(t.dst_port),
                );
                let (sport, dport) = (t.src_port, t.dst_port);
                em.fire(k.at, hijack_key, out, || {
                    let d = if kind == "mac_conflict" {
                        Draft::new(format!(
                            "TCP connection {src}:{sport} -> {dst}:{dport} now arrives from MAC {b} (was {a})"
                        ))
                        .ev("old_mac", a)
                        .ev("new_mac", b)
                    } else {
                        Draft::new(format!(
                            "TCP connection {src}:{sport} -> {dst}:{dport} has {a} segments far outside its sequence window"
                        ))
                        .ev("desync_segments", a)
                        .ev("last_offset", b)
                    };
                    d.ports(Some(sport), Some(dport)).mac(k.src_mac).ev("kind", kind)
                });
            }
        }

        if t.payload.is_empty() {
            // A SYN-ACK from an insecure service is enough to know it is in use? No: only
            // payload proves a conversation; nothing else to do without data.
            return;
        }
        let from_client = flow.client.is_none_or(|c| c == dir);

        // --- application layer ---------------------------------------------------
        if matches!(flow.app, App::Unknown) {
            flow.app = classify(flow.svc, t.payload, from_client, self.live_streams.clone());
        }
        let (client_ip, server_ip, client_port, server_port) =
            if from_client { (src, dst, t.src_port, t.dst_port) } else { (dst, src, t.dst_port, t.src_port) };

        // insecure_protocol: once per flow, on the first payload that shows the protocol in use.
        if self.on.insecure
            && flow.flags & REPORTED_INSECURE == 0
            && let Some(svc) = flow.svc
        {
            let in_use = match svc {
                Svc::Smb => is_smb1(t.payload),
                Svc::Vnc => t.payload.starts_with(b"RFB "),
                Svc::Smtp | Svc::Redis => false,
                Svc::Ftp | Svc::Pop3 | Svc::Imap => {
                    from_client
                        && !cleartext::lines(t.payload).any(|l| {
                            svc.line_protocol()
                                .and_then(|p| cleartext::parse_command(p, l))
                                .is_some_and(|c| c == AuthCommand::StartTls)
                        })
                }
                _ => true,
            };
            if in_use {
                flow.flags |= REPORTED_INSECURE;
                let label = svc.name();
                em.fire(
                    k.at,
                    Key::new(Category::InsecureProtocol, Some(client_ip), Some(server_ip), fnv1a(label.as_bytes())),
                    out,
                    || {
                        Draft::new(format!("{client_ip} uses cleartext {label} with {server_ip} port {server_port}"))
                            .ports(Some(client_port), Some(server_port))
                            .ev("protocol", label)
                            .ev("transport", "tcp")
                    },
                );
            }
        }

        // unencrypted_http and HTTP Basic credentials.
        if (self.on.http || self.on.creds)
            && http::looks_like_request(t.payload)
            && let Ok(req) = http::parse_request(t.payload)
        {
            if self.on.http {
                em.fire(
                    k.at,
                    Key::new(Category::UnencryptedHttp, Some(src), Some(dst), u64::from(t.dst_port)),
                    out,
                    || {
                        let host = req.host.map(|h| clip(h, 128));
                        Draft::new(format!(
                            "{src} sent a plain HTTP {} request to {}{} (port {})",
                            clip(req.method, 16),
                            host.clone().unwrap_or_else(|| dst.to_string()),
                            clip(req.path(), 64),
                            t.dst_port
                        ))
                        .ports(Some(t.src_port), Some(t.dst_port))
                        .mac(k.src_mac)
                        .ev("method", clip(req.method, 16))
                        .ev("host", host)
                        .ev("path", clip(req.path(), 128))
                        .ev("http_version", format!("1.{}", req.version_minor))
                    },
                );
            }
            if self.on.creds
                && let Some(auth) = req.authorization()
                && auth.is_basic()
            {
                let user = auth.basic_user();
                fire_creds(k, em, out, src, dst, t.src_port, t.dst_port, "http_basic", user);
            }
        }

        // Line protocols, Telnet, Redis, TLS.
        let creds = self.on.creds;
        let mut tls_done = false;
        match &mut flow.app {
            App::Lines(ls) if creds && from_client && !ls.tls => {
                for line in cleartext::lines(t.payload) {
                    match ls.sasl {
                        Sasl::ExpectUser => {
                            ls.user = cleartext::decode_base64_user(line).map(|u| clip(&u, MAX_USER));
                            ls.sasl = Sasl::ExpectPass;
                            continue;
                        }
                        Sasl::ExpectPass => {
                            ls.sasl = Sasl::None;
                            if line != b"*" {
                                let user = ls.user.clone();
                                fire_creds(k, em, out, src, dst, t.src_port, t.dst_port, ls.proto.name(), user);
                            }
                            continue;
                        }
                        Sasl::ExpectPlain => {
                            ls.sasl = Sasl::None;
                            if line != b"*" {
                                let user = cleartext::sasl_plain_user(line).map(|u| clip(&u, MAX_USER));
                                fire_creds(k, em, out, src, dst, t.src_port, t.dst_port, ls.proto.name(), user);
                            }
                            continue;
                        }
                        Sasl::None => {}
                    }
                    let Some(cmd) = cleartext::parse_command(ls.proto, line) else { continue };
                    match cmd {
                        AuthCommand::User { user } => ls.user = Some(clip(&user, MAX_USER)),
                        AuthCommand::Pass => {
                            let user = ls.user.clone();
                            fire_creds(k, em, out, src, dst, t.src_port, t.dst_port, ls.proto.name(), user);
                        }
                        AuthCommand::Login { user } => {
                            let user = user.map(|u| clip(&u, MAX_USER));
                            fire_creds(k, em, out, src, dst, t.src_port, t.dst_port, ls.proto.name(), user);
                        }
                        AuthCommand::AuthPlain { user: Some(u) } => {
                            let user = Some(clip(&u, MAX_USER));
                            fire_creds(k, em, out, src, dst, t.src_port, t.dst_port, ls.proto.name(), user);
                        }
                        AuthCommand::AuthPlain { user: None } => ls.sasl = Sasl::ExpectPlain,
                        AuthCommand::AuthLogin { user: Some(u) } => {
                            ls.user = Some(clip(&u, MAX_USER));
                            ls.sasl = Sasl::ExpectPass;
                        }
                        AuthCommand::AuthLogin { user: None } => ls.sasl = Sasl::ExpectUser,
                        AuthCommand::StartTls => ls.tls = true,
                        AuthCommand::Apop { .. } | AuthCommand::Auth { .. } => {}
                    }
                    if ls.tls {
                        break;
                    }
                }
            }
            App::Telnet(ts) if creds => {
                self.scratch.clear();
                ts.strip[d].feed(t.payload, &mut self.scratch);
                if from_client {
                    for &b in &self.scratch {
                        let end = b == b'\r' || b == b'\n';
                        match ts.phase {
                            TelPhase::User if end && !ts.user.is_empty() => ts.phase = TelPhase::UserDone,
                            TelPhase::User if !end => push_user(&mut ts.user, &[b]),
                            TelPhase::Pass if end && ts.typed > 0 => {
                                ts.phase = TelPhase::Idle;
                                ts.typed = 0;
                                let user = (!ts.user.is_empty()).then(|| ts.user.clone());
                                fire_creds(k, em, out, src, dst, t.src_port, t.dst_port, "telnet", user);
                            }
                            TelPhase::Pass if !end => ts.typed = ts.typed.saturating_add(1),
                            _ => {}
                        }
                    }
                } else {
                    let text = self.scratch.trim_ascii_end();
                    let tail = text.get(text.len().saturating_sub(16)..).unwrap_or(text);
                    let ends = |p: &[u8]| tail.len() >= p.len() && tail[tail.len() - p.len()..].eq_ignore_ascii_case(p);
                    if ends(b"login:") || ends(b"username:") || ends(b"user name:") {
                        ts.phase = TelPhase::User;
                        ts.user.clear();
                    } else if ends(b"password:") {
                        ts.phase = TelPhase::Pass;
                        ts.typed = 0;
                    }
                }
            }
            App::Plain if creds && flow.svc == Some(Svc::Redis) && from_client => {
                if let Some(user) = redis_auth(t.payload) {
                    fire_creds(k, em, out, src, dst, t.src_port, t.dst_port, "redis", Some(user));
                }
            }
            App::Tls(ts) if self.on.weak_tls || self.on.cert_change => {
                if from_client {
                    if ts.sni.is_none()
                        && let Some(sni) = tls::client_hello(t.payload).and_then(|ch| ch.sni())
                    {
                        ts.sni = Some(clip(&sni.to_ascii_lowercase(), 253));
                    }
                } else {
                    if ts.stream.is_none() && ts.segments == 0 {
                        if self.live_streams.load(Ordering::Relaxed) < self.max_streams {
                            self.live_streams.fetch_add(1, Ordering::Relaxed);
                            ts.stream = Some(TlsStream::new(self.stream_bytes));
                        } else {
                            self.streams_refused += 1;
                        }
                    }
                    ts.segments = ts.segments.saturating_add(1);
                    let ctx = TlsCtx {
                        at: k,
                        client: dst,
                        server: src,
                        cport: t.dst_port,
                        sport: t.src_port,
                        min_tls: self.min_tls,
                        weak: self.on.weak_tls,
                        cert: self.on.cert_change,
                    };
                    tls_server_data(&ctx, ts, t.payload, &mut self.certs, em, out);
                    if ts.segments >= MAX_TLS_SEGMENTS {
                        ts.stop();
                    }
                    // The server's handshake is over (or was refused a stream): nothing more
                    // to read in this flow, so stop paying for the boxed state.
                    tls_done = ts.stream.is_none();
                }
            }
            _ => {}
        }
        if tls_done {
            flow.app = App::Plain;
        }
    }
}

/// Decides what to parse in a flow from its service port and first payload.
fn classify(svc: Option<Svc>, payload: &[u8], from_client: bool, live: Arc<AtomicUsize>) -> App {
    let tls_start = matches!(payload, [22, 3, ..]) || matches!(payload, [b0, _, 1, 0 | 3, ..] if b0 & 0x80 != 0);
    if tls_start && from_client {
        return App::Tls(Box::new(TlsState { sni: None, stream: None, segments: 0, live }));
    }
    match svc {
        Some(Svc::Telnet) => App::Telnet(Box::new(TelnetState {
            strip: [IacStripper::new(), IacStripper::new()],
            phase: TelPhase::Idle,
            user: String::new(),
            typed: 0,
        })),
        Some(s) => match s.line_protocol() {
            Some(proto) => App::Lines(Box::new(LineState { proto, user: None, sasl: Sasl::None, tls: false })),
            None => App::Plain,
        },
        // A server speaking first on an unknown port: maybe TLS answering a hello we missed.
        None if tls_start => App::Tls(Box::new(TlsState { sni: None, stream: None, segments: 0, live })),
        None => App::Plain,
    }
}

#[allow(clippy::too_many_arguments)]
fn fire_creds(
    k: &Pkt,
    em: &mut Emitter,
    out: &mut Vec<Alert>,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    protocol: &'static str,
    user: Option<String>,
) {
    em.fire(
        k.at,
        Key::new(Category::PlaintextCredentials, Some(src), Some(dst), fnv1a(protocol.as_bytes())),
        out,
        || {
            let who = user.as_deref().map_or_else(|| "an unknown user".to_owned(), |u| format!("user {u:?}"));
            Draft::new(format!("{src} sent a cleartext {protocol} password for {who} to {dst} port {dport}"))
                .ports(Some(sport), Some(dport))
                .mac(k.src_mac)
                .ev("protocol", protocol)
                .ev("user", user)
                .ev("password", "redacted")
        },
    );
}

/// `AUTH [user] password` in RESP or inline form: the user name (`default` when absent).
fn redis_auth(payload: &[u8]) -> Option<String> {
    let mut args: [&[u8]; 3] = [&[]; 3];
    let mut n = 0;
    if payload.first() == Some(&b'*') {
        for line in cleartext::lines(payload).skip(1) {
            if line.first() == Some(&b'$') {
                continue;
            }
            if n == 3 {
                break;
            }
            args[n] = line;
            n += 1;
        }
    } else {
        let line = cleartext::lines(payload).next()?;
        for w in line.split(|b| *b == b' ').filter(|w| !w.is_empty()) {
            if n == 3 {
                break;
            }
            args[n] = w;
            n += 1;
        }
    }
    if n < 2 || !args[0].eq_ignore_ascii_case(b"AUTH") {
        return None;
    }
    Some(if n == 3 { clip(&String::from_utf8_lossy(args[1]), MAX_USER) } else { "default".to_owned() })
}

/// SMB1 after the 4-byte NetBIOS session header: `\xffSMB`.
fn is_smb1(payload: &[u8]) -> bool {
    matches!(payload, [0, _, _, _, 0xff, b'S', b'M', b'B', ..])
}

/// The version of an SNMP message (0 = v1, 1 = v2c, 3 = v3): SEQUENCE { INTEGER version … }.
fn snmp_version(p: &[u8]) -> Option<u8> {
    let (&tag, rest) = p.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&len0, rest) = rest.split_first()?;
    let rest = if len0 & 0x80 != 0 { rest.get(usize::from(len0 & 0x7f)..)? } else { rest };
    match rest {
        [0x02, 0x01, v, ..] => Some(*v),
        _ => None,
    }
}

struct TlsCtx<'a, 'p> {
    at: &'a Pkt<'p>,
    client: IpAddr,
    server: IpAddr,
    cport: u16,
    sport: u16,
    min_tls: u16,
    weak: bool,
    cert: bool,
}

fn version_name(v: TlsVersion) -> String {
    v.to_string()
}

fn tls_server_data(
    c: &TlsCtx,
    ts: &mut TlsState,
    payload: &[u8],
    certs: &mut Table<(u64, u16), CertRec>,
    em: &mut Emitter,
    out: &mut Vec<Alert>,
) {
    let Some(stream) = ts.stream.as_mut() else { return };
    stream.push(payload);
    let mut stop = false;
    // Handle at most a few messages per segment; each handled message is owned data here.
    let mut found_version: Option<(TlsVersion, Option<u16>)> = None;
    let mut found_cert: Option<Vec<u8>> = None;
    while let Some(msg) = stream.next_message() {
        match msg {
            Ok(TlsMessage::Handshake(Handshake::ServerHello(sh))) => {
                found_version = Some((sh.selected_version(), Some(sh.cipher_suite)));
            }
            Ok(TlsMessage::Handshake(Handshake::Certificate(list))) => {
                found_cert = list.certs().next().map(<[u8]>::to_vec);
                stop = true;
                break;
            }
            Ok(TlsMessage::Sslv2(Sslv2Hello::Server { version, certificate, .. })) => {
                found_version = Some((version, None));
                if !certificate.is_empty() {
                    found_cert = Some(certificate.to_vec());
                }
                stop = true;
                break;
            }
            Ok(TlsMessage::Handshake(_)) | Ok(TlsMessage::Alert { .. }) | Ok(TlsMessage::Record { .. }) => {}
            Ok(TlsMessage::Sslv2(_)) | Ok(TlsMessage::ChangeCipherSpec) | Err(_) => {
                stop = true;
                break;
            }
        }
    }
    if stream.is_stopped() {
        stop = true;
    }
    if let Some((v, cipher)) = found_version {
        if v.0 >= 0x0304 {
            stop = true; // TLS 1.3: the certificate is encrypted
        }
        let weak = v.0 < c.min_tls && !v.is_grease();
        if c.weak && weak {
            let (client, server, cport, sport) = (c.client, c.server, c.cport, c.sport);
            let sni = ts.sni.clone();
            em.fire(c.at.at, Key::new(Category::WeakTls, Some(client), Some(server), u64::from(sport)), out, || {
                let name = sni.as_deref().map_or_else(String::new, |s| format!(" ({s})"));
                let mut d =
                    Draft::new(format!("{server} port {sport}{name} negotiated {} with {client}", version_name(v)))
                        .ports(Some(cport), Some(sport))
                        .ev("version", version_name(v))
                        .ev("version_wire", format!("0x{:04x}", v.0))
                        .ev("sni", sni);
                if let Some(cs) = cipher {
                    d = d.ev("cipher_suite", format!("0x{cs:04x}"));
                }
                if v == TlsVersion::SSL_2_0 || v == TlsVersion::SSL_3_0 {
                    d = d.severity(Severity::High);
                }
                d
            });
        }
    }
    if let Some(der) = found_cert
        && c.cert
    {
        cert_seen(c, ts.sni.as_deref(), &der, certs, em, out);
    }
    if stop {
        ts.stop();
    }
}

fn cert_seen(
    c: &TlsCtx,
    sni: Option<&str>,
    der: &[u8],
    certs: &mut Table<(u64, u16), CertRec>,
    em: &mut Emitter,
    out: &mut Vec<Alert>,
) {
    let Ok(info) = tls::cert_info(der) else { return };
    let name = match (sni, &info.subject_cn) {
        (Some(s), _) => s.to_owned(),
        (None, Some(cn)) => clip(&cn.to_ascii_lowercase(), 253),
        (None, None) => c.server.to_string(),
    };
    let name_hash = fnv1a_lower(name.as_bytes());
    let now = c.at.now();
    let (rec, new) = certs.get_or_insert_with((name_hash, c.sport), || CertRec { fp: info.sha256, since: now });
    if new || rec.fp == info.sha256 {
        return;
    }
    let old = *rec;
    *rec = CertRec { fp: info.sha256, since: now };
    let (client, server, sport) = (c.client, c.server, c.sport);
    em.fire(
        c.at.at,
        Key::new(Category::TlsCertificateChange, Some(server), None, name_hash ^ u64::from(sport)),
        out,
        || {
            let hex = |fp: &[u8; 32]| fp.iter().map(|b| format!("{b:02x}")).collect::<String>();
            Draft::new(format!(
                "{name} port {sport} presented a different certificate (from {server}) than the one seen {} s earlier",
                crate::ctx::secs(now.saturating_sub(old.since)).round()
            ))
            .ports(Some(sport), None)
            .ev("name", name.clone())
            .ev("old_sha256", hex(&old.fp))
            .ev("new_sha256", info.fingerprint_hex())
            .ev("subject", clip(&info.subject, 256))
            .ev("issuer", clip(&info.issuer, 256))
            .ev("not_before", info.not_before)
            .ev("not_after", info.not_after)
            .ev("client", client.to_string())
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(redis_auth(b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n"), Some("default".into()));
        assert_eq!(redis_auth(b"*3\r\n$4\r\nauth\r\n$5\r\nalice\r\n$6\r\nsecret\r\n"), Some("alice".into()));
        assert_eq!(redis_auth(b"AUTH secret\r\n"), Some("default".into()));
        assert_eq!(redis_auth(b"GET x\r\n"), None);
        assert!(is_smb1(b"\x00\x00\x00\x54\xffSMBr"));
        assert!(!is_smb1(b"\x00\x00\x00\x54\xfeSMB"));
        assert_eq!(snmp_version(&[0x30, 0x26, 0x02, 0x01, 0x01, 0x04]), Some(1));
        assert_eq!(snmp_version(&[0x30, 0x81, 0x26, 0x02, 0x01, 0x00]), Some(0));
        assert_eq!(snmp_version(&[0x31]), None);
    }
}
