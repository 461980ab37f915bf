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
//!   wait in a buffer of the connection's own (`unsent`). A socket is
//!   registered for READABLE alone, and WRITABLE is added only while replies
//!   wait, then taken away once they are sent — what a C epoll server does.
//!   A client that takes its replies at once never costs an `epoll_ctl`; one
//!   that falls behind costs two. Registering both once, at accept, as tokio
//!   does, measured no cheaper against a C epoll echo, and this way the loop
//!   and its C yardstick ask the kernel for the same thing, so what is left
//!   between them is ours: docs/measurements/2026-12-07-event-loop-vs-c-epoll.md.
//! - *Push back.* While a client leaves its replies unread, we stop reading
//!   its requests, so no client can make the server buffer without bound.
//!
//! **What it costs.** Per client, a few hundred bytes of state and no buffer
//! at all while it is idle; no thread switches: per message, one `poll`, one
//! `read` and one `write`, the system calls the kernel needs anyway.
//!
//! **Where it breaks.** When one line takes long to answer (a big `calc`:
//! everyone waits behind it), or when one core is not enough. A client that
//! sends many lines at once is answered in turns — a session stops after
//! [`TURN_BUDGET`](crate::session::TURN_BUDGET) of work and the connection
//! waits in `again` — so the others are served between its lines; but no
//! turn can split one line, which is `event-loop-workers`' reason to exist.
//!
//! The operator's console runs on another thread: it queues a message in a
//! channel and wakes the loop with a [`Waker`]; the loop does the writing.
//!
//! Two models are this loop with one thing changed, through `Hooks`:
//! `event-loop-workers` answers lines on a pool instead of here, and
//! `multi-reactor` runs N loops that are handed their connections. Read
//! their files against this one.

mod conn;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use socket2::SockRef;

pub(super) use self::conn::{Back, Conn, Input};
use self::conn::{Next, Shared, WarmBuffer};
use super::accept::{already_gone, close_gently, peer_gave_up, AcceptPause};
use super::{until_first, Closing, ConnectionStrategy, IdleSweep, Inbox, Model, Wake};
use crate::error::Error;
use crate::protocol::{ClientId, Goodbye, Outbound};
use crate::server::Server;
use crate::session::{Context, Flow, Session};

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
        let (one_loop, _) = Loop::new(Some(listener), server, |_, _| Ok(Plain))?;
        one_loop.run()
    }
}

/// What a model built on this loop changes in it. Each method's default is
/// the plain loop's way, so `event-loop` itself changes nothing ([`Plain`]).
pub(super) trait Hooks {
    /// Answers what `conn` read. Here: at once, on the loop's thread, into
    /// `out`. A model may instead send the session away with the input
    /// ([`Conn::send_session_away`]) and say [`Answered::Later`]: it comes
    /// back through [`Hooks::back`], after the hook wakes the loop.
    fn answer(
        &mut self,
        _token: Token,
        conn: &mut Conn,
        input: Input<'_>,
        context: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Answered {
        Answered::Now(conn.answer_here(input, context, out))
    }

    /// Connections another thread accepted for this loop, taken when the
    /// loop is woken. Here: none, the loop accepts its own.
    fn arrivals(&mut self) -> Vec<(std::net::TcpStream, SocketAddr)> {
        Vec::new()
    }

    /// Sessions back from being answered elsewhere, taken when the loop is
    /// woken. Here: none, none ever leaves.
    fn back(&mut self) -> Vec<Back> {
        Vec::new()
    }

    /// Why the loop cannot go on, once whatever it relies on is gone (a
    /// pool whose every thread died). Here: it relies on nothing else.
    fn cannot_go_on(&self) -> Option<&'static str> {
        None
    }
}

/// What [`Hooks::answer`] did with the input.
pub(super) enum Answered {
    /// Answered now, replies in `out`.
    Now(Flow),
    /// The session went away to answer it; it comes back later.
    Later,
}

/// The plain loop: every hook as it is by default.
pub(super) struct Plain;

impl Hooks for Plain {}

/// Something that happened to a connection outside its socket.
enum News {
    /// A message from the console (or an idle goodbye).
    Told(Outbound),
    /// Its session is back from being answered elsewhere.
    Back(Back),
}

