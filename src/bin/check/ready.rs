//! When a started server is ready: its port accepts connections on loopback.
//!
//! Where the kernel's socket tables can be read (Linux), readiness is read from them,
//! so no connection has to be made: a naive single-client server would serve a probe
//! connection as its one client. Elsewhere a probe connection is made and closed.
//! (`compare` finds an external server's port the same way.)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// The loopback address to drive a server listening on `port` by, once it listens:
/// IPv4 when it listens there (or on a wildcard), else `::1`. `None` while nothing
/// accepts on that port.
pub fn loopback_listener(port: u16) -> Option<SocketAddr> {
    let v4 = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
    let v6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port);
    match listening(port) {
        Some(ips) => {
            if ips.iter().any(|ip| ip.is_unspecified() || *ip == v4.ip()) {
                Some(v4)
            } else if ips.contains(&v6.ip()) {
                Some(v6)
            } else {
                None
            }
        }
        None => [v4, v6]
            .into_iter()
            .find(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok()),
    }
}

/// The addresses listening on `port`, from `/proc/net/tcp` and `tcp6`; `None` where
/// the tables cannot be read or list no socket at all.
fn listening(port: u16) -> Option<Vec<IpAddr>> {
    let mut rows = 0;
    let mut found = Vec::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(table) = std::fs::read_to_string(path) else {
            continue;
        };
        for (local, listens) in sockets(&table) {
            rows += 1;
            if listens && local.port() == port {
                found.push(local.ip());
            }
        }
    }
    (rows > 0).then_some(found)
}

/// The local address of every socket in a `/proc/net/tcp` or `tcp6` table, and whether
/// it is listening (state `0A`). Addresses are hex in the kernel's byte order;
/// IPv4-mapped IPv6 addresses come out as IPv4.
fn sockets(table: &str) -> impl Iterator<Item = (SocketAddr, bool)> + '_ {
    table.lines().skip(1).filter_map(|line| {
        let mut cols = line.split_whitespace().skip(1);
        let (ip, port) = cols.next()?.split_once(':')?;
        let state = cols.nth(1)?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let words: Vec<u32> = (0..ip.len() / 8)
            .map(|i| u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok())
            .collect::<Option<_>>()?;
        let ip: IpAddr = match words[..] {
            [v4] => Ipv4Addr::from(v4.swap_bytes()).into(),
            [_, _, _, _] => {
                let bits = words
                    .iter()
                    .fold(0u128, |bits, w| bits << 32 | w.swap_bytes() as u128);
                let v6 = Ipv6Addr::from(bits);
                v6.to_ipv4_mapped().map_or(v6.into(), Into::into)
            }
            _ => return None,
        };
        Some((SocketAddr::new(ip, port), state == "0A"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Rows as Linux writes them: a listener, a connection, a v6 wildcard listener.
    #[test]
    fn socket_tables_are_read() {
        let tcp = "  sl  local_address rem_address   st\n\
            0: 0100007F:1F90 00000000:0000 0A 00000000:00000000\n\
            1: 0100007F:1F90 0100007F:D431 01 00000000:00000000\n";
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            sockets(tcp).collect::<Vec<_>>(),
            [(local, true), (local, false)]
        );
        let tcp6 = "  sl  local_address                         remote_address   st\n\
            0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A\n";
        let wild: SocketAddr = "[::]:8081".parse().unwrap();
        assert_eq!(sockets(tcp6).collect::<Vec<_>>(), [(wild, true)]);
    }

    /// A real listener is found, and is gone once closed.
    #[test]
    fn finds_a_real_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(loopback_listener(addr.port()), Some(addr));
        drop(listener);
        assert_eq!(loopback_listener(addr.port()), None);
    }
}
