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
    let sockets = cli::process::tcp_sockets()?;
    let listening = sockets
        .into_iter()
        .filter(|&(local, l)| l && local.port() == port);
    Some(listening.map(|(local, _)| local.ip()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

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