pub(super) struct Loop<H: Hooks> {
    poll: Poll,
    /// `None` when connections are handed over ([`Hooks::arrivals`]).
    listener: Option<TcpListener>,
    server: Server,
    /// Boxed, so the table holds a pointer per slot: a table of whole
    /// connections keeps room for about as many again, empty, as it grows.
    conns: HashMap<Token, Box<Conn>>,
    /// What the console queued for our clients; its mailbox, handed to the
    /// registry for every client, queues a message and wakes us.
    inbox: Inbox<Arc<Waker>>,
    shared: Shared<H>,
    /// Connections that may still have unread input (budget spent, or reading
    /// resumed after backpressure): visited again without waiting for an event.
    again: Vec<Token>,
    /// Connections that said everything, closed when their grace runs out.
    closing: Closing<Token>,
    /// Read once per turn, when `poll` returns: timers are coarse (tens of
    /// milliseconds at the finest), a turn is not.
    now: Instant,
    idle_sweep: IdleSweep,
    accept_pause: AcceptPause,
}

impl<H: Hooks> Loop<H> {
    /// A loop serving the connections it accepts from `listener` (or, with
    /// none, those its hooks hand over), and the waker that makes it look at
    /// its channels. `hooks` is given the server and that waker.
    pub(super) fn new(
        listener: Option<std::net::TcpListener>,
        server: Server,
        hooks: impl FnOnce(&Server, Arc<Waker>) -> Result<H, Error>,
    ) -> Result<(Loop<H>, Arc<Waker>), Error> {
        let poll = Poll::new().map_err(Error::io("creating the poller"))?;
        let listener = match listener {
            Some(listener) => {
                listener
                    .set_nonblocking(true)
                    .map_err(Error::io("making the listener non-blocking"))?;
                let mut listener = TcpListener::from_std(listener);
                poll.registry()
                    .register(&mut listener, LISTENER, Interest::READABLE)
                    .map_err(Error::io("registering the listener"))?;
                Some(listener)
            }
            None => None,
        };
        let waker =
            Arc::new(Waker::new(poll.registry(), WAKER).map_err(Error::io("creating the waker"))?);
        let wake = Arc::clone(&waker);
        server.shutdown.on_trigger(move || {
            wake.wake();
        });
        let hooks = hooks(&server, Arc::clone(&waker))?;
        let now = Instant::now();
        let idle_sweep = IdleSweep::new(server.limits.idle_timeout, now);
        let new_loop = Loop {
            poll,
            listener,
            server,
            conns: HashMap::new(),
            shared: Shared {
                scratch: vec![0; READ_BUFFER],
                warm: WarmBuffer::default(),
                hooks,
            },
            again: Vec::new(),
            closing: Closing::default(),
            now,
            idle_sweep,
            accept_pause: AcceptPause::default(),
            inbox: Inbox::new(Arc::clone(&waker)),
        };
        Ok((new_loop, waker))
    }

