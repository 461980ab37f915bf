//! One connection of the event loop: its socket, its session, and the replies
//! the socket has not taken yet. Every method does only what is possible
//! without waiting; the fields are private, so the loop can only ask a
//! connection to advance, be told something, or close.

use std::io::{self, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::{Answered, Hooks};
use crate::protocol::{ClientId, Goodbye, Outbound};
use crate::server::Server;
use crate::session::{Context, Flow, Session, OUTPUT_LIMIT};
use crate::strategy::accept::close_gently;
use crate::strategy::{add_from_outside, Told};

/// Reads per connection per turn, so one fast sender cannot starve the rest.
const READ_BUDGET: usize = 16;
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

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading requests and answering them.
    Open,
    /// Everything is said (`bye`, an `ERR` line, end of input): closed once
    /// the replies are all sent, or [`CLOSE_GRACE`] after closing began if
    /// the client never takes them.
    ///
    /// [`CLOSE_GRACE`]: crate::strategy::CLOSE_GRACE
    Closing,
}

/// Where the connection's session is.
enum SessionAt {
    /// Here, on the loop's thread.
    Here(Session),
    /// Sent away with what was read, to be answered elsewhere (see
    /// [`Hooks::answer`]): nothing more is read from this client until it is
    /// back ([`Conn::take_back`]).
    Away(ClientId),
}

/// What a loop lends every connection it serves: the read buffer, the warm
/// reply buffer, and the hooks that say who answers.
pub(super) struct Shared<H> {
    /// Reads land here; only an unfinished line is copied out of it.
    pub(super) scratch: Vec<u8>,
    pub(super) warm: WarmBuffer,
    pub(super) hooks: H,
}

/// What was read, for the session to answer.
pub(crate) enum Input<'a> {
    /// Bytes, as read from the client.
    Bytes(&'a [u8]),
    /// The client stopped sending.
    Eof,
    /// Nothing new: answer what waited while replies piled up.
    Resume,
}

/// A session back from being answered elsewhere, with its replies; without
/// it if it was lost there (a thread died on it): the client is then closed.
pub(crate) struct Back {
    pub(crate) token: Token,
    pub(crate) session: Option<Session>,
    pub(crate) replies: Vec<u8>,
    pub(crate) flow: Flow,
}

/// One reply buffer for the whole loop, lent to the connection being served
/// while that connection has nothing waiting to go out.
///
/// Why: a connection that owned its buffer allocated it, grew it (copying a
/// long line again) and freed it for every message, and kept one while idle;
/// lending one cut both user CPU per message and memory per idle connection
/// by about a third (docs/measurements/figures-behind-the-code.md).
/// A connection keeps a buffer of its own only while its client has not
/// taken everything.
#[derive(Default)]
pub(super) struct WarmBuffer(Vec<u8>);

impl WarmBuffer {
    /// The buffer, for a connection with nothing of its own waiting.
    fn lend(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }

    /// A buffer whose replies have all gone out: the one lent comes back;
    /// a connection's own (its client was behind) is freed, as the loop
    /// already has one.
    fn take_back(&mut self, buffer: Vec<u8>) {
        if self.0.capacity() == 0 {
            self.0 = buffer;
        }
    }
}

/// A connection's own replies that the socket has not taken: none at all
/// while its client keeps up.
///
/// Tuning, not the model: boxed and optional, so an idle connection pays 8
/// bytes for it rather than an empty `Vec`'s 24 (why every byte of an idle
/// connection counts: [`Conn`]).
#[derive(Default)]
struct Unsent(
    #[expect(
        clippy::box_collection,
        reason = "8 bytes for every idle connection, not a Vec's 24; the box exists only while replies wait"
    )]
    Option<Box<Vec<u8>>>,
);

impl Unsent {
    fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |own| own.len())
    }

    /// The buffer, leaving none.
    fn take(&mut self) -> Option<Vec<u8>> {
        self.0.take().map(|own| *own)
    }

    /// Keeps `out` (after [`Unsent::take`]) if anything is left in it.
    fn keep(&mut self, out: Vec<u8>) {
        self.0 = (!out.is_empty()).then(|| Box::new(out));
    }

    fn push(&mut self, bytes: &[u8]) {
        self.0
            .get_or_insert_with(Box::default)
            .extend_from_slice(bytes);
    }

    /// Adds `more` after what waits, taking it whole if nothing does.
    fn append(&mut self, more: Vec<u8>) {
        match &mut self.0 {
            Some(own) => own.extend_from_slice(&more),
            None => self.keep(more),
        }
    }
}

