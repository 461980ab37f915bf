//! Turning `HOST PORT` into a listening socket, the same way for every strategy.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

use crate::address::check_host;
use crate::error::Error;

/// Pending connections the kernel may queue. std and mio use 128, which a
/// burst of a few hundred connects overflows; every strategy gets the same
/// larger queue so comparisons are fair. (The kernel may clamp it: Linux to
/// `net.core.somaxconn`, macOS to `kern.ipc.somaxconn`, often 128 there.)
pub const BACKLOG: i32 = 1024;

/// Resolves `host` (a name, an IPv4 or an IPv6 literal) with `port`,
/// IPv4 addresses first so `localhost` means 127.0.0.1 as the coursework expects.
///
/// A host that is a bare number or numeric shorthand (`5713`, `127.1`) is
/// refused before any lookup ([`check_host`]): the system's resolver would
/// turn it into an address nobody meant, often off this machine.
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    check_host(host)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let resolve_error = |source| Error::Resolve {
        host: host.to_owned(),
        source,
    };
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(resolve_error)?
        .collect();
    if addrs.is_empty() {
        return Err(resolve_error(std::io::ErrorKind::NotFound.into()));
    }
    addrs.sort_by_key(SocketAddr::is_ipv6);
    Ok(addrs)
}

/// Binds a listener on the first of `addrs` that works.
pub fn bind(addrs: &[SocketAddr]) -> Result<TcpListener, Error> {
    let mut last = None;
    for &addr in addrs {
        match bind_one(addr) {
            Ok(listener) => return Ok(listener),
            Err(source) => last = Some(Error::Bind { addr, source }),
        }
    }
    Err(last.unwrap_or_else(|| Error::Resolve {
        host: String::new(),
        source: std::io::ErrorKind::NotFound.into(),
    }))
}

fn bind_one(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does: a restarted server can rebind at once on Unix; on Windows
    // the option would let another process steal the port, so it stays off.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    // `::` should take IPv4 clients too; Linux does so by default, Windows
    // and the BSDs do not.
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
