//! arp_spoof and gateway_mac_change.
//!
//! **arp_spoof** fires when
//! - an IP's MAC changes: an ARP packet (request or reply) claims an address with another
//!   MAC than the one bound to it less than `binding_ttl_secs` ago. The binding then
//!   follows the new claim, so a tug of war between two MACs keeps firing (subject to the
//!   cooldown), while an address legitimately moved long ago does not;
//! - one MAC keeps sending unsolicited replies for one address: replies nobody asked for
//!   (no matching request within `request_timeout_secs`) or gratuitous ones, at least
//!   `unsolicited_replies` times in the window. A booting host announces itself once to
//!   three times; poisoning tools repeat every few seconds.
//!
//! **gateway_mac_change** fires when the gateway's MAC changes. The gateway MAC is
//! configured, or learned as the link-layer source of packets from external addresses to
//! internal ones (the next hop that delivers the Internet). A change is either an ARP
//! packet claiming the gateway's IP (configured, or learned from the ARP the gateway MAC
//! sends) with another MAC, or such traffic arriving through another MAC `change_packets`
//! times in the window with none through the old one meanwhile (two routers taking turns
//! are not a change); the new MAC is then adopted.

use std::net::{IpAddr, Ipv4Addr};

use vigil_decode::{Arp, MacAddr};
use vigil_model::{Alert, Category};

use crate::config::{ArpSpoofConfig, GatewayConfig, nanos, parse_mac};
use crate::ctx::{Pkt, roll, secs};
use crate::emit::{Draft, Emitter, Key};
use crate::net::{Networks, is_group};
use crate::table::{Hasher, Table};

