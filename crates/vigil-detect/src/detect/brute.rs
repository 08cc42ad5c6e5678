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

use std::net::IpAddr;

use vigil_decode::{MacAddr, Transport, cleartext};
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
}

pub(crate) struct BruteForce {
    attempts: u32,
    window: i64,
    ports: PortSet,
    table: Table<BfKey, BfState>,
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
        let (key, conn, fails, mac) = if t.flags.is_syn_only() && self.ports.contains(t.dst_port) {
            (BfKey { client: src, server: dst, port: t.dst_port }, 1, 0, k.src_mac)
        } else if !t.payload.is_empty() && self.ports.contains(t.src_port) {
            let f = failures_in(t.src_port, t.payload);
            if f == 0 {
                return;
            }
            (BfKey { client: dst, server: src, port: t.src_port }, 0, f, None)
        } else {
            return;
        };
        let (e, _) = self.table.get_or_insert_with(key, || BfState {
            win_start: now,
            conns: 0,
            failures: 0,
            fired: false,
            mac: None,
        });
        if roll(&mut e.win_start, now, window) {
            *e = BfState { win_start: now, conns: 0, failures: 0, fired: false, mac: None };
        }
        e.conns += conn;
        e.failures += fails;
        e.mac = mac.or(e.mac);
        let attempts = e.conns.max(e.failures);
        if !e.fired && attempts >= self.attempts {
            e.fired = true;
            let e = *e;
            let service = service_name(key.port);
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
