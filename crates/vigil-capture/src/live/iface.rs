//! Choosing an interface (the default route's) and naming missing capabilities.

use std::fmt;

use super::LiveError;

/// A Linux capability live capture needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Open packet sockets.
    NetRaw,
    /// Change interface flags (promiscuous mode).
    NetAdmin,
}

impl Capability {
    /// Bit number in the capability sets.
    fn bit(self) -> u32 {
        match self {
            Capability::NetAdmin => 12,
            Capability::NetRaw => 13,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::NetRaw => "CAP_NET_RAW",
            Capability::NetAdmin => "CAP_NET_ADMIN",
        })
    }
}

/// The capabilities capture needs that this process lacks in its effective set, read
/// from `/proc/self/status` (empty when they are all there, or when the file cannot be
/// read: then the socket calls themselves will say).
pub fn missing_capabilities(promiscuous: bool) -> Vec<Capability> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return Vec::new() };
    let Some(eff) = parse_cap_eff(&status) else { return Vec::new() };
    let mut want = vec![Capability::NetRaw];
    if promiscuous {
        want.push(Capability::NetAdmin);
    }
    want.into_iter().filter(|c| eff & (1u64 << c.bit()) == 0).collect()
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

/// The command that grants this binary what capture needs.
pub fn setcap_command() -> String {
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "/path/to/vigil".into());
    format!("sudo setcap cap_net_raw,cap_net_admin=eip {exe}")
}

/// The interface of the default route: IPv4 first (`/proc/net/route`), then IPv6.
pub fn default_route_interface() -> Result<String, LiveError> {
    let v4 = std::fs::read_to_string("/proc/net/route").ok().and_then(|t| parse_ipv4_routes(&t));
    if let Some(i) = v4 {
        return Ok(i);
    }
    std::fs::read_to_string("/proc/net/ipv6_route")
        .ok()
        .and_then(|t| parse_ipv6_routes(&t))
        .ok_or(LiveError::NoDefaultRoute)
}

/// The interface of the IPv4 default route (destination and mask 0, up) with the lowest
/// metric, from the text of `/proc/net/route`.
pub fn parse_ipv4_routes(text: &str) -> Option<String> {
    const RTF_UP: u32 = 0x1;
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (iface, dest, flags, metric, mask) = (f.first()?, f.get(1)?, f.get(3)?, f.get(6)?, f.get(7)?);
            let flags = u32::from_str_radix(flags, 16).ok()?;
            let up_default = *dest == "00000000" && *mask == "00000000" && flags & RTF_UP != 0;
            up_default.then(|| (metric.parse::<u32>().unwrap_or(u32::MAX), (*iface).to_owned()))
        })
        .min()
        .map(|(_, i)| i)
}

/// The interface of the IPv6 default route (`::/0`, up, not via `lo`) with the lowest
/// metric, from the text of `/proc/net/ipv6_route`.
pub fn parse_ipv6_routes(text: &str) -> Option<String> {
    const RTF_UP: u32 = 0x1;
    const RTF_REJECT: u32 = 0x200;
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dest, plen, metric, flags, iface) = (f.first()?, f.get(1)?, f.get(5)?, f.get(8)?, f.get(9)?);
            let flags = u32::from_str_radix(flags, 16).ok()?;
            let ok = dest.bytes().all(|b| b == b'0')
                && *plen == "00"
                && flags & RTF_UP != 0
                && flags & RTF_REJECT == 0
                && *iface != "lo";
            ok.then(|| (u32::from_str_radix(metric, 16).unwrap_or(u32::MAX), (*iface).to_owned()))
        })
        .min()
        .map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_up_default_route_with_the_lowest_metric() {
        let t = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                 eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                 wlan0\t00000000\t010200C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
                 eth1\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                 down0\t00000000\t010200C0\t0002\t0\t0\t1\t00000000\t0\t0\t0\n";
        assert_eq!(parse_ipv4_routes(t).as_deref(), Some("eth1"));
        assert_eq!(parse_ipv4_routes("Iface\tDestination\n"), None);
        assert_eq!(parse_ipv4_routes("garbage\nx y\n\n"), None);
    }

    #[test]
    fn ipv6_default_route_skips_reject_and_loopback() {
        let t = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n\
                 20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
                 00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n";
        assert_eq!(parse_ipv6_routes(t).as_deref(), Some("eth0"));
        assert_eq!(parse_ipv6_routes(""), None);
    }

    #[test]
    fn reads_the_effective_capability_set() {
        let s = "Name:\tvigil\nCapInh:\t0000000000000000\nCapEff:\t0000000000003000\n";
        assert_eq!(parse_cap_eff(s), Some(0x3000));
        assert_eq!(parse_cap_eff("CapEff:\tzz\n"), None);
        assert_eq!(Capability::NetRaw.to_string(), "CAP_NET_RAW");
        assert!(setcap_command().contains("setcap cap_net_raw,cap_net_admin=eip "));
    }
}
