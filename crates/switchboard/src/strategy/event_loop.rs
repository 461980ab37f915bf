//! Select-style: one thread, one `mio::Poll`, every socket.
//!
//! **How it works.** All sockets are non-blocking and registered with one
//! poller (epoll, kqueue or IOCP underneath). The thread sleeps in `poll`
//! until some socket is ready, then does exactly the work that is possible
//! without waiting: accept whoever is queued, read whatever has arrived,
//! write as much as the peer will take. Nothing ever blocks, so one thread
//! serves every client. Three rules make it correct:
//!
//! - *Drain readiness.* mio reports edges: an event says "something changed",
//!   once. So each event is read (or accepted) until `WouldBlock` — or until
//!   a short read, which on epoll and kqueue says the same — or we note the
//!   connection in `again` and come back without waiting for a new edge.
//! - *Never assume a write completes.* Replies the socket will not take yet
//!   wait in the connection's `out` buffer. Each socket is registered for
//!   READABLE and WRITABLE once, at accept, as tokio and our load generator
//!   do: with edges, a WRITABLE event comes only after a write found the
//!   socket's buffer full, so a client that takes its replies at once never
//!   wakes us for it, and a client that stalls costs no `epoll_ctl` calls to
//!   switch the interest on and off.
//! - *Push back.* While a client leaves its replies unread, we stop reading
//!   its requests, so no client can make the server buffer without bound.
//!
//! **What it costs.** Per client, a few hundred bytes of state and no buffer
//! at all while it is idle; no thread switches: per message, one `poll`, one
//! `read` and one `write`, the system calls the kernel needs anyway.
//!
//! **Where it breaks.** When one line takes long to answer (a big `calc`:
//! everyone waits behind it), or when one core is not enough.
//!
//! The operator's console runs on another thread: it queues a message in a
//! channel and wakes the loop with a [`Waker`]; the loop does the writing.

mod conn;

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use self::conn::{Conn, Next, WarmBuffer};
use super::accept::{close_gently, peer_gave_up, AcceptFailures, ACCEPT_BACKOFF};
use super::{ConnectionStrategy, Model};
use crate::clients::{Outbound, Outbox};
use crate::error::Error;
use crate::server::Server;
use crate::session::{ClientId, Goodbye, Session};

/// `--model event-loop` (`server3`; `server4` is it in echo mode).
pub const MODEL: Model = Model {
    name: "event-loop",
    about: "one thread, one mio::Poll loop for every socket (server3, server4)",
    strategy: &EventLoop,
};

const LISTENER: Token = Token(0);
/// Woken by the console (a message is queued) and by shutdown.
const WAKER: Token = Token(1);

/// One shared read buffer for every connection: reads land here and only an
/// unfinished line is copied into the connection's own codec.
const READ_BUFFER: usize = 64 * 1024;

/// Serves every client from one thread with one `mio::Poll`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventLoop;

impl ConnectionStrategy for EventLoop {
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
        let now = Instant::now();
        Loop {
            poll,
            listener,
            server,
            conns: HashMap::new(),
            outbox: Arc::new(LoopOutbox { tx, waker }),
            inbox,
            scratch: vec![0; READ_BUFFER],
            warm: WarmBuffer::default(),
            again: Vec::new(),
            closing: VecDeque::new(),
            now,
            next_idle_sweep: now,
            accept_paused_until: None,
            accept_failures: AcceptFailures::default(),
        }
        .run()
    }
}

struct Loop {
    poll: Poll,
    listener: TcpListener,
    server: Server,
    conns: HashMap<Token, Conn>,
    /// Handed to the registry for every client: queue a message, wake us.
    outbox: Arc<LoopOutbox>,
    inbox: Receiver<(ClientId, Outbound)>,
    scratch: Vec<u8>,
    warm: WarmBuffer,
    /// Connections that may still have unread input (budget spent, or reading
    /// resumed after backpressure): visited again without waiting for an event.
    again: Vec<Token>,
    /// Closing connections, in the order their grace runs out: each gets the
    /// same grace from the moment it starts closing, so arrival order is
    /// deadline order. The deadline itself is the connection's.
    closing: VecDeque<Token>,
    /// Read once per turn, when `poll` returns: timers are coarse (tens of
    /// milliseconds at the finest), a turn is not.
    now: Instant,
    next_idle_sweep: Instant,
    accept_paused_until: Option<Instant>,
    accept_failures: AcceptFailures,
}

