//! One client connection of a check: every operation has a deadline and is written to
//! the check's [`Log`], so a failure shows what was sent, expected and received, when.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::outcome::{fail, quote, Log, Verdict};

/// What came back when a line was awaited.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A whole line, without its `\n`.
    Line(Vec<u8>),
    /// The server closed the connection (after these bytes of an unfinished line).
    Closed(Vec<u8>),
    /// The connection was reset.
    Reset,
    /// Nothing complete in time (these bytes of an unfinished line came).
    Silent(Vec<u8>),
}

/// A client connection with a name (`A`, `B`, ...) in the check's log.
pub struct Conn<'a> {
    name: String,
    stream: TcpStream,
    /// Bytes received and not yet returned as a line.
    pending: Vec<u8>,
    log: &'a Log,
    /// Received lines are not logged (a flood of them would crowd the log out).
    quiet: bool,
}

/// The usual cause when a connection cannot be made at all.
const NO_CONNECT: &str = "the server stopped accepting connections: it may have exited \
     (see its output) or stopped calling accept()";

impl<'a> Conn<'a> {
    /// Connects to `addr` within `within`.
    pub fn open(
        log: &'a Log,
        name: &str,
        addr: SocketAddr,
        within: Duration,
    ) -> Result<Self, Verdict> {
        Conn::open_with(log, name, addr, within, None)
    }

    /// Connects with a receive buffer of `rcvbuf` bytes, set before connecting so the
    /// window it advertises is small from the start.
    pub fn open_with(
        log: &'a Log,
        name: &str,
        addr: SocketAddr,
        within: Duration,
        rcvbuf: Option<usize>,
    ) -> Result<Self, Verdict> {
        log.note(name, format!("connect to {addr}"));
        let connected = (|| {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                None,
            )?;
            if let Some(size) = rcvbuf {
                socket.set_recv_buffer_size(size)?;
            }
            socket.connect_timeout(&addr.into(), within)?;
            let stream: TcpStream = socket.into();
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(stream)
        })();
        match connected {
            Ok(stream) => Ok(Conn {
                name: name.to_string(),
                stream,
                pending: Vec::new(),
                log,
                quiet: false,
            }),
            Err(e) => {
                log.note(name, format!("connect failed: {e}"));
                Err(fail(format!("{name} could not connect: {e}"), NO_CONNECT))
            }
        }
    }

    /// This connection's name in the log.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops (or resumes) logging each line received.
    pub fn set_quiet(&mut self, quiet: bool) {
        self.quiet = quiet;
    }

    /// Expects the server to close this connection within `within`, after at most a
    /// few lines starting `ERR` (a reset counts as a close).
    pub fn expect_closed_after_err(
        &mut self,
        within: Duration,
        cause: &str,
    ) -> Result<(), Verdict> {
        self.log.note(
            &self.name,
            "expect the server to close (an ERR line first is fine)",
        );
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Reply::Line(line) if line.starts_with(b"ERR") => {}
                Reply::Closed(rest) if rest.is_empty() || rest.starts_with(b"ERR") => return Ok(()),
                Reply::Reset => return Ok(()),
                other => {
                    return Err(fail(
                        format!(
                            "{} expected the connection closed, {}",
                            self.name,
                            describe(&other, within)
                        ),
                        cause,
                    ))
                }
            }
        }
    }

    /// The socket, for options and non-blocking floods.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends `bytes` in one write, within `within`.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), Verdict> {
        self.log.note(&self.name, format!("sent {}", quote(bytes)));
        let _ = self.stream.set_write_timeout(Some(Duration::from_secs(5)));
        self.stream.write_all(bytes).map_err(|e| {
            self.log.note(&self.name, format!("send failed: {e}"));
            fail(
                format!("{} could not send: {e}", self.name),
                "the server closed or reset a connection it should have kept serving",
            )
        })
    }

    /// Sends each piece in a write of its own, `gap` apart, so they travel as
    /// separate packets (the sockets have Nagle's algorithm off).
    pub fn send_pieces(&mut self, pieces: &[&[u8]], gap: Duration) -> Result<(), Verdict> {
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                std::thread::sleep(gap);
            }
            self.send(piece)?;
        }
        Ok(())
    }

    /// The next line, or what happened instead, within `within`.
    pub fn next(&mut self, within: Duration) -> Reply {
        let deadline = Instant::now() + within;
        let mut chunk = [0; 16 * 1024];
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                if !self.quiet {
                    self.log.note(&self.name, format!("got {}", quote(&line)));
                }
                return Reply::Line(line);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let partial = std::mem::take(&mut self.pending);
                let what = match partial.is_empty() {
                    true => format!("nothing within {within:.1?}"),
                    false => format!("only {} within {within:.1?}", quote(&partial)),
                };
                self.log.note(&self.name, what);
                return Reply::Silent(partial);
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    let partial = std::mem::take(&mut self.pending);
                    let what = match partial.is_empty() {
                        true => "closed by the server".to_string(),
                        false => format!("closed by the server after {}", quote(&partial)),
                    };
                    self.log.note(&self.name, what);
                    return Reply::Closed(partial);
                }
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.log.note(&self.name, format!("reset: {e}"));
                    return Reply::Reset;
                }
            }
        }
    }

    /// Expects the line `want` within `within`; a trailing `\r` is forgiven unless
    /// `exact`. `cause` is the usual reason when it does not come.
    pub fn expect(
        &mut self,
        want: &[u8],
        within: Duration,
        exact: bool,
        cause: &str,
    ) -> Result<(), Verdict> {
        self.log.note(&self.name, format!("expect {}", quote(want)));
        let got = self.next(within);
        let matches =
            |line: &[u8]| line == want || (!exact && line.strip_suffix(b"\r") == Some(want));
        match got {
            Reply::Line(line) if matches(&line) => Ok(()),
            Reply::Silent(rest) | Reply::Closed(rest) if unterminated(&rest, want) => {
                Err(no_line_end(&self.name, want))
            }
            Reply::Line(line) if runs_on(&line, want) => Err(fail(
                format!(
                    "{} expected {}, got {}: no line end after {}",
                    self.name,
                    quote(want),
                    quote(&line),
                    quote(want)
                ),
                NO_LINE_END,
            )),
            other => Err(fail(
                format!(
                    "{} expected {}, {}",
                    self.name,
                    quote(want),
                    describe(&other, within)
                ),
                cause,
            )),
        }
    }

    /// Expects the server to close this connection (a reset counts) within `within`,
    /// sending nothing more.
    pub fn expect_closed(&mut self, within: Duration, cause: &str) -> Result<(), Verdict> {
        self.log.note(&self.name, "expect the server to close");
        match self.next(within) {
            Reply::Closed(rest) if rest.is_empty() => Ok(()),
            Reply::Reset => Ok(()),
            other => Err(fail(
                format!(
                    "{} expected the connection closed, {}",
                    self.name,
                    describe(&other, within)
                ),
                cause,
            )),
        }
    }

    /// Closes the connection with a reset (`SO_LINGER` 0) instead of a FIN.
    pub fn reset(self) {
        self.log
            .note(&self.name, "reset the connection (SO_LINGER 0)");
        let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
    }

    /// Closes the connection normally, with nothing more said.
    pub fn close(self) {
        self.log.note(&self.name, "closed the connection");
    }
}