    /// Serves until the server's shutdown fires.
    pub(super) fn run(mut self) -> Result<(), Error> {
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
                    WAKER => {
                        self.take_arrivals();
                        self.take_back();
                        self.deliver_console_messages();
                    }
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
            if let Some(why) = self.shared.hooks.cannot_go_on() {
                // Stop, rather than take clients that would never be
                // answered. Dropping the loop tells and closes those it has.
                return Err(Error::Stopped(why));
            }
        }
    }

    /// Accepts every queued connection (drain readiness).
    fn accept(&mut self) {
        while !self.accept_pause.paused() {
            let Some(listener) = &self.listener else {
                return; // connections are handed over to this loop
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    self.accept_pause.taken(self.now);
                    if !already_gone(SockRef::from(&stream)) {
                        self.admit(stream, peer);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted || peer_gave_up(&e) => {}
                Err(e) => {
                    // EMFILE leaves the connection queued and the listener
                    // readable: retrying now would spin. Pause instead.
                    self.accept_pause.failed(&e, self.now);
                }
            }
        }
    }

    /// Admits the connections another thread accepted for this loop.
    fn take_arrivals(&mut self) {
        for (stream, peer) in self.shared.hooks.arrivals() {
            if let Err(e) = stream.set_nonblocking(true) {
                tracing::debug!(%peer, "cannot use connection: {e}");
                continue;
            }
            self.admit(TcpStream::from_std(stream), peer);
        }
    }

    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        let seats = self.server.limits.max_clients;
        let busy = Goodbye::Busy("too many clients");
        let id = match self.server.admit(peer, self.inbox.mailbox(), seats, busy) {
            Ok(id) => id,
            Err(refused) => return close_gently(&mut stream, refused.line().as_bytes()),
        };
        let _ = stream.set_nodelay(true);
        let token = token_of(id);
        let mut conn = Box::new(Conn::new(stream, Session::new(id), self.now));
        if let Err(e) = conn.register(self.poll.registry(), token) {
            tracing::warn!(%peer, "cannot register connection: {e}");
            return self.server.clients().leave(id);
        }
        self.conns.insert(token, conn);
    }

    /// Passes on the `news` (an operator's line, a goodbye, a session back
    /// from being answered elsewhere), does whatever the connection's readiness allows, then
    /// closes it if done.
    fn serve(&mut self, token: Token, readable: bool, news: Option<News>) {
        // Events for a connection already closed this turn are simply stale.
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        // Writable with nothing waiting to go out (an edge that came as the
        // last replies left): there is nothing to do.
        if !readable && news.is_none() && !conn.has_unsent() {
            return;
        }
        let was_closing = conn.is_closing();
        // False when a line from outside would pass the output bound.
        let kept = match news {
            Some(News::Told(msg)) => conn.tell(msg),
            Some(News::Back(done)) => {
                conn.take_back(done, self.now);
                true
            }
            None => true,
        };
        if !kept {
            return self.close(token);
        }
        match conn.advance(token, readable, &self.server, &mut self.shared, self.now) {
            Ok(Next::Wait) => {}
            Ok(Next::Again) => self.again.push(token),
            Ok(Next::Done) | Err(_) => return self.close(token),
        }
        if let Err(e) = conn.watch_writes(self.poll.registry(), token) {
            tracing::debug!(client = %conn.id(), "cannot watch for writes: {e}");
            return self.close(token);
        }
        if conn.is_closing() && !was_closing {
            self.closing.push(token, self.now);
        }
    }

    /// Takes back the sessions answered elsewhere, sends their replies, and
    /// reads on: what arrived meanwhile made no new edge.
    fn take_back(&mut self) {
        for back in self.shared.hooks.back() {
            self.serve(back.token, true, Some(News::Back(back)));
        }
    }

    /// Carries the operator's messages (queued by the console thread) out.
    fn deliver_console_messages(&mut self) {
        while let Some((id, msg)) = self.inbox.next() {
            self.serve(token_of(id), false, Some(News::Told(msg)));
        }
    }

    fn next_timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let timers = [
            self.accept_pause.until(),
            self.idle_sweep.next(),
            self.closing.next(),
        ];
        until_first(self.now, timers)
    }

    /// Resumes accepting after a pause, closes clients that never took their
    /// last replies, and closes clients silent too long.
    fn after_timers(&mut self) {
        let now = self.now;
        if self.accept_pause.over(now) {
            self.accept(); // no new edge will come for connections already queued
        }
        while let Some(token) = self.closing.expired(now) {
            if self.conns.contains_key(&token) {
                tracing::debug!("client did not take its last replies; closing");
                self.close(token);
            }
        }
        if let Some(limit) = self.idle_sweep.due(now) {
            self.close_idle(limit);
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
            // What arrived while the loop was busy elsewhere has made no
            // event yet: read it before judging the client silent.
            self.serve(token, true, None);
            if self
                .conns
                .get(&token)
                .is_some_and(|c| c.is_idle(now, limit))
            {
                let goodbye = News::Told(Outbound::Close(Goodbye::IdleTimeout));
                self.serve(token, false, Some(goodbye));
            }
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
                let _ = conn.tell(Outbound::Close(Goodbye::ShuttingDown));
                let _ = conn.flush();
            }
            self.close(token);
        }
    }
}

impl<H: Hooks> Drop for Loop<H> {
    /// However a loop ends — shut down, failed, or a bug's panic — none of
    /// its clients is left holding a seat, unanswered: each still here is
    /// told, best effort, and closed. (After a shutdown none is left.)
    fn drop(&mut self) {
        if self.conns.is_empty() {
            return;
        }
        tracing::error!(
            clients = self.conns.len(),
            "an event loop stopped; its clients are closed"
        );
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            if let Some(conn) = self.conns.get_mut(&token) {
                let _ = conn.tell(Outbound::Close(Goodbye::Internal));
                let _ = conn.flush();
            }
            self.close(token);
        }
    }
}

/// The console's mailbox wakes the loop's poll.
impl Wake for Waker {
    fn wake(&self) {
        let _ = Waker::wake(self);
    }
}

fn token_of(id: ClientId) -> Token {
    // Ids start at 1 and are never reused; tokens 0 and 1 are the
    // listener's and the waker's.
    Token(id.0 as usize + 1)
}
