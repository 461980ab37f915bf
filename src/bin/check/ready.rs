//! When a started server is ready: its port accepts connections on loopback.
//!
//! Where the kernel's socket tables can be read (Linux), readiness is read from them,
//! so no connection has to be made: a naive single-client server would serve a probe
//! connection as its one client. Elsewhere a probe connection is made and closed.
//! (`compare` finds an external server's port the same way.)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Where a started server stands.
pub enum Ready {
    /// It listens: drive it at this loopback address.
    At(SocketAddr),
    /// Nothing of its listens on the port yet.
    NotYet,
    /// Another process listens on the port (Linux, where it can be told).
    Taken,
}

/// Whether the server of process group `pgid` listens on `port`, and at which
/// loopback address to drive it: IPv4 when it listens there (or on a
/// wildcard), else `::1`.
pub fn loopback_listener(port: u16, pgid: u32) -> Ready {
    let v4 = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
    let v6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port);
    let Some(sockets) = cli::process::tcp_sockets_with_inodes() else {
        let accepting = [v4, v6]
            .into_iter()
            .find(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok());
        return accepting.map_or(Ready::NotYet, Ready::At);
    };
    let on_port: Vec<(IpAddr, u64)> = sockets
        .into_iter()
        .filter(|&(local, listening, _)| listening && local.port() == port)
        .map(|(local, _, inode)| (local.ip(), inode))
        .collect();
    // Only the server's own sockets count; where the process table cannot
    // be read, any listener on the port does.
    let ours: Vec<IpAddr> = match cli::process::group_socket_inodes(pgid) {
        Some(inodes) => on_port
            .iter()
            .filter(|(_, i)| inodes.contains(i))
            .map(|(ip, _)| *ip)
            .collect(),
        None => on_port.iter().map(|(ip, _)| *ip).collect(),
    };
    if ours.iter().any(|ip| ip.is_unspecified() || *ip == v4.ip()) {
        Ready::At(v4)
    } else if ours.contains(&v6.ip()) {
        Ready::At(v6)
    } else if !on_port.is_empty() {
        Ready::Taken
    } else {
        Ready::NotYet
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Our own process group's process group id, from `/proc/self/stat`.
    fn own_pgid() -> u32 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        rest.split_whitespace().nth(2).unwrap().parse().unwrap()
    }

    /// A listener is the server's only if its process group holds it: ours
    /// is found for us, taken for another group, and gone once closed.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_listener_is_told_by_its_owner() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(matches!(loopback_listener(addr.port(), own_pgid()), Ready::At(a) if a == addr));
        assert!(matches!(
            loopback_listener(addr.port(), u32::MAX),
            Ready::Taken
        ));
        drop(listener);
        assert!(matches!(
            loopback_listener(addr.port(), own_pgid()),
            Ready::NotYet
        ));
    }
}
