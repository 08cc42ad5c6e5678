//! threat_intel_match: traffic to or from a listed address or network, DNS queries for a
//! listed domain (or a subdomain), TLS SNI and HTTP Host naming one.

use std::sync::Arc;

use vigil_decode::{Transport, http, tls};
use vigil_model::{Alert, Category};

use crate::blocklist::Blocklist;
use crate::ctx::Pkt;
use crate::detect::dns::dns_message;
use crate::emit::{Draft, Emitter, Key};
use crate::net::fnv1a;

pub(crate) struct Intel {
    list: Arc<Blocklist>,
}

impl Intel {
    pub(crate) fn new(list: Arc<Blocklist>) -> Self {
        Intel { list }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        self.list.mem_bytes()
    }

    pub(crate) fn on_packet(&mut self, k: &Pkt, em: &mut Emitter, out: &mut Vec<Alert>) {
        if self.list.is_empty() {
            return;
        }
        let (src, dst) = (k.src, k.dst);
        if self.list.networks() > 0 {
            for (ip, role) in [(src, "source"), (dst, "destination")] {
                let Some(ip) = ip else { continue };
                if let Some(net) = self.list.match_ip(ip) {
                    let entry = net.to_string();
                    em.fire(k.at, Key::new(Category::ThreatIntelMatch, src, dst, fnv1a(entry.as_bytes())), out, || {
                        let peer = if role == "source" { dst } else { src };
                        let peer = peer.map_or_else(|| "?".to_owned(), |p| p.to_string());
                        Draft::new(format!("traffic between blocklisted {ip} ({entry}) and {peer}"))
                            .ports(k.p.src_port(), k.p.dst_port())
                            .mac(k.src_mac)
                            .ev("indicator", ip.to_string())
                            .ev("list_entry", entry.clone())
                            .ev("matched", role)
                            .ev("kind", "address")
                    });
                }
            }
        }
        if self.list.domains() == 0 {
            return;
        }
        let (name, via) = match &k.p.transport {
            Transport::Udp(_) | Transport::Tcp(_) if k.p.dst_port() == Some(53) => {
                let Some((m, _, _)) = dns_message(k) else { return };
                if m.is_response() {
                    return;
                }
                let Some(q) = m.question() else { return };
                (q.name.to_lowercase_string(), "dns_query")
            }
            Transport::Tcp(t) if t.payload.first() == Some(&22) => {
                let Some(sni) = tls::client_hello(t.payload).and_then(|ch| ch.sni()) else { return };
                (sni.to_ascii_lowercase(), "tls_sni")
            }
            Transport::Tcp(t) if http::looks_like_request(t.payload) => {
                let Some(host) = http::parse_request(t.payload).ok().and_then(|r| r.host) else { return };
                let host = host
                    .rsplit_once(':')
                    .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                    .map_or(host, |(h, _)| h);
                (host.to_ascii_lowercase(), "http_host")
            }
            _ => return,
        };
        let Some(entry) = self.list.match_domain(&name) else { return };
        let entry = entry.to_owned();
        em.fire(k.at, Key::new(Category::ThreatIntelMatch, src, dst, fnv1a(entry.as_bytes())), out, || {
            let who = src.map_or_else(|| "?".to_owned(), |s| s.to_string());
            Draft::new(format!("{who} looked up or contacted blocklisted domain {name} ({via})"))
                .ports(k.p.src_port(), k.p.dst_port())
                .mac(k.src_mac)
                .ev("indicator", name.chars().take(253).collect::<String>())
                .ev("list_entry", entry.clone())
                .ev("matched", via)
                .ev("kind", "domain")
        });
    }
}
