//! suspicious_port: traffic to or from a known backdoor / C2 port.
//!
//! A TCP port counts once it shows a live service: it answers (SYN-ACK) or carries data.
//! A scan sweeping past 4444 is the port scanner's business, not an open backdoor. UDP
//! counts with any payload. The side on the listed port is the server; the alert's source
//! is the other side (the client), its target the server and the port. A listed port
//! talking to a well-known port (below 1024) is a client's ephemeral port that happens to
//! be listed, and is ignored.

use std::net::IpAddr;

use vigil_decode::Transport;
use vigil_model::{Alert, Category};

use crate::config::SuspiciousPortConfig;
use crate::ctx::{Pkt, PortSet};
use crate::emit::{Draft, Emitter, Key};

pub(crate) struct SuspiciousPort {
    ports: PortSet,
    any: bool,
}

impl SuspiciousPort {
    pub(crate) fn new(c: &SuspiciousPortConfig) -> Self {
        SuspiciousPort { ports: PortSet::new(&c.ports), any: !c.ports.is_empty() }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        8192
    }

    pub(crate) fn on_packet(&mut self, k: &Pkt, em: &mut Emitter, out: &mut Vec<Alert>) {
        if !self.any {
            return;
        }
        let (sport, dport, proto, live, bytes) = match &k.p.transport {
            Transport::Tcp(t) => {
                (t.src_port, t.dst_port, "tcp", !t.payload.is_empty() || t.flags.is_syn_ack(), t.payload.len())
            }
            Transport::Udp(u) => (u.src_port, u.dst_port, "udp", !u.payload.is_empty(), u.payload.len()),
            _ => return,
        };
        if !live {
            return;
        }
        let (Some(src), Some(dst)) = (k.src, k.dst) else { return };
        // The listed port's side is the server.
        // A listed port facing a well-known service port (< 1024) is a client's ephemeral
        // port that happens to be on the list (an FTP client on 2745), not a backdoor.
        let (client, server, port, outbound): (IpAddr, IpAddr, u16, bool) =
            if self.ports.contains(dport) && (sport >= 1024 || dport < 1024) {
                (src, dst, dport, true)
            } else if self.ports.contains(sport) && (dport >= 1024 || sport < 1024) {
                (dst, src, sport, false)
            } else {
                return;
            };
        let key = Key::new(Category::SuspiciousPort, Some(client), Some(server), u64::from(port));
        em.fire(k.at, key, out, || {
            Draft::new(format!("{client} exchanged {proto} traffic with {server} on suspicious port {port}"))
                .ports(None, Some(port))
                .mac(if outbound { k.src_mac } else { None })
                .ev("port", port)
                .ev("protocol", proto)
                .ev("direction", if outbound { "to_port" } else { "from_port" })
                .ev("payload_bytes", bytes)
        });
    }
}