/// The usual cause when a reply comes without its `\n`.
pub const NO_LINE_END: &str = "the reply has no line end: every line the server sends must \
     end in `\\n` (send \"Hello\\n\", not \"Hello\"), or a client reading lines waits forever";

/// Whether `rest`, the unfinished line left when nothing more came, is `want`
/// without its line end.
pub fn unterminated(rest: &[u8], want: &[u8]) -> bool {
    !want.is_empty() && (rest == want || rest.strip_suffix(b"\r") == Some(want))
}

/// Whether `line` is `want` run into the next reply (`Hellobye`): `want` was sent
/// without its line end.
pub fn runs_on(line: &[u8], want: &[u8]) -> bool {
    !want.is_empty()
        && line.starts_with(want)
        && line
            .get(want.len())
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// The failure for `want` arriving without its line end.
pub fn no_line_end(name: &str, want: &[u8]) -> Verdict {
    fail(
        format!("{name} got {} but no line end after it", quote(want)),
        NO_LINE_END,
    )
}

/// What was received, for a failure message: `got "Hi"`, `got nothing within 2s`.
pub fn describe(reply: &Reply, within: Duration) -> String {
    match reply {
        Reply::Line(line) => format!("got {}", quote(line)),
        Reply::Closed(rest) if rest.is_empty() => "the server closed the connection".into(),
        Reply::Closed(rest) => format!("got {} and then the connection closed", quote(rest)),
        Reply::Reset => "the connection was reset".into(),
        Reply::Silent(rest) if rest.is_empty() => format!("got nothing within {within:.1?}"),
        Reply::Silent(rest) => format!("got only {} within {within:.1?}", quote(rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply without its `\n` is told apart from a wrong reply: whether it stopped
    /// there or ran into the next one.
    #[test]
    fn a_missing_line_end_is_recognised() {
        assert!(unterminated(b"Hello", b"Hello") && unterminated(b"Hello\r", b"Hello"));
        assert!(!unterminated(b"Hell", b"Hello") && !unterminated(b"", b""));
        assert!(runs_on(b"Hellobye", b"Hello"));
        assert!(!runs_on(b"Hello there", b"Hello") && !runs_on(b"Hello", b"Hello"));
    }
}
