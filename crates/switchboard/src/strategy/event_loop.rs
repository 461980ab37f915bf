//! Select-style: one thread, one `mio::Poll`, every socket.
//!
//! All sockets are non-blocking and registered with one poller (epoll,
//! kqueue or IOCP underneath). The thread sleeps in `poll` until some socket
//! is ready, then does exactly the work that is possible without waiting:
//! accept whoever is queued, read whatever has arrived, write as much as the
//! peer will take. Nothing ever blocks, so one thread serves every client.
//!
//! Two rules make it correct. *Drain readiness*: mio reports edges, so each
//! event is read (or accepted) until `WouldBlock`, or we remember to come back.
//! *Never assume a write completes*: replies that the socket will not take yet
//! wait in the connection's `out` buffer, and only then do we ask for WRITABLE
//! events — asking while nothing is waiting would wake us for nothing.
//!
//! **Cost:** per client, a few hundred bytes of state and no buffer at all
//! while it is idle; no thread switches. **Breaks down:** when one line takes
//! long to answer (everyone waits behind it) or one core is not enough.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Direction, SocketAddr};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::{drain_briefly, ConnectionStrategy, Server};
use crate::console::{Outbound, Outbox};
use crate::error::Error;
use crate::session::{ClientId, Flow, Goodbye, Session};

const LISTENER: Token = Token(0);
/// Woken by the console (a message is queued) and by shutdown.
const WAKER: Token = Token(1);

/// One shared read buffer for every connection: reads land here and only an
/// unfinished line is copied into the connection's own codec.
const READ_BUFFER: usize = 64 * 1024;
/// Reads per connection per turn, so one fast sender cannot starve the rest.
const READ_BUDGET: usize = 16;
/// Stop reading from a client while this much of its output is unsent:
/// a client that never reads cannot make us buffer without bound.
const HIGH_WATER: usize = 1024 * 1024;
/// Output buffers larger than this are released once flushed.
const KEEP_CAPACITY: usize = 16 * 1024;
/// A read that did not fill the buffer emptied the socket: epoll and kqueue
/// report every later arrival as a new event, so the extra `read` that would
/// only say `WouldBlock` can be skipped — one system call less per message.
/// Windows' readiness emulation in mio gives no such promise.
const SHORT_READ_DRAINS: bool = cfg!(unix);
/// After an accept error such as EMFILE, wait this long before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves every client from one thread with one `mio::Poll`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventLoop;

impl ConnectionStrategy for EventLoop {
    fn name(&self) -> &'static str {
        "select-style"
    }

    fn serve(&self, listener: std::net::TcpListener, server: Server) -> Result<(), Error> {
        listener
            .set_nonblocking(true)
            .map_err(Error::io("making the listener non-blocking"))?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new().map_err(Error::io("creating the poller"))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(Error::io("registering the listener"))?;
        let waker =
            Arc::new(Waker::new(poll.registry(), WAKER).map_err(Error::io("creating the waker"))?);
        let (tx, inbox) = mpsc::channel();
        let wake = Arc::clone(&waker);
        server.shutdown.on_trigger(move || {
            let _ = wake.wake();
        });
        Loop {
            poll,
            listener,
            server,
            conns: HashMap::new(),
            outbox: Arc::new(LoopOutbox { tx, waker }),
            inbox,
            scratch: vec![0; READ_BUFFER],
            again: Vec::new(),
            accept_paused_until: None,
        }
        .run()
    }
}

struct Loop {
    poll: Poll,
    listener: TcpListener,
    server: Server,
    conns: HashMap<Token, Conn>,
    /// Handed to the console for every client: queue a message, wake us.
    outbox: Arc<LoopOutbox>,
    inbox: Receiver<(ClientId, Outbound)>,
    scratch: Vec<u8>,
    /// Connections that may still have unread input (budget spent, or reading
    /// paused for backpressure): visited again without waiting for an event.
    again: Vec<Token>,
    accept_paused_until: Option<Instant>,
}