/// Every field counts: ten thousand idle clients hold ten thousand of these
/// (the registry's seat and the table's slot come on top). So the client's
/// id lives in its session, a closing connection's deadline in the loop's
/// `Closing`, and a buffer of replies is a connection's own only while its
/// client is behind.
pub(crate) struct Conn {
    stream: TcpStream,
    session: SessionAt,
    /// Replies the socket has not taken yet; none at all most of the time, as
    /// new replies are written into the loop's warm buffer and go out at once.
    unsent: Unsent,
    phase: Phase,
    /// When the client was last heard from (for `--idle-timeout`).
    since: Instant,
    /// Reading stopped because too much output is waiting (backpressure).
    read_paused: bool,
    /// The peer's FIN (or reset) was reported. Data and FIN that arrive
    /// together make one edge, and no later edge announces the FIN, so a
    /// short read must not be taken as drained: read on until `Ok(0)`.
    peer_closed: bool,
    /// WRITABLE is in the socket's interest: only while replies wait.
    watching_writes: bool,
}

impl Conn {
    pub(super) fn new(stream: TcpStream, session: Session, now: Instant) -> Self {
        Conn {
            stream,
            session: SessionAt::Here(session),
            unsent: Unsent::default(),
            phase: Phase::Open,
            since: now,
            read_paused: false,
            peer_closed: false,
            watching_writes: false,
        }
    }

