//! `[HOST] [PORT]` as every program reads it, checked before any name is looked up.
//!
//! Students type the port alone all the time (`server2 5713`, `client 5713`),
//! so a lone number is the port. A host that is only a number, or the old
//! `inet_aton` shorthand (`127.1`, `0x7f.1`, `2130706433`), is refused: the
//! system resolver would turn `5713` into 0.0.22.81 and send the client off
//! this machine. An [`Address`] exists only once [`parse`] has accepted it;
//! [`net::resolve`](crate::net::resolve) refuses such a host too, so no
//! program built on the library looks one up.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where a server listens or a client connects when the command line says nothing.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// The port when the command line names none.
pub const DEFAULT_PORT: u16 = 5000;

/// A host and port that [`parse`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    host: String,
    port: u16,
}

impl Address {
    /// `127.0.0.1:port`, as when only the port is typed.
    pub fn loopback(port: u16) -> Address {
        Address {
            host: DEFAULT_HOST.into(),
            port,
        }
    }

    /// The host as typed (brackets around an IPv6 literal kept).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Looks the host up, IPv4 addresses first (see [`crate::net::resolve`]).
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, crate::Error> {
        crate::net::resolve(&self.host, self.port)
    }
}

impl Address {
    /// `[HOST] [PORT]` from a program's arguments (after its name), as the
    /// examples take them: a usage message on a bad port or host.
    pub fn from_args(mut args: impl Iterator<Item = String>) -> Result<Address, String> {
        let host = args.next();
        let port = match args.next() {
            None => None,
            Some(text) => Some(
                text.parse::<u16>()
                    .map_err(|_| format!("`{text}` is not a port: ports are 0 to 65535"))?,
            ),
        };
        parse(host.as_deref(), port).map_err(|refusal| refusal.to_string())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.parse::<Ipv6Addr>() {
            Ok(_) => write!(f, "[{}]:{}", self.host, self.port),
            Err(_) => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// Why `[HOST] [PORT]` was refused; nothing was looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A host that is a number or numeric shorthand (`5713`, `127.1`, `0x7f.1`).
    NumericHost(String),
    /// A lone number too large to be a port.
    NotAPort(String),
    /// An empty host, or one with spaces or control characters in it.
    Malformed(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NumericHost(host) => write!(
                f,
                "`{host}` is not a host: write the address in full (127.0.0.1) or a name \
                 (localhost); a number typed alone is the port"
            ),
            Refusal::NotAPort(text) => {
                write!(f, "`{text}` is not a port: ports are 0 to 65535")
            }
            Refusal::Malformed(host) => write!(f, "{:?} is not a host name", host),
        }
    }
}

impl std::error::Error for Refusal {}

/// Checks `[HOST] [PORT]` as typed. A lone number is the port; a host is
/// refused when it is a number or in numeric shorthand, which the system's
/// resolver would turn into some address nobody meant.
pub fn parse(host: Option<&str>, port: Option<u16>) -> Result<Address, Refusal> {
    match (host, port) {
        (None, _) => Ok(Address::loopback(port.unwrap_or(DEFAULT_PORT))),
        (Some(text), None) if is_decimal(text) => text
            .parse()
            .map(Address::loopback)
            .map_err(|_| Refusal::NotAPort(text.into())),
        (Some(host), port) => {
            check_host(host)?;
            Ok(Address {
                host: host.into(),
                port: port.unwrap_or(DEFAULT_PORT),
            })
        }
    }
}

/// Accepts a name, a full dotted IPv4 address or an IPv6 literal (in
/// brackets or not); refuses what a resolver would read as a number.
pub fn check_host(host: &str) -> Result<(), Refusal> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.is_empty() || bare.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Refusal::Malformed(host.into()));
    }
    if bare.parse::<Ipv4Addr>().is_ok() || bare.parse::<Ipv6Addr>().is_ok() {
        return Ok(());
    }
    // As URL parsers decide (WHATWG's "ends in a number"): a host whose last
    // label is numeric is an IPv4 address, and one that is not a full dotted
    // quad is shorthand (`127.1`, `0x7f.1`, `0177.0.0.1`, `2130706433`).
    let labels = bare.strip_suffix('.').unwrap_or(bare);
    let last = labels.rsplit('.').next().unwrap_or(labels);
    if is_decimal(last) || is_hex(last) {
        return Err(Refusal::NumericHost(host.into()));
    }
    Ok(())
}

fn is_decimal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn is_hex(text: &str) -> bool {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
    digits.is_some_and(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(host: &str, port: u16) -> Address {
        Address {
            host: host.into(),
            port,
        }
    }

    /// Nothing typed is 127.0.0.1:5000; a port alone is that port on 127.0.0.1.
    #[test]
    fn a_number_alone_is_the_port() {
        assert_eq!(parse(None, None), Ok(at("127.0.0.1", 5000)));
        assert_eq!(parse(Some("5713"), None), Ok(at("127.0.0.1", 5713)));
        assert_eq!(parse(Some("0"), None), Ok(at("127.0.0.1", 0)));
        assert_eq!(parse(Some("65535"), None), Ok(at("127.0.0.1", 65535)));
        assert_eq!(
            parse(Some("70000"), None),
            Err(Refusal::NotAPort("70000".into()))
        );
    }

    /// Names and full literals are hosts, with or without a port.
    #[test]
    fn names_and_full_addresses_are_hosts() {
        for host in [
            "localhost",
            "127.0.0.1",
            "0.0.0.0",
            "::1",
            "[::1]",
            "::",
            "::ffff:127.0.0.1",
            "fe80::1%lo",
            "example.org",
            "host-5713",
            "5713.example",
        ] {
            assert_eq!(parse(Some(host), Some(7)), Ok(at(host, 7)), "{host}");
            assert_eq!(parse(Some(host), None), Ok(at(host, 5000)), "{host}");
        }
    }

    /// A host that is a number or `inet_aton` shorthand is refused, never
    /// handed to the resolver (which would make `5713` 0.0.22.81).
    #[test]
    fn numeric_shorthand_is_refused_before_any_lookup() {
        for host in [
            "5713",
            "127.1",
            "127.0.1",
            "0x7f.1",
            "0x7f000001",
            "0X7F.0.0.1",
            "2130706433",
            "0177.0.0.1",
            "127.000.000.001",
            "127.0.0.1.",
            "1.2.3.4.5",
            "example.123",
            "0x",
        ] {
            let refused = parse(Some(host), Some(1));
            assert_eq!(refused, Err(Refusal::NumericHost(host.into())), "{host}");
            let line = refused.unwrap_err().to_string();
            assert!(!line.contains('\n') && line.contains(host), "{line}");
        }
        for host in ["", "[]", "127.1 x", "local\thost"] {
            assert_eq!(
                parse(Some(host), Some(1)),
                Err(Refusal::Malformed(host.into()))
            );
        }
    }

    /// How an address is written back in messages: IPv6 in brackets.
    #[test]
    fn display() {
        assert_eq!(at("::1", 5).to_string(), "[::1]:5");
        assert_eq!(at("localhost", 5).to_string(), "localhost:5");
    }
}
