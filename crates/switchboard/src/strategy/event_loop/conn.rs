//! One connection of the event loop: its socket, its session, and the replies
//! the socket has not taken yet. Every method does only what is possible
//! without waiting.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::session::{Flow, Goodbye, Session, OUTPUT_LIMIT};
use crate::strategy::close_gently;

/// Reads per connection per turn, so one fast sender cannot starve the rest.
const READ_BUDGET: usize = 16;
/// A connection's own output buffer larger than this is released once flushed.
const KEEP_CAPACITY: usize = 16 * 1024;
/// A read that did not fill the buffer emptied the socket: epoll and kqueue
/// report every later arrival as a new event, so the extra `read` that would
/// only say `WouldBlock` can be skipped — one system call less per message.
/// Windows' readiness emulation in mio gives no such promise.
const SHORT_READ_DRAINS: bool = cfg!(unix);

/// What the loop should do with a connection after [`Conn::advance`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Nothing more until its next event.
    Wait,
    /// More input may be waiting: visit again without waiting for an event.
    Again,
    /// Everything is said: close it.
    Done,
}

pub(super) struct Conn {
    pub(super) stream: TcpStream,
    peer: SocketAddr,
    pub(super) session: Session,
    /// Replies not yet taken by the socket; `out[written..]` is still to go.
    out: Vec<u8>,
    written: usize,
    /// Close once `out` is flushed (bye, an ERR line, end of input).
    pub(super) closing: bool,
    /// When a closing connection is closed even if its client never reads.
    pub(super) close_by: Option<Instant>,
    wants_writable: bool,
    /// Reading stopped because too much output is waiting (backpressure).
    read_paused: bool,
    /// The peer's FIN (or reset) was reported. Data and FIN that arrive
    /// together make one edge, and no later edge announces the FIN, so a
    /// short read must not be taken as drained: read on until `Ok(0)`.
    pub(super) peer_closed: bool,
    pub(super) last_heard: Instant,
}

impl Conn {
    pub(super) fn new(stream: TcpStream, peer: SocketAddr, session: Session, now: Instant) -> Self {
        Conn {
            stream,
            peer,
            session,
            out: Vec::new(),
            written: 0,
            closing: false,
            close_by: None,
            wants_writable: false,
            read_paused: false,
            peer_closed: false,
            last_heard: now,
        }
    }

    /// Writes what it can, reads what it can (unless replies are piling up),
    /// and writes the new replies.
    ///
    /// `replies` is the loop's reply buffer, lent to the connection being
    /// served when it has nothing waiting: the replies go out from one warm
    /// buffer, and the connection keeps a buffer of its own (this one) only
    /// while its client has not taken everything.
    pub(super) fn advance(
        &mut self,
        readable: bool,
        scratch: &mut [u8],
        replies: &mut Vec<u8>,
        now: Instant,
    ) -> io::Result<Next> {
        self.flush()?;
        let borrowed = self.out.is_empty();
        if borrowed {
            std::mem::swap(&mut self.out, replies);
        }
        let next = self.read_and_reply(readable, scratch, now);
        if self.out.is_empty() {
            if borrowed {
                std::mem::swap(&mut self.out, replies);
            }
            if self.out.capacity() > KEEP_CAPACITY {
                self.out = Vec::new();
            }
        }
        next
    }

    fn read_and_reply(
        &mut self,
        readable: bool,
        scratch: &mut [u8],
        now: Instant,
    ) -> io::Result<Next> {
        let mut next = Next::Wait;
        if readable || self.read_paused {
            next = self.read(scratch, now);
            self.flush()?;
            if self.read_paused && self.unsent() < OUTPUT_LIMIT {
                // The client took its replies: go on with what it sent
                // meanwhile, for which no new edge will come.
                next = Next::Again;
            }
        }
        if self.closing && self.unsent() == 0 {
            next = Next::Done;
        }
        Ok(next)
    }