    /// Registers the socket for READABLE alone: a client that takes its
    /// replies at once never needs WRITABLE (see [`Conn::watch_writes`]).
    pub(super) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.stream, token, Interest::READABLE)
    }

    /// Adds WRITABLE to the socket's interest while replies wait for it, and
    /// takes it away once they are sent: the same `epoll_ctl` a C epoll
    /// server makes, and only for a client that fell behind (why: the
    /// module's opening comment in `event_loop.rs`).
    pub(super) fn watch_writes(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let wanted = !self.unsent.is_empty();
        if wanted == self.watching_writes {
            return Ok(());
        }
        let interest = match wanted {
            true => Interest::READABLE | Interest::WRITABLE,
            false => Interest::READABLE,
        };
        registry.reregister(&mut self.stream, token, interest)?;
        self.watching_writes = wanted;
        Ok(())
    }

    pub(crate) fn id(&self) -> ClientId {
        match &self.session {
            SessionAt::Here(session) => session.id(),
            SessionAt::Away(id) => *id,
        }
    }

    /// Whether everything is said and the connection only waits to be
    /// flushed and closed.
    pub(super) fn is_closing(&self) -> bool {
        self.phase == Phase::Closing
    }

    /// Whether the client has been silent for `limit` while the connection
    /// is open — and not waiting for us: a session away is answering what
    /// the client said.
    pub(super) fn is_idle(&self, now: Instant, limit: Duration) -> bool {
        let here = matches!(self.session, SessionAt::Here(_));
        self.phase == Phase::Open && here && now.duration_since(self.since) >= limit
    }

    /// The poller saw the peer's FIN or an error.
    pub(super) fn note_peer_closed(&mut self) {
        self.peer_closed = true;
    }

    /// Writes what it can, reads what it can (unless replies are piling up),
    /// and writes the new replies — into the warm buffer when this
    /// connection has nothing of its own waiting.
    pub(super) fn advance<H: Hooks>(
        &mut self,
        token: Token,
        readable: bool,
        server: &Server,
        shared: &mut Shared<H>,
        now: Instant,
    ) -> io::Result<Next> {
        let mut out = match self.unsent.take() {
            Some(own) => own,
            None => shared.warm.lend(),
        };
        let next = self.serve(&mut out, token, readable, server, shared, now);
        if out.is_empty() {
            shared.warm.take_back(out);
        } else {
            self.unsent.keep(out);
        }
        next
    }

    fn serve<H: Hooks>(
        &mut self,
        out: &mut Vec<u8>,
        token: Token,
        readable: bool,
        server: &Server,
        shared: &mut Shared<H>,
        now: Instant,
    ) -> io::Result<Next> {
        self.write(out)?;
        let mut next = Next::Wait;
        if readable || self.read_paused {
            next = self.read(out, token, server, shared, now);
            self.write(out)?;
            if self.read_paused && out.len() < OUTPUT_LIMIT {
                // The client took its replies: go on with what it sent
                // meanwhile, for which no new edge will come.
                next = Next::Again;
            }
        }
        if self.is_closing() && out.is_empty() {
            next = Next::Done;
        }
        Ok(next)
    }

    fn read<H: Hooks>(
        &mut self,
        out: &mut Vec<u8>,
        token: Token,
        server: &Server,
        shared: &mut Shared<H>,
        now: Instant,
    ) -> Next {
        self.read_paused = false;
        for _ in 0..READ_BUDGET {
            let SessionAt::Here(session) = &self.session else {
                return Next::Wait; // its session is away, answering
            };
            if self.is_closing() {
                return Next::Wait;
            }
            if out.len() >= OUTPUT_LIMIT {
                self.read_paused = true;
                return Next::Wait;
            }
            let mut read = 0;
            let input = match session.has_backlog() {
                true => Input::Resume,
                false => match self.stream.read(&mut shared.scratch) {
                    Ok(0) => Input::Eof,
                    Ok(n) => {
                        self.heard(now);
                        read = n;
                        Input::Bytes(&shared.scratch[..n])
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Wait,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!(client = %self.id(), "read failed: {e}");
                        out.clear();
                        self.start_closing();
                        continue;
                    }
                },
            };
            let context = server.context();
            let flow = match shared.hooks.answer(token, self, input, &context, out) {
                Answered::Now(flow) => flow,
                Answered::Later => return Next::Wait,
            };
            let backlog = matches!(&self.session, SessionAt::Here(s) if s.has_backlog());
            if flow == Flow::Close {
                self.start_closing();
            } else if backlog {
                // Its turn is spent (replies piled up, or the session's time
                // budget ran out): the other clients go first.
                return Next::Again;
            } else if read > 0
                && read < shared.scratch.len()
                && SHORT_READ_DRAINS
                && !self.peer_closed
            {
                return Next::Wait;
            }
        }
        Next::Again
    }

    /// Answers `input` on the loop's own thread, replies into `out`: the
    /// plain loop's way ([`Hooks::answer`]'s default).
    pub(crate) fn answer_here(
        &mut self,
        input: Input<'_>,
        context: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let SessionAt::Here(session) = &mut self.session else {
            return Flow::Continue;
        };
        match input {
            Input::Bytes(input) => {
                let echoed = echo_straight_back(&mut self.stream, session, context, input, out);
                session.on_bytes(context, &input[echoed..], out)
            }
            Input::Eof => session.on_eof(context, out),
            Input::Resume => session.resume(context, out),
        }
    }

    /// Takes the session away, to be answered elsewhere; reading stops until
    /// it is back ([`Conn::take_back`]). `None` if it is away already.
    pub(crate) fn send_session_away(&mut self) -> Option<Session> {
        let away = SessionAt::Away(self.id());
        match std::mem::replace(&mut self.session, away) {
            SessionAt::Here(session) => Some(session),
            SessionAt::Away(_) => None,
        }
    }

    /// The session is back with its replies. If a goodbye came meanwhile
    /// (`/kick`, idle), they go unanswered.
    pub(super) fn take_back(&mut self, done: Back, now: Instant) {
        let Some(session) = done.session else {
            // It was lost where it was answered: the conversation cannot go on.
            let _ = self.tell(Outbound::Close(Goodbye::Internal));
            return;
        };
        self.session = SessionAt::Here(session);
        // The client's silence while its lines were being answered was ours.
        self.heard(now);
        if self.is_closing() {
            return;
        }
        self.unsent.append(done.replies);
        if done.flow == Flow::Close {
            self.start_closing();
        }
    }

    /// The client was heard from (or is to be treated so) at `now`.
    fn heard(&mut self, now: Instant) {
        self.since = now;
    }

    /// Everything is said: the loop closes the connection once its replies
    /// are sent, or when its grace runs out (the loop's `Closing`).
    fn start_closing(&mut self) {
        self.phase = Phase::Closing;
    }

    /// Whether replies are waiting for the socket to take them.
    pub(super) fn has_unsent(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// Writes as much of the replies waiting as the socket takes now (at
    /// shutdown: the goodbye).
    pub(super) fn flush(&mut self) -> io::Result<()> {
        let Some(mut own) = self.unsent.take() else {
            return Ok(());
        };
        let written = self.write(&mut own);
        self.unsent.keep(own);
        written
    }

    /// Writes as much of `out` as the socket takes now, and drains that
    /// from it: a client that reads, but never quite catches up, must not
    /// make the buffer grow without end.
    fn write(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let mut written = 0;
        let result = loop {
            if written == out.len() {
                break Ok(());
            }
            match self.stream.write(&out[written..]) {
                Ok(0) => break Err(ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(client = %self.id(), "write failed: {e}");
                    break Err(e);
                }
            }
        };
        out.drain(..written);
        result
    }

    /// Queues a message from outside the session: an operator's line (not
    /// once the connection is ending), or a goodbye, after which it closes.
    /// False if the line would take the output past its bound: then the
    /// connection must be closed now.
    pub(super) fn tell(&mut self, msg: Outbound) -> bool {
        if self.is_closing() {
            return true;
        }
        let (id, unsent) = (self.id(), self.unsent.len());
        match add_from_outside(id, &msg, unsent, |bytes| self.unsent.push(bytes)) {
            Told::Queued => true,
            Told::Closing => {
                self.start_closing();
                true
            }
            Told::Dropped => false,
        }
    }

    /// Stops watching the socket and closes it gently (see
    /// [`close_gently`]); what is still unsent is dropped.
    pub(super) fn close(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.stream);
        close_gently(&mut self.stream, &[]);
    }
}

