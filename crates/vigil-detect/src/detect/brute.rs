//! brute_force: many connection attempts, or failed logins, from one source against one
//! authentication service.
//!
//! Two counters per (client, server, service port) share one window: new connections (TCP
//! SYN) and failed-login replies the server sends in clear (FTP `530`, SMTP `535`, POP3
//! `-ERR`, IMAP tagged `NO`, Telnet "Login incorrect", MySQL "Access denied", PostgreSQL
//! "password authentication failed", Redis `WRONGPASS`). The attempt count is the larger of
//! the two: a tool reusing one connection for many passwords is caught by the replies, one
//! opening a connection per password (SSH, RDP: encrypted, no readable reply) by the SYNs,
//! and a failed login on its own connection counts once, not twice.
//!
//! **HTTP authentication** (Basic, Digest, NTLM: hydra's `http-get`, WinRM), on any port: a
//! `401` reply counts as a failed login when the request before it carried credentials
//! that differ from the previous ones on that (client, server, port). A guessing tool
//! changes the password on every try; a client polling with one expired token repeats the
//! same credentials and counts once. Only a keyed 64-bit hash of the `Authorization` value
//! is kept, in memory, to tell credentials apart; never the value.

use std::net::IpAddr;

use vigil_decode::{MacAddr, Tcp, Transport, cleartext, http};
use vigil_model::{Alert, Category};

use crate::config::{BruteForceConfig, nanos};
use crate::ctx::{Pkt, PortSet, roll, secs};
use crate::emit::{Draft, Emitter, Key};
use crate::table::{Hasher, Table};

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct BfKey {
    client: IpAddr,
    server: IpAddr,
    port: u16,
}

#[derive(Clone, Copy)]
struct BfState {
    win_start: i64,
    conns: u32,
    failures: u32,
    fired: bool,
    mac: Option<MacAddr>,
    /// Keyed hash of the last HTTP credentials sent (0: none yet).
    last_cred: u64,
    /// New HTTP credentials were sent and no reply has been counted for them yet.
    cred_pending: bool,
    /// The failures are HTTP `401` replies.
    http: bool,
}

impl BfState {
    fn new(now: i64) -> Self {
        BfState {
            win_start: now,
            conns: 0,
            failures: 0,
            fired: false,
            mac: None,
            last_cred: 0,
            cred_pending: false,
            http: false,
        }
    }
}

pub(crate) struct BruteForce {
    attempts: u32,
    window: i64,
    ports: PortSet,
    table: Table<BfKey, BfState>,
    /// Keys the credential fingerprints (a random seed per engine, like the tables').
    cred_hasher: Hasher,
}

/// An HTTP status line saying 401 Unauthorized.
fn is_http_401(payload: &[u8]) -> bool {
    payload.starts_with(b"HTTP/1.") && payload.get(8..13).is_some_and(|s| s == b" 401 " || s == b" 401\r")
}

/// Service name for the evidence.
pub(crate) fn service_name(port: u16) -> &'static str {
    match port {
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        25 | 465 | 587 => "smtp",
        110 | 995 => "pop3",
        143 | 993 => "imap",
        139 | 445 => "smb",
        389 | 636 => "ldap",
        1433 => "mssql",
        3306 => "mysql",
        3389 => "rdp",
        5432 => "postgresql",
        5900..=5903 => "vnc",
        5985 | 5986 => "winrm",
        6379 => "redis",
        _ => "other",
    }
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// Failed-login replies in one server payload.
fn failures_in(port: u16, payload: &[u8]) -> u32 {
    if payload.is_empty() || payload.len() > 4096 {
        return 0;
    }
    let mut n = 0u32;
    match port {
        21 | 25 | 465 | 587 | 110 | 143 => {
            for line in cleartext::lines(payload) {
                let hit = match port {
                    21 => line.starts_with(b"530"),
                    110 => line.starts_with(b"-ERR"),
                    143 => {
                        // "<tag> NO ..." (untagged "* NO" is a warning, not a failure)
                        let mut it = line.splitn(3, |b| *b == b' ');
                        let tag = it.next().unwrap_or_default();
                        tag != b"*" && it.next().is_some_and(|w| w.eq_ignore_ascii_case(b"NO"))
                    }
                    _ => line.starts_with(b"535"),
                };
                n += u32::from(hit);
            }
        }
        23 => {
            n += u32::from(contains_ci(payload, b"login incorrect") || contains_ci(payload, b"login failed"));
        }
        3306 => n += u32::from(contains_ci(payload, b"access denied for user")),
        5432 => n += u32::from(contains_ci(payload, b"password authentication failed")),
        6379 => n += u32::from(payload.starts_with(b"-WRONGPASS") || payload.starts_with(b"-ERR invalid password")),
        _ => {}
    }
    n
}

