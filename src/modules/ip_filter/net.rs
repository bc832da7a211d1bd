//! Addresses and CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`, a bare address), and the client's
//! address behind trusted proxies.

use std::net::IpAddr;

/// A network: an address and a prefix length. An IPv4-mapped IPv6 client (`::ffff:10.0.0.1`)
/// matches IPv4 networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    pub fn parse(text: &str) -> Result<Net, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0..={max}"))?,
        };
        Ok(Net { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

pub fn any_contains(nets: &[Net], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(ip))
}

/// The client's address: the peer's, unless the peer is a trusted proxy and sent `header`. In a
/// forwarded chain (`client, proxy1, proxy2`) the client is the rightmost address that is not a
/// trusted proxy: the ones left of it were written by whoever sent the request and prove nothing.
pub fn client_address(peer: IpAddr, header: Option<&str>, trusted: &[Net]) -> IpAddr {
    if !any_contains(trusted, peer) {
        return peer;
    }
    let Some(header) = header else {
        return peer;
    };
    let hops: Vec<IpAddr> = header
        .split(',')
        .filter_map(|hop| parse_hop(hop.trim()))
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !any_contains(trusted, **ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

/// One hop of a forwarded header: an address, maybe with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    hop.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_their_addresses() {
        let net = Net::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        assert!(Net::parse("0.0.0.0/0").is_ok_and(|n| n.contains(ip("8.8.8.8"))));
        assert!(Net::parse("2001:db8::/32").is_ok_and(|n| n.contains(ip("2001:db8::1"))));
        assert!(Net::parse("203.0.113.7").is_ok_and(|n| !n.contains(ip("203.0.113.8"))));
        assert!(Net::parse("10.0.0.0/33").is_err());
        assert!(Net::parse("ten").is_err());
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let trusted = vec![Net::parse("127.0.0.1").unwrap()];
        let header = Some("6.6.6.6, 198.51.100.4, 127.0.0.1");
        assert_eq!(
            client_address(ip("127.0.0.1"), header, &trusted),
            ip("198.51.100.4")
        );
        assert_eq!(
            client_address(ip("192.0.2.1"), header, &trusted),
            ip("192.0.2.1")
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), None, &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), Some("[2001:db8::5]:443"), &trusted),
            ip("2001:db8::5")
        );
    }
}
