//! Who may connect: `--allow` and `--deny` lists of networks, as ncat has
//! them. With any `--allow`, only matching peers are served; a `--deny`
//! match always wins. A refused peer gets `ERR forbidden` and is closed, and
//! never takes a client's seat.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The allow and deny lists; the default lets everyone in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl Access {
    /// Lets `net` in (and, from the first call on, only what is allowed).
    pub fn allow(&mut self, net: Net) {
        self.allow.push(net.0);
    }

    /// Keeps `net` out, whatever is allowed.
    pub fn deny(&mut self, net: Net) {
        self.deny.push(net.0);
    }

    /// Whether a peer at `ip` may connect. An IPv4 client of a dual-stack
    /// listener arrives as `::ffff:a.b.c.d`, and is judged as `a.b.c.d`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let matches = |nets: &[IpNet]| nets.iter().any(|net| net.contains(&ip));
        !matches(&self.deny) && (self.allow.is_empty() || matches(&self.allow))
    }
}

/// A network as `--allow` and `--deny` take it: `10.0.0.0/8`, `::1/128`, or
/// a single address (`127.0.0.1`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net(IpNet);

impl FromStr for Net {
    type Err = String;

    fn from_str(text: &str) -> Result<Net, String> {
        let text = text.trim();
        let net = IpNet::from_str(text)
            .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
            .map_err(|_| format!("`{text}` is not an address or network (10.0.0.0/8, ::1)"))?;
        Ok(Net(canonical(net.trunc())))
    }
}

/// Peers are judged by their canonical address (an IPv4 client of a
/// dual-stack listener as IPv4), so a network written in IPv4-mapped form
/// (`::ffff:127.0.0.1`, `::ffff:0:0/96`) is its IPv4 network.
fn canonical(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        _ => net,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(allow: &[&str], deny: &[&str]) -> Access {
        let mut access = Access::default();
        allow.iter().for_each(|n| access.allow(n.parse().unwrap()));
        deny.iter().for_each(|n| access.deny(n.parse().unwrap()));
        access
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Everyone by default; with an allow list only its networks; a deny
    /// always wins; mapped IPv4 is judged as IPv4.
    #[test]
    fn allow_and_deny() {
        assert!(access(&[], &[]).permits(ip("192.0.2.1")));
        let only_ten = access(&["10.0.0.0/8"], &[]);
        assert!(only_ten.permits(ip("10.1.2.3")));
        assert!(!only_ten.permits(ip("127.0.0.1")));
        let v6_only = access(&["::1"], &["127.0.0.1"]);
        assert!(v6_only.permits(ip("::1")));
        assert!(!v6_only.permits(ip("127.0.0.1")));
        assert!(!v6_only.permits(ip("::ffff:127.0.0.1")));
        // Networks written IPv4-mapped match the IPv4 peers they name.
        let mapped = access(&[], &["::ffff:127.0.0.1"]);
        assert!(!mapped.permits(ip("127.0.0.1")));
        assert!(!mapped.permits(ip("::ffff:127.0.0.1")));
        assert!(!access(&[], &["::ffff:0:0/96"]).permits(ip("10.0.0.1")));
        assert!(access(&["::ffff:10.0.0.0/104"], &[]).permits(ip("10.2.3.4")));
        let deny_wins = access(&["127.0.0.0/8"], &["127.0.0.1/32"]);
        assert!(!deny_wins.permits(ip("127.0.0.1")));
        assert!(deny_wins.permits(ip("127.0.0.2")));
    }

    /// Networks, single addresses and bad text parse as expected.
    #[test]
    fn nets_parse() {
        assert!("10.0.0.0/8".parse::<Net>().is_ok());
        assert!("::1/128".parse::<Net>().is_ok());
        assert!("127.0.0.1".parse::<Net>().is_ok());
        assert!("10.0.0.0/33".parse::<Net>().is_err());
        assert!("localhost".parse::<Net>().is_err());
    }
}