/// Tuning, not the model: echo's whole lines are their own answer, so with
/// nothing waiting before them they go back straight from the loop's read
/// buffer, with no copy into a reply buffer; only what the socket refuses is
/// kept in `out`. Returns how much of `input` was answered so. (Why it is
/// worth it: docs/measurements/2026-11-30-event-loop-at-kernels-limit.md.)
fn echo_straight_back(
    stream: &mut TcpStream,
    session: &mut Session,
    context: &Context<'_>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> usize {
    if !out.is_empty() {
        return 0;
    }
    let echoed = session.passes_through(context, input);
    if echoed > 0 {
        // An error leaves everything in `out`, for the write after this
        // read, which reports it.
        let sent = stream.write(&input[..echoed]).unwrap_or(0);
        out.extend_from_slice(&input[sent..echoed]);
    }
    echoed
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::mode::Echo;

    /// A client that sends far ahead and reads steadily, but slower than it
    /// sends, never makes the connection hold more than about the output limit.
    #[test]
    fn output_stays_bounded_for_a_slow_steady_reader() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        server_side.set_nonblocking(true).unwrap();
        client.set_nonblocking(true).unwrap();
        let mut server = Server::new(Echo);
        server.limits.max_line = 100_000;
        let session = Session::new(ClientId(1));
        let mut conn = Conn::new(TcpStream::from_std(server_side), session, Instant::now());
        let mut shared = Shared {
            scratch: vec![0; 64 * 1024],
            warm: WarmBuffer::default(),
            hooks: super::super::Plain,
        };
        let line = [vec![b'z'; 9_999], vec![b'\n']].concat();
        let mut sink = [0; 4096];
        let mut most = 0;
        for _ in 0..3_000 {
            for _ in 0..4 {
                let _ = client.write(&line); // as much as the socket takes
            }
            conn.advance(Token(2), true, &server, &mut shared, Instant::now())
                .unwrap();
            most = most.max(conn.unsent.len());
            let mut taken = 0;
            while taken < 6_000 {
                match client.read(&mut sink) {
                    Ok(n) if n > 0 => taken += n,
                    _ => break,
                }
            }
        }
        assert!(
            most < OUTPUT_LIMIT + 2 * shared.scratch.len(),
            "output grew to {most} bytes"
        );
    }
}
