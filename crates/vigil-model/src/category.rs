use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Severity;

macro_rules! categories {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $sev:ident, $mitre:literal; )*) => {
        /// The kind of an alert (DESIGN.md §4). Serialized as its snake_case name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Category {
            $( $(#[$doc])* $variant, )*
        }

        impl Category {
            /// Every category, in declaration order.
            pub const ALL: &'static [Category] = &[$(Category::$variant),*];

            /// The snake_case name used in JSON, the API and configuration.
            pub fn as_str(self) -> &'static str {
                match self { $(Category::$variant => $name,)* }
            }

            /// The severity an alert of this category gets unless a detector says otherwise.
            pub fn default_severity(self) -> Severity {
                match self { $(Category::$variant => Severity::$sev,)* }
            }

            /// The MITRE ATT&CK technique this category maps to, when there is one.
            pub fn mitre(self) -> Option<&'static str> {
                let m = match self { $(Category::$variant => $mitre,)* };
                if m.is_empty() { None } else { Some(m) }
            }
        }

        impl FromStr for Category {
            type Err = CategoryParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Category::$variant),)*
                    _ => Err(CategoryParseError(s.chars().take(64).collect())),
                }
            }
        }
    };
}

categories! {
    /// Many destination ports probed from one source.
    PortScan = "port_scan", Medium, "T1046";
    /// SYN-only packets at a flood rate.
    SynFlood = "syn_flood", High, "T1498.001";
    /// ICMP echo requests at a flood rate.
    IcmpFlood = "icmp_flood", High, "T1498.001";
    /// Traffic to or from known backdoor or C2 ports.
    SuspiciousPort = "suspicious_port", Medium, "T1571";
    /// An IP address's MAC changes, or several MACs claim one IP.
    ArpSpoof = "arp_spoof", High, "T1557.002";
    /// The default gateway's MAC address changed.
    GatewayMacChange = "gateway_mac_change", High, "T1557.002";
    /// DNS used as a tunnel.
    DnsTunnel = "dns_tunnel", High, "T1071.004";
    /// Forged or conflicting DNS answers.
    DnsSpoof = "dns_spoof", High, "T1557";
    /// Large outbound volume from one internal host.
    DataExfiltration = "data_exfiltration", High, "T1048";
    /// Many login attempts against an authentication service.
    BruteForce = "brute_force", High, "T1110";
    /// Duplicate or conflicting TCP sessions.
    SessionHijack = "session_hijack", High, "T1563";
    /// Malformed or impossible packets.
    PacketAnomaly = "packet_anomaly", Low, "";
    /// Cleartext protocols in use.
    InsecureProtocol = "insecure_protocol", Low, "T1040";
    /// Plain HTTP carrying requests.
    UnencryptedHttp = "unencrypted_http", Info, "T1040";
    /// Credentials sent in clear.
    PlaintextCredentials = "plaintext_credentials", High, "T1552";
    /// A server's certificate changed for the same name.
    TlsCertificateChange = "tls_certificate_change", Medium, "T1557";
    /// An obsolete TLS or SSL version negotiated.
    WeakTls = "weak_tls", Medium, "T1573";
    /// Traffic to or from a blocklisted address or domain.
    ThreatIntelMatch = "threat_intel_match", High, "T1071";
    /// CPU usage over threshold, sustained.
    HostCpuHigh = "host_cpu_high", Medium, "T1496";
    /// Memory usage over threshold, sustained.
    HostMemoryHigh = "host_memory_high", Medium, "";
    /// Disk usage over threshold, sustained.
    HostDiskHigh = "host_disk_high", Medium, "";
    /// Deviation from a learned traffic baseline.
    TrafficSpike = "traffic_spike", Medium, "";
    /// A multivariate anomaly in an agent's metrics.
    MetricAnomaly = "metric_anomaly", Medium, "";
    /// Many alerts from several agents against one target.
    DosSuspected = "dos_suspected", Critical, "T1498";
    /// An agent missed its heartbeats.
    AgentOffline = "agent_offline", Medium, "";
    /// A message failed to open (tampered, truncated or wrong key).
    IntegrityFailure = "integrity_failure", High, "T1565.002";
    /// A message was replayed or arrived outside the clock-skew window.
    ReplayAttempt = "replay_attempt", High, "T1557";
    /// Something touched the honeypot.
    HoneypotContact = "honeypot_contact", High, "";
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`Category`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown alert category {0:?}; expected a snake_case name such as port_scan or host_cpu_high")]
pub struct CategoryParseError(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_and_serde() {
        for &c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Category>(&json).unwrap(), c);
        }
        assert!("nope".parse::<Category>().is_err());
    }

    #[test]
    fn mitre_ids_look_like_techniques() {
        for &c in Category::ALL {
            if let Some(m) = c.mitre() {
                assert!(m.starts_with('T') && m[1..5].bytes().all(|b| b.is_ascii_digit()), "{c}: {m}");
            }
        }
    }
}