impl Loop {
    fn run(mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.next_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Io {
                    context: "polling",
                    source: e,
                });
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER if self.server.shutdown.is_triggered() => {
                        // Lines the console queued before the stop go out first.
                        self.deliver_console_messages();
                        self.shut_down();
                        return Ok(());
                    }
                    WAKER => self.deliver_console_messages(),
                    token => {
                        if event.is_read_closed() || event.is_error() {
                            self.peer_closed(token);
                        }
                        self.serve(token, event.is_readable(), event.is_writable());
                    }
                }
            }
            for token in std::mem::take(&mut self.again) {
                self.serve(token, true, false);
            }
            self.after_timers();
        }
    }

    /// Accepts every queued connection (drain readiness).
    fn accept(&mut self) {
        while self.accept_paused_until.is_none() {
            match self.listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE leaves the connection queued and the listener
                    // readable: retrying now would spin. Pause instead.
                    tracing::warn!("accept failed: {e}; pausing accepts");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        if self.conns.len() >= self.server.limits.max_clients {
            tracing::warn!(%peer, "too many clients: turned away");
            let _ = stream.write_all(Goodbye::Busy("too many clients").line().as_bytes());
            let _ = stream.shutdown(Direction::Write);
            drain_briefly(&mut stream);
            return;
        }
        let _ = stream.set_nodelay(true);
        let id = self.server.console.join(peer, self.outbox.clone());
        let token = token_of(id);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
        {
            tracing::warn!(%peer, "cannot register connection: {e}");
            self.server.console.leave(id);
            return;
        }
        let session = Session::new(id, self.server.mode.clone(), self.server.limits.max_line);
        self.conns.insert(token, Conn::new(stream, peer, session));
    }

    /// Notes that the peer has sent its FIN (or a reset) on `token`.
    fn peer_closed(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.peer_closed = true;
        }
    }

    /// Does whatever the connection's readiness allows, then closes it if done.
    fn serve(&mut self, token: Token, readable: bool, writable: bool) {
        // Events for a connection already closed this turn are simply stale.
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let mut ok = !writable || conn.flush().is_ok();
        if ok && (readable || conn.read_paused) {
            conn.read_paused = false;
            match conn.read(&mut self.scratch) {
                Input::Drained => {}
                Input::Pending => self.again.push(token),
                Input::Paused => conn.read_paused = true,
            }
        }
        ok =
            ok && conn.flush().is_ok() && conn.update_interest(self.poll.registry(), token).is_ok();
        if ok && conn.read_paused && conn.unsent() < HIGH_WATER {
            // The client took its replies: read what it sent meanwhile, for
            // which no new edge will come.
            self.again.push(token);
        }
        if !ok || conn.finished() {
            self.close(token);
        }
    }

    /// Carries the operator's messages (queued by the console thread) out.
    fn deliver_console_messages(&mut self) {
        while let Ok((id, msg)) = self.inbox.try_recv() {
            let token = token_of(id);
            let Some(conn) = self.conns.get_mut(&token) else {
                continue;
            };
            match msg {
                Outbound::Line(text) => {
                    conn.out.extend_from_slice(text.as_bytes());
                    conn.out.push(b'\n');
                }
                Outbound::Close(why) => conn.say_goodbye(why),
            }
            self.serve(token, false, true);
        }
    }

    fn next_timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let idle = self.server.limits.idle_timeout.map(idle_sweep_interval);
        let accept = self
            .accept_paused_until
            .map(|t| t.saturating_duration_since(Instant::now()));
        match (idle, accept) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Resumes accepting after a pause, and closes clients silent too long.
    fn after_timers(&mut self) {
        let now = Instant::now();
        if self.accept_paused_until.is_some_and(|t| t <= now) {
            self.accept_paused_until = None;
            self.accept(); // no new edge will come for connections already queued
        }
        let Some(limit) = self.server.limits.idle_timeout else {
            return;
        };
        let expired: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.closing && now.duration_since(c.last_heard) >= limit)
            .map(|(t, _)| *t)
            .collect();
        for token in expired {
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.say_goodbye(Goodbye::IdleTimeout);
            }
            self.serve(token, false, true);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            self.server.console.leave(conn.session.id());
            let _ = self.poll.registry().deregister(&mut conn.stream);
            conn.linger();
        }
    }

    /// Tells every client the server is going, best effort, and closes all.
    fn shut_down(&mut self) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.say_goodbye(Goodbye::ShuttingDown);
                let _ = conn.flush();
            }
            self.close(token);
        }
    }
}