    fn read(&mut self, scratch: &mut [u8], now: Instant) -> Next {
        self.read_paused = false;
        for _ in 0..READ_BUDGET {
            if self.closing {
                return Next::Wait;
            }
            if self.unsent() >= OUTPUT_LIMIT {
                self.read_paused = true;
                return Next::Wait;
            }
            let flow = if self.session.has_backlog() {
                self.session.resume(&mut self.out)
            } else {
                match self.stream.read(scratch) {
                    Ok(0) => self.session.on_eof(&mut self.out),
                    Ok(n) => {
                        self.last_heard = now;
                        let flow = self.session.on_bytes(&scratch[..n], &mut self.out);
                        let drained = n < scratch.len() && SHORT_READ_DRAINS && !self.peer_closed;
                        if flow == Flow::Continue && drained && !self.session.has_backlog() {
                            return Next::Wait;
                        }
                        flow
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Wait,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!(peer = %self.peer, "read failed: {e}");
                        self.out.clear();
                        self.written = 0;
                        Flow::Close
                    }
                }
            };
            if flow == Flow::Close {
                self.closing = true;
            }
        }
        Next::Again
    }

    fn unsent(&self) -> usize {
        self.out.len() - self.written
    }

    /// Writes as much of `out` as the socket takes now.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // Forget what was sent, so `out` holds only what is still
                    // to go: a client that reads, but never quite catches up,
                    // must not make the buffer grow without end.
                    self.out.drain(..self.written);
                    self.written = 0;
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(peer = %self.peer, "write failed: {e}");
                    return Err(e);
                }
            }
        }
        self.written = 0;
        self.out.clear();
        Ok(())
    }

    /// Asks for WRITABLE events only while replies are waiting.
    pub(super) fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let wants_writable = self.unsent() > 0;
        if wants_writable != self.wants_writable {
            let interest = if wants_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.stream, token, interest)?;
            self.wants_writable = wants_writable;
        }
        Ok(())
    }

    /// Queues one line from the operator, unless the connection is ending.
    pub(super) fn push_line(&mut self, text: &str) {
        if !self.closing {
            self.out.extend_from_slice(text.as_bytes());
            self.out.push(b'\n');
        }
    }

    /// Queues the `ERR` line and closes once it is sent.
    pub(super) fn say_goodbye(&mut self, why: Goodbye) {
        if !self.closing {
            self.out.extend_from_slice(why.line().as_bytes());
            self.closing = true;
        }
    }

    /// Closes gently (see [`close_gently`]); what is still unsent is dropped.
    pub(super) fn close(mut self) {
        close_gently(&mut self.stream, &[]);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use super::*;
    use crate::mode::Echo;
    use crate::session::ClientId;

    /// A client that sends far ahead and reads steadily, but slower than it
    /// sends, never makes the connection hold more than about the output limit.
    #[test]
    fn output_stays_bounded_for_a_slow_steady_reader() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, peer) = listener.accept().unwrap();
        server_side.set_nonblocking(true).unwrap();
        client.set_nonblocking(true).unwrap();
        let session = Session::new(ClientId(1), Arc::new(Echo), 100_000);
        let mut conn = Conn::new(
            TcpStream::from_std(server_side),
            peer,
            session,
            Instant::now(),
        );
        let mut scratch = vec![0; 64 * 1024];
        let mut replies = Vec::new();
        let line = [vec![b'z'; 9_999], vec![b'\n']].concat();
        let mut sink = [0; 4096];
        let mut most = 0;
        for _ in 0..3_000 {
            for _ in 0..4 {
                let _ = client.write(&line); // as much as the socket takes
            }
            conn.advance(true, &mut scratch, &mut replies, Instant::now())
                .unwrap();
            most = most.max(conn.out.len());
            let mut taken = 0;
            while taken < 6_000 {
                match client.read(&mut sink) {
                    Ok(n) if n > 0 => taken += n,
                    _ => break,
                }
            }
        }
        assert!(
            most < OUTPUT_LIMIT + 2 * scratch.len(),
            "output grew to {most} bytes"
        );
    }
}
