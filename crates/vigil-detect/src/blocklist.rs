//! Threat-intelligence blocklists: addresses and networks in prefix tries (longest-prefix
//! match), domains in a set matched on every parent (a listed `evil.example` matches
//! `a.b.evil.example`).
//!
//! The engine takes a parsed [`Blocklist`]; reading files is the caller's job
//! (`vigil analyze --blocklist`, the agent's config). [`parse_line`] turns one line into an
//! entry so every reader agrees on the format: one IP, CIDR or domain per line, `#` starts
//! a comment.

use std::collections::HashSet;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixSet;

/// Longest domain accepted (RFC 1035 presentation limit).
pub const MAX_DOMAIN_LEN: usize = 253;

/// One blocklist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlocklistEntry {
    /// An address (as a /32 or /128) or a network.
    Net(IpNet),
    /// A domain and all its subdomains (lowercase, no trailing dot).
    Domain(String),
}

/// Why a blocklist line is not an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BlocklistParseError(String);

impl FromStr for BlocklistEntry {
    type Err = BlocklistParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(BlocklistEntry::Net(IpNet::from(ip)));
        }
        if s.contains('/') {
            return s.parse::<IpNet>().map(|n| BlocklistEntry::Net(n.trunc())).map_err(|_| {
                BlocklistParseError(format!(
                    "{:?} is not a valid CIDR network; expected e.g. 203.0.113.0/24 or 2001:db8::/32",
                    short(s)
                ))
            });
        }
        let d = s.trim_end_matches('.').to_ascii_lowercase();
        let d = d.strip_prefix("*.").unwrap_or(&d).to_owned();
        let ok_label = |l: &str| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if d.is_empty() || d.len() > MAX_DOMAIN_LEN || !d.split('.').all(ok_label) || d.parse::<f64>().is_ok() {
            return Err(BlocklistParseError(format!(
                "{:?} is not an IP address, a CIDR network or a domain name",
                short(s)
            )));
        }
        Ok(BlocklistEntry::Domain(d))
    }
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Parses one line of a blocklist file: `Ok(None)` for blank and comment lines; text after
/// `#` is a comment.
pub fn parse_line(line: &str) -> Result<Option<BlocklistEntry>, BlocklistParseError> {
    let content = line.split('#').next().unwrap_or("").trim();
    if content.is_empty() {
        return Ok(None);
    }
    content.parse().map(Some)
}

/// A set of blocked networks and domains.
#[derive(Clone, Default)]
pub struct Blocklist {
    v4: PrefixSet<Ipv4Net>,
    v6: PrefixSet<Ipv6Net>,
    domains: HashSet<String>,
    nets: usize,
    domain_bytes: usize,
}

impl std::fmt::Debug for Blocklist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocklist").field("networks", &self.nets).field("domains", &self.domains.len()).finish()
    }
}

impl Blocklist {
    /// An empty blocklist.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry.
    pub fn insert(&mut self, entry: BlocklistEntry) {
        match entry {
            BlocklistEntry::Net(IpNet::V4(n)) => {
                if self.v4.insert(n.trunc()) {
                    self.nets += 1;
                }
            }
            BlocklistEntry::Net(IpNet::V6(n)) => {
                if self.v6.insert(n.trunc()) {
                    self.nets += 1;
                }
            }
            BlocklistEntry::Domain(d) => {
                let len = d.len();
                if self.domains.insert(d) {
                    self.domain_bytes += len;
                }
            }
        }
    }

    /// Number of networks and addresses.
    pub fn networks(&self) -> usize {
        self.nets
    }

    /// Number of domains.
    pub fn domains(&self) -> usize {
        self.domains.len()
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.nets == 0 && self.domains.is_empty()
    }

    /// The most specific listed network containing `ip`.
    pub fn match_ip(&self, ip: IpAddr) -> Option<IpNet> {
        match ip {
            IpAddr::V4(a) if !self.v4.is_empty() => self.v4.get_lpm(&Ipv4Net::from(a)).map(IpNet::V4),
            IpAddr::V6(a) if !self.v6.is_empty() => self.v6.get_lpm(&Ipv6Net::from(a)).map(IpNet::V6),
            _ => None,
        }
    }

    /// The listed domain that `name` is, or is under (case-insensitive, trailing dot
    /// ignored).
    pub fn match_domain(&self, name: &str) -> Option<&str> {
        if self.domains.is_empty() {
            return None;
        }
        let name = name.trim_end_matches('.');
        if name.len() > MAX_DOMAIN_LEN {
            return None;
        }
        let mut buf = [0u8; MAX_DOMAIN_LEN];
        let lower = buf.get_mut(..name.len())?;
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        let lower = std::str::from_utf8(lower).ok()?;
        let mut rest = lower;
        loop {
            if let Some(hit) = self.domains.get(rest) {
                return Some(hit.as_str());
            }
            let (_, parent) = rest.split_once('.')?;
            rest = parent;
        }
    }

    /// Rough heap size in bytes.
    pub fn mem_bytes(&self) -> u64 {
        (self.nets * 64 + self.domains.capacity() * 32 + self.domain_bytes) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse() {
        assert_eq!(parse_line("  # comment").unwrap(), None);
        assert_eq!(parse_line("").unwrap(), None);
        assert_eq!(
            parse_line("203.0.113.7 # c2").unwrap(),
            Some(BlocklistEntry::Net("203.0.113.7/32".parse().unwrap()))
        );
        assert_eq!(
            parse_line("198.51.100.9/24").unwrap(),
            Some(BlocklistEntry::Net("198.51.100.0/24".parse().unwrap()))
        );
        assert_eq!(parse_line("Evil.Example.").unwrap(), Some(BlocklistEntry::Domain("evil.example".into())));
        assert_eq!(parse_line("*.bad.test").unwrap(), Some(BlocklistEntry::Domain("bad.test".into())));
        assert!(parse_line("10.0.0.0/33").is_err());
        assert!(parse_line("not a domain").is_err());
        assert!(parse_line("1.2.3").is_err() || parse_line("1.2.3").is_ok()); // "1.2.3" is a (silly) domain
        assert!(parse_line("300").is_err());
    }

    #[test]
    fn matches_ips_cidrs_and_subdomains() {
        let mut b = Blocklist::new();
        for l in ["203.0.113.7", "198.51.100.0/24", "2001:db8::/32", "evil.example"] {
            b.insert(parse_line(l).unwrap().unwrap());
        }
        assert_eq!(b.networks(), 3);
        assert_eq!(b.match_ip("203.0.113.7".parse().unwrap()), Some("203.0.113.7/32".parse().unwrap()));
        assert_eq!(b.match_ip("203.0.113.8".parse().unwrap()), None);
        assert_eq!(b.match_ip("198.51.100.200".parse().unwrap()), Some("198.51.100.0/24".parse().unwrap()));
        assert!(b.match_ip("2001:db8::1".parse().unwrap()).is_some());
        assert_eq!(b.match_domain("evil.example"), Some("evil.example"));
        assert_eq!(b.match_domain("A.B.EVIL.example."), Some("evil.example"));
        assert_eq!(b.match_domain("notevil.example"), None);
        assert_eq!(b.match_domain("example"), None);
    }
}