/// Whether a connection's input was read to the end for now.
#[derive(PartialEq, Eq)]
enum Input {
    /// Read until `WouldBlock`, or the connection is ending.
    Drained,
    /// More input may be waiting: come back without waiting for an event.
    Pending,
    /// Too much output is waiting for this client: read again once it is sent.
    Paused,
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    session: Session,
    /// Replies not yet taken by the socket; `out[written..]` is still to go.
    out: Vec<u8>,
    written: usize,
    /// Close once `out` is flushed (bye, an ERR line, end of input).
    closing: bool,
    wants_writable: bool,
    /// Reading stopped because too much output is waiting (backpressure).
    read_paused: bool,
    /// The peer's FIN (or reset) was reported. Data and FIN that arrive
    /// together make one edge, and no later edge announces the FIN, so a
    /// short read must not be taken as drained: read on until `Ok(0)`.
    peer_closed: bool,
    last_heard: Instant,
}

impl Conn {
    fn new(stream: TcpStream, peer: SocketAddr, session: Session) -> Self {
        Conn {
            stream,
            peer,
            session,
            out: Vec::new(),
            written: 0,
            closing: false,
            wants_writable: false,
            read_paused: false,
            peer_closed: false,
            last_heard: Instant::now(),
        }
    }

    fn read(&mut self, scratch: &mut [u8]) -> Input {
        for _ in 0..READ_BUDGET {
            if self.closing {
                return Input::Drained;
            }
            if self.unsent() >= HIGH_WATER {
                return Input::Paused;
            }
            let flow = match self.stream.read(scratch) {
                Ok(0) => self.session.on_eof(&mut self.out),
                Ok(n) => {
                    self.last_heard = Instant::now();
                    let flow = self.session.on_bytes(&scratch[..n], &mut self.out);
                    let drained = n < scratch.len() && SHORT_READ_DRAINS && !self.peer_closed;
                    if flow == Flow::Continue && drained {
                        return Input::Drained;
                    }
                    flow
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Input::Drained,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(peer = %self.peer, "read failed: {e}");
                    self.out.clear();
                    self.written = 0;
                    Flow::Close
                }
            };
            if flow == Flow::Close {
                self.closing = true;
            }
        }
        Input::Pending
    }

    fn unsent(&self) -> usize {
        self.out.len() - self.written
    }

    /// Writes as much of `out` as the socket takes now.
    fn flush(&mut self) -> io::Result<()> {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(peer = %self.peer, "write failed: {e}");
                    return Err(e);
                }
            }
        }
        self.written = 0;
        if self.out.capacity() > KEEP_CAPACITY {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        Ok(())
    }

    /// Asks for WRITABLE events only while replies are waiting.
    fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
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

    fn say_goodbye(&mut self, why: Goodbye) {
        if !self.closing {
            self.out.extend_from_slice(why.line().as_bytes());
            self.closing = true;
        }
    }

    fn finished(&self) -> bool {
        self.closing && self.out.is_empty()
    }

    /// Closes gently: end our side, then swallow what the client already sent,
    /// so the close does not become a reset that destroys our last line.
    fn linger(mut self) {
        let _ = self.stream.shutdown(Direction::Write);
        drain_briefly(&mut self.stream);
    }
}

/// The console's way into the loop: queue the message, then wake the poll.
struct LoopOutbox {
    tx: Sender<(ClientId, Outbound)>,
    waker: Arc<Waker>,
}

impl Outbox for LoopOutbox {
    fn send(&self, to: ClientId, msg: Outbound) {
        if self.tx.send((to, msg)).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

fn token_of(id: ClientId) -> Token {
    // Ids start at 1; tokens 0 and 1 are the listener's and the waker's.
    Token(id.0 as usize + 1)
}

/// How often to look for idle clients: often enough that one is closed
/// within a quarter of its timeout after it expires.
fn idle_sweep_interval(limit: Duration) -> Duration {
    (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}