impl BruteForce {
    pub(crate) fn new(c: &BruteForceConfig, budget: u64, h: &Hasher) -> Self {
        BruteForce {
            attempts: c.attempts,
            window: nanos(c.window_secs),
            ports: PortSet::new(&c.ports),
            table: Table::with_budget(budget, h),
            cred_hasher: h.clone(),
        }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        self.table.mem_bytes()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.table.evictions()
    }

    pub(crate) fn on_packet(&mut self, k: &Pkt, em: &mut Emitter, out: &mut Vec<Alert>) {
        let Transport::Tcp(t) = &k.p.transport else { return };
        let (Some(src), Some(dst)) = (k.src, k.dst) else { return };
        let now = k.now();
        let window = self.window;
        let (key, conn, fails, mac, via_http) = if t.flags.is_syn_only() && self.ports.contains(t.dst_port) {
            (BfKey { client: src, server: dst, port: t.dst_port }, 1, 0, k.src_mac, false)
        } else if t.payload.is_empty() {
            return;
        } else if let Some(f) =
            self.ports.contains(t.src_port).then(|| failures_in(t.src_port, t.payload)).filter(|f| *f > 0)
        {
            (BfKey { client: dst, server: src, port: t.src_port }, 0, f, None, false)
        } else if self.http_failure(k, src, dst, t, now) {
            (BfKey { client: dst, server: src, port: t.src_port }, 0, 1, None, true)
        } else {
            return;
        };
        let (e, _) = self.table.get_or_insert_with(key, || BfState::new(now));
        if roll(&mut e.win_start, now, window) {
            *e = BfState { last_cred: e.last_cred, ..BfState::new(now) };
        }
        e.conns += conn;
        e.failures += fails;
        e.http |= via_http;
        e.mac = mac.or(e.mac);
        let attempts = e.conns.max(e.failures);
        if !e.fired && attempts >= self.attempts {
            e.fired = true;
            let e = *e;
            let service = if e.http { "http" } else { service_name(key.port) };
            em.fire(
                k.at,
                Key::new(Category::BruteForce, Some(key.client), Some(key.server), u64::from(key.port)),
                out,
                || {
                    Draft::new(format!(
                        "{} made {attempts} login attempts against {service} on {} port {} within {} s",
                        key.client,
                        key.server,
                        key.port,
                        secs(window)
                    ))
                    .ports(None, Some(key.port))
                    .mac(e.mac)
                    .ev("attempts", attempts)
                    .ev("connections", e.conns)
                    .ev("failed_logins", e.failures)
                    .ev("service", service)
                    .ev("threshold", self.attempts)
                    .ev("window_secs", secs(window))
                },
            );
        }
    }
}

impl BruteForce {
    /// Notes the credentials of an HTTP request; true for a `401` reply to credentials not
    /// counted yet (see the module docs). Touches the table only for requests that carry
    /// an `Authorization` header and for 401s on pairs that sent one.
    fn http_failure(&mut self, k: &Pkt, src: IpAddr, dst: IpAddr, t: &Tcp, now: i64) -> bool {
        if is_http_401(t.payload) {
            let key = BfKey { client: dst, server: src, port: t.src_port };
            return match self.table.get_mut(&key) {
                Some(e) if e.cred_pending => {
                    e.cred_pending = false;
                    true
                }
                _ => false,
            };
        }
        if !http::looks_like_request(t.payload) {
            return false;
        }
        let Some(auth) = http::parse_request(t.payload).ok().and_then(|r| r.header("authorization")) else {
            return false;
        };
        let fp = self.cred_hasher.hash_one(auth).max(1);
        let (e, _) =
            self.table.get_or_insert_with(BfKey { client: src, server: dst, port: t.dst_port }, || BfState::new(now));
        if e.last_cred != fp {
            e.last_cred = fp;
            e.cred_pending = true;
        }
        e.mac = k.src_mac.or(e.mac);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_markers() {
        assert_eq!(failures_in(21, b"530 Login incorrect.\r\n"), 1);
        assert_eq!(failures_in(21, b"230 Login successful.\r\n"), 0);
        assert_eq!(failures_in(143, b"a001 NO [AUTHENTICATIONFAILED] Invalid\r\n"), 1);
        assert_eq!(failures_in(143, b"* NO warning\r\n"), 0);
        assert_eq!(failures_in(110, b"-ERR bad\r\n"), 1);
        assert_eq!(failures_in(587, b"535 5.7.8 Error\r\n"), 1);
        assert_eq!(failures_in(23, b"\r\nLogin incorrect\r\n"), 1);
        assert_eq!(failures_in(22, b"SSH-2.0-x"), 0);
    }
}
