//! Select-style: one thread, one `mio::Poll`, every socket.
//!
//! All sockets are non-blocking and registered with one poller (epoll,
//! kqueue or IOCP underneath). The thread sleeps in `poll` until some socket
//! is ready, then does exactly the work that is possible without waiting:
//! accept whoever is queued, read whatever has arrived, write as much as the
//! peer will take. Nothing ever blocks, so one thread serves every client.
//!
//! Three rules make it correct. *Drain readiness*: mio reports edges, so each
//! event is read (or accepted) until `WouldBlock` — or until a short read,
//! which on epoll and kqueue says the same — or we remember to come back.
//! *Never assume a write completes*: replies that the socket will not take yet
//! wait in the connection's `out` buffer, and only then do we ask for WRITABLE
//! events — asking while nothing is waiting would wake us for nothing.
//! *Push back*: while a client leaves its replies unread, we stop reading its
//! requests, so no client can make the server buffer without bound.
//!
//! **Cost:** per client, a few hundred bytes of state and no buffer at all
//! while it is idle; no thread switches. **Breaks down:** when one line takes
//! long to answer (everyone waits behind it) or one core is not enough.

mod conn;

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use self::conn::{Conn, Next};
use super::{
    close_gently, peer_gave_up, AcceptFailures, ConnectionStrategy, Server, ACCEPT_BACKOFF,
};
use crate::console::{Outbound, Outbox};
use crate::error::Error;
use crate::session::{ClientId, Goodbye, Session};

const LISTENER: Token = Token(0);
/// Woken by the console (a message is queued) and by shutdown.
const WAKER: Token = Token(1);

/// One shared read buffer for every connection: reads land here and only an
/// unfinished line is copied into the connection's own codec.
const READ_BUFFER: usize = 64 * 1024;
/// A connection that is closing (after `bye`, an `ERR` line, end of input)
/// gets this long to take its last replies; a client that never reads them
/// is then closed anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

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
        let now = Instant::now();
        Loop {
            poll,
            listener,
            server,
            conns: HashMap::new(),
            outbox: Arc::new(LoopOutbox { tx, waker }),
            inbox,
            scratch: vec![0; READ_BUFFER],
            replies: Vec::new(),
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
    /// Handed to the console for every client: queue a message, wake us.
    outbox: Arc<LoopOutbox>,
    inbox: Receiver<(ClientId, Outbound)>,
    scratch: Vec<u8>,
    /// One reply buffer, lent to whichever connection is being served (see
    /// `Conn::advance`): it stays warm in the cache, and an idle connection
    /// owns no buffer.
    replies: Vec<u8>,
    /// Connections that may still have unread input (budget spent, or reading
    /// resumed after backpressure): visited again without waiting for an event.
    again: Vec<Token>,
    /// Closing connections by deadline (all get the same grace, so a queue
    /// stays in order).
    closing: VecDeque<(Instant, Token)>,
    /// When the current turn began: one clock reading per turn is enough.
    now: Instant,
    next_idle_sweep: Instant,
    accept_paused_until: Option<Instant>,
    accept_failures: AcceptFailures,
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
                                conn.peer_closed = true;
                            }
                        }
                        self.serve(token, event.is_readable() || closed);
                    }
                }
            }
            for token in std::mem::take(&mut self.again) {
                self.serve(token, true);
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
        if self.conns.len() >= self.server.limits.max_clients {
            tracing::warn!(%peer, "too many clients: turned away");
            close_gently(
                &mut stream,
                Goodbye::Busy("too many clients").line().as_bytes(),
            );
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
        self.conns
            .insert(token, Conn::new(stream, peer, session, self.now));
    }

    /// Does whatever the connection's readiness allows, then closes it if done.
    fn serve(&mut self, token: Token, readable: bool) {
        // Events for a connection already closed this turn are simply stale.
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        match conn.advance(readable, &mut self.scratch, &mut self.replies, self.now) {
            Ok(Next::Wait) => {}
            Ok(Next::Again) => self.again.push(token),
            Ok(Next::Done) | Err(_) => return self.close(token),
        }
        if conn.update_interest(self.poll.registry(), token).is_err() {
            return self.close(token);
        }
        if conn.closing && conn.close_by.is_none() {
            let deadline = self.now + CLOSE_GRACE;
            conn.close_by = Some(deadline);
            self.closing.push_back((deadline, token));
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
                Outbound::Line(text) => conn.push_line(&text),
                Outbound::Close(why) => conn.say_goodbye(why),
            }
            self.serve(token, false);
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
        let grace = self.closing.front().map(|(deadline, _)| *deadline);
        [idle, grace, self.accept_paused_until]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Resumes accepting after a pause, closes clients silent too long, and
    /// closes clients that never took their last replies.
    fn after_timers(&mut self) {
        let now = Instant::now();
        self.now = now;
        if self.accept_paused_until.is_some_and(|t| t <= now) {
            self.accept_paused_until = None;
            self.accept(); // no new edge will come for connections already queued
        }
        while let Some(&(deadline, token)) = self.closing.front() {
            if deadline > now {
                break;
            }
            self.closing.pop_front();
            if self.conns.contains_key(&token) {
                tracing::debug!("client did not take its last replies; closing");
                self.close(token);
            }
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
            .filter(|(_, c)| !c.closing && now.duration_since(c.last_heard) >= limit)
            .map(|(t, _)| *t)
            .collect();
        for token in expired {
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.say_goodbye(Goodbye::IdleTimeout);
            }
            self.serve(token, false);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            self.server.console.leave(conn.session.id());
            let _ = self.poll.registry().deregister(&mut conn.stream);
            conn.close();
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