impl Loop {
    fn run(mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(1024);
        loop {
            if let Err(e) = self.poll.poll(&mut events, self.next_timeout()) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Io {
                    context: "polling",
                    source: e,
                });
            }
            self.now = Instant::now();
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
                        let closed = event.is_read_closed() || event.is_error();
                        if closed {
                            if let Some(conn) = self.conns.get_mut(&token) {
                                conn.note_peer_closed();
                            }
                        }
                        self.serve(token, event.is_readable() || closed, None);
                    }
                }
            }
            for token in std::mem::take(&mut self.again) {
                self.serve(token, true, None);
            }
            self.after_timers();
        }
    }

    /// Accepts every queued connection (drain readiness).
    fn accept(&mut self) {
        while self.accept_paused_until.is_none() {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    self.accept_failures.recovered(self.now);
                    self.admit(stream, peer);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted || peer_gave_up(&e) => {}
                Err(e) => {
                    // EMFILE leaves the connection queued and the listener
                    // readable: retrying now would spin. Pause instead.
                    self.accept_failures.record(&e, self.now);
                    self.accept_paused_until = Some(self.now + ACCEPT_BACKOFF);
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        let seats = self.server.limits.max_clients;
        let Ok(id) = self
            .server
            .clients()
            .admit(peer, self.outbox.clone(), seats)
        else {
            tracing::warn!(%peer, "too many clients: turned away");
            let busy = Goodbye::Busy("too many clients").line();
            return close_gently(&mut stream, busy.as_bytes());
        };
        let _ = stream.set_nodelay(true);
        let token = token_of(id);
        let both = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut stream, token, both) {
            tracing::warn!(%peer, "cannot register connection: {e}");
            return self.server.clients().leave(id);
        }
        let session = Session::new(id, &self.server);
        self.conns
            .insert(token, Conn::new(stream, peer, session, self.now));
    }

    /// Passes on what the connection was `told` (an operator's line, a
    /// goodbye), does whatever its readiness allows, then closes it if done.
    fn serve(&mut self, token: Token, readable: bool, told: Option<Outbound>) {
        // Events for a connection already closed this turn are simply stale.
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let was_closing = conn.is_closing();
        if let Some(msg) = told {
            conn.tell(msg, self.now);
        }
        match conn.advance(readable, &mut self.scratch, &mut self.warm, self.now) {
            Ok(Next::Wait) => {}
            Ok(Next::Again) => self.again.push(token),
            Ok(Next::Done) | Err(_) => return self.close(token),
        }
        if conn.is_closing() && !was_closing {
            self.closing.push_back(token);
        }
    }

    /// Carries the operator's messages (queued by the console thread) out.
    fn deliver_console_messages(&mut self) {
        while let Ok((id, msg)) = self.inbox.try_recv() {
            self.serve(token_of(id), false, Some(msg));
        }
    }

    fn next_timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let idle = self
            .server
            .limits
            .idle_timeout
            .map(|_| self.next_idle_sweep);
        let grace = self.closing.front().and_then(|t| self.closing_deadline(*t));
        [idle, grace, self.accept_paused_until]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(self.now))
    }

    fn closing_deadline(&self, token: Token) -> Option<Instant> {
        self.conns.get(&token).and_then(Conn::closing_deadline)
    }

    /// Resumes accepting after a pause, closes clients that never took their
    /// last replies, and closes clients silent too long.
    fn after_timers(&mut self) {
        let now = self.now;
        if self.accept_paused_until.is_some_and(|t| t <= now) {
            self.accept_paused_until = None;
            self.accept(); // no new edge will come for connections already queued
        }
        while let Some(&token) = self.closing.front() {
            match self.closing_deadline(token) {
                Some(deadline) if deadline > now => break,
                Some(_) => {
                    tracing::debug!("client did not take its last replies; closing");
                    self.close(token);
                }
                None => {} // already closed
            }
            self.closing.pop_front();
        }
        if let Some(limit) = self.server.limits.idle_timeout {
            if now >= self.next_idle_sweep {
                self.next_idle_sweep = now + idle_sweep_interval(limit);
                self.close_idle(limit);
            }
        }
    }

    fn close_idle(&mut self, limit: Duration) {
        let now = self.now;
        let expired: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_idle(now, limit))
            .map(|(t, _)| *t)
            .collect();
        for token in expired {
            self.serve(token, false, Some(Outbound::Close(Goodbye::IdleTimeout)));
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(conn) = self.conns.remove(&token) {
            self.server.clients().leave(conn.id());
            conn.close(self.poll.registry());
        }
    }

    /// Tells every client the server is going, best effort, and closes all.
    fn shut_down(&mut self) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.tell(Outbound::Close(Goodbye::ShuttingDown), self.now);
                let _ = conn.flush();
            }
            self.close(token);
        }
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
    // Ids start at 1 and are never reused; tokens 0 and 1 are the
    // listener's and the waker's.
    Token(id.0 as usize + 1)
}

/// How often to look for idle clients: often enough that one is closed
/// within a quarter of its timeout after it expires.
fn idle_sweep_interval(limit: Duration) -> Duration {
    (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}