fn mac_u64(m: MacAddr) -> u64 {
    let b = m.0;
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

fn usable_mac(m: MacAddr) -> bool {
    !m.is_zero() && !m.is_multicast()
}

#[derive(Clone, Copy)]
struct Binding {
    mac: MacAddr,
    last_seen: i64,
}

#[derive(Clone, Copy)]
struct Unsolicited {
    win_start: i64,
    count: u32,
    fired: bool,
}

pub(crate) struct ArpSpoof {
    c: ArpSpoofConfig,
    ttl: i64,
    window: i64,
    timeout: i64,
    bindings: Table<Ipv4Addr, Binding>,
    requests: Table<(Ipv4Addr, Ipv4Addr), i64>,
    unsolicited: Table<(Ipv4Addr, MacAddr), Unsolicited>,
}

impl ArpSpoof {
    pub(crate) fn new(c: &ArpSpoofConfig, budget: u64, h: &Hasher) -> Self {
        ArpSpoof {
            c: c.clone(),
            ttl: nanos(c.binding_ttl_secs),
            window: nanos(c.window_secs),
            timeout: nanos(c.request_timeout_secs),
            bindings: Table::with_budget(budget / 2, h),
            requests: Table::with_budget(budget / 4, h),
            unsolicited: Table::with_budget(budget / 4, h),
        }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        self.bindings.mem_bytes() + self.requests.mem_bytes() + self.unsolicited.mem_bytes()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.bindings.evictions() + self.requests.evictions() + self.unsolicited.evictions()
    }

    pub(crate) fn on_arp(&mut self, k: &Pkt, a: &Arp, em: &mut Emitter, out: &mut Vec<Alert>) {
        if a.sender_ip.is_unspecified() || !usable_mac(a.sender_mac) || a.op > 2 {
            return;
        }
        let now = k.now();
        let ip = a.sender_ip;
        let mac = a.sender_mac;
        if a.op == Arp::OP_REQUEST {
            let (t, _) = self.requests.get_or_insert_with((ip, a.target_ip), || now);
            *t = now;
        }
        // Binding change.
        let (b, new) = self.bindings.get_or_insert_with(ip, || Binding { mac, last_seen: now });
        if !new && b.mac != mac {
            let old = b.mac;
            let age = now.saturating_sub(b.last_seen);
            b.mac = mac;
            b.last_seen = now;
            if (0..=self.ttl).contains(&age) {
                let key = Key::new(Category::ArpSpoof, Some(IpAddr::V4(ip)), None, mac_u64(mac));
                em.fire(k.at, key, out, || {
                    Draft::new(format!("{ip} moved from MAC {old} to {mac} ({} s after it was last seen)", secs(age)))
                        .mac(Some(mac))
                        .ev("ip", ip.to_string())
                        .ev("old_mac", old.to_string())
                        .ev("new_mac", mac.to_string())
                        .ev("arp_op", if a.op == Arp::OP_REPLY { "reply" } else { "request" })
                        .ev("reason", "mac_changed")
                });
            }
        } else {
            b.last_seen = now;
        }
        if a.op != Arp::OP_REPLY {
            return;
        }
        // Solicited: the target asked for the sender's address recently.
        let solicited = !a.is_gratuitous()
            && self
                .requests
                .peek(&(a.target_ip, ip))
                .is_some_and(|&t| now >= t && now.saturating_sub(t) <= self.timeout);
        if solicited {
            self.requests.remove(&(a.target_ip, ip));
            return;
        }
        let window = self.window;
        let (u, _) =
            self.unsolicited.get_or_insert_with((ip, mac), || Unsolicited { win_start: now, count: 0, fired: false });
        if roll(&mut u.win_start, now, window) {
            *u = Unsolicited { win_start: now, count: 0, fired: false };
        }
        u.count += 1;
        if !u.fired && u.count >= self.c.unsolicited_replies {
            u.fired = true;
            let count = u.count;
            let key = Key::new(Category::ArpSpoof, Some(IpAddr::V4(ip)), None, mac_u64(mac) | 1 << 63);
            let victim = a.target_ip;
            em.fire(k.at, key, out, || {
                Draft::new(format!(
                    "MAC {mac} sent {count} unsolicited ARP replies claiming {ip} within {} s",
                    secs(window)
                ))
                .mac(Some(mac))
                .ev("ip", ip.to_string())
                .ev("mac", mac.to_string())
                .ev("unsolicited_replies", count)
                .ev("threshold", self.c.unsolicited_replies)
                .ev("window_secs", secs(window))
                .ev("last_target", victim.to_string())
                .ev("reason", "unsolicited_replies")
            });
        }
    }
}

pub(crate) struct Gateway {
    c: GatewayConfig,
    window: i64,
    ip: Option<Ipv4Addr>,
    mac: Option<MacAddr>,
    configured_mac: bool,
    cand: Option<MacAddr>,
    cand_count: u32,
    other: Option<(MacAddr, i64, u32)>,
    internal: Networks,
}

impl Gateway {
    pub(crate) fn new(c: &GatewayConfig, internal: Networks) -> Self {
        let mac = c.mac.as_deref().and_then(parse_mac);
        let ip = match c.ip {
            Some(IpAddr::V4(v4)) => Some(v4),
            _ => None,
        };
        Gateway {
            c: c.clone(),
            window: nanos(c.window_secs),
            ip,
            mac,
            configured_mac: mac.is_some(),
            cand: None,
            cand_count: 0,
            other: None,
            internal,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fire(
        &self,
        k: &Pkt,
        old: MacAddr,
        new: MacAddr,
        how: &'static str,
        count: u32,
        em: &mut Emitter,
        out: &mut Vec<Alert>,
    ) {
        let ip = self.ip;
        let key = Key::new(Category::GatewayMacChange, ip.map(IpAddr::V4), None, mac_u64(new));
        let window = self.window;
        em.fire(k.at, key, out, || {
            let who = ip.map_or_else(|| "the default gateway".to_owned(), |i| format!("gateway {i}"));
            let d = Draft::new(format!("the MAC of {who} changed from {old} to {new} ({how})"))
                .mac(Some(new))
                .ev("old_mac", old.to_string())
                .ev("new_mac", new.to_string())
                .ev("seen_in", how)
                .ev("gateway_mac_configured", self.configured_mac);
            if how == "next_hop" { d.ev("packets", count).ev("window_secs", secs(window)) } else { d }
        });
    }

    pub(crate) fn on_arp(&mut self, k: &Pkt, a: &Arp, em: &mut Emitter, out: &mut Vec<Alert>) {
        if a.sender_ip.is_unspecified() || !usable_mac(a.sender_mac) || a.op > 2 {
            return;
        }
        let Some(gw_mac) = self.mac else { return };
        if self.ip.is_none() && a.sender_mac == gw_mac && self.internal.contains(IpAddr::V4(a.sender_ip)) {
            self.ip = Some(a.sender_ip); // learned: the address the gateway MAC announces
            return;
        }
        if Some(a.sender_ip) == self.ip && a.sender_mac != gw_mac {
            self.fire(k, gw_mac, a.sender_mac, "arp", 1, em, out);
        }
    }

    pub(crate) fn on_ip(&mut self, k: &Pkt, em: &mut Emitter, out: &mut Vec<Alert>) {
        let (Some(src), Some(dst), Some(m)) = (k.src, k.dst, k.src_mac) else { return };
        // Only traffic from outside delivered into the internal network shows the next hop
        // (on a LAN of public addresses, or at a span port, "external" is everywhere).
        if is_group(src) || self.internal.contains(src) || !self.internal.contains(dst) {
            return;
        }
        let now = k.now();
        match self.mac {
            None => {
                if !self.c.learn {
                    return;
                }
                // Majority vote (Boyer-Moore) over next-hop MACs.
                if self.cand == Some(m) {
                    self.cand_count += 1;
                } else if self.cand_count == 0 {
                    self.cand = Some(m);
                    self.cand_count = 1;
                } else {
                    self.cand_count -= 1;
                }
                if self.cand_count >= self.c.learn_packets {
                    self.mac = self.cand;
                }
            }
            // The old gateway is still delivering: two routers, not a change.
            Some(gw) if gw == m => self.other = None,
            Some(gw) => {
                let window = self.window;
                let o = match &mut self.other {
                    Some(o) if o.0 == m => o,
                    slot => slot.insert((m, now, 0)),
                };
                if roll(&mut o.1, now, window) {
                    o.2 = 0;
                }
                o.2 += 1;
                let count = o.2;
                if count >= self.c.change_packets {
                    self.other = None;
                    self.mac = Some(m);
                    self.fire(k, gw, m, "next_hop", count, em, out);
                }
            }
        }
    }
}
