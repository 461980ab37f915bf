//! The io-uring model's loop: submit, wait, complete (see the model's
//! lesson in `io_uring.rs`). The loop comes first; below it, the rings
//! themselves and the buffers lent to the kernel, where every `unsafe` is.

use std::alloc::{self, Layout};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use io_uring::cqueue::{buffer_select, more};
use io_uring::types::BufRingEntry;
use io_uring::{opcode, squeue, types, IoUring as Uring};
use socket2::SockRef;

use super::{MODEL, SINGLE_SHOT_ENV};
use crate::clients::Outbox;
use crate::error::Error;
use crate::protocol::{ClientId, Goodbye, Outbound};
use crate::server::Server;
use crate::session::{Flow, Session, OUTPUT_LIMIT};
use crate::strategy::accept::{
    already_gone, close_gently, peer_gave_up, AcceptFailures, ACCEPT_BACKOFF,
};
use crate::strategy::{
    beyond_replies, idle_sweep_interval, past_output_bound, InFlight, CLOSE_GRACE,
};

/// Submission ring size: operations in flight at once before a submit.
const ENTRIES: u32 = 1024;
/// The provided buffers every multishot receive draws from: how many, and
/// how big. They belong to the loop, not to a connection; one is out only
/// from a completion that names it until its bytes are handed on, so a
/// turn's worth of busy connections uses them.
const BUFFERS: u16 = 512;
const BUFFER_SIZE: u32 = 4096;
/// How long a stopping server waits for its goodbyes to go out, and then
/// for the kernel to give back the buffers still in flight.
const STOP_GRACE: Duration = Duration::from_millis(300);

/// What a completion is about: the low three bits of its `user_data`; the
/// rest is the client's id (0: the loop's own operations).
const ACCEPT: u64 = 0;
const WAKE: u64 = 1;
const RECV: u64 = 2;
const SEND: u64 = 3;
/// The cancellation of an operation: a client's multishot receive, or
/// (id 0) the accept at shutdown.
const CANCEL: u64 = 4;
const KIND: u64 = 0b111;

fn user_data(id: u64, kind: u64) -> u64 {
    id << 3 | kind
}

pub(super) fn serve(listener: TcpListener, server: Server, single_shot: bool) -> Result<(), Error> {
    let mut ring = Ring::open()?;
    ring.offer_buffers(single_shot);
    let (wake, waker) = UnixStream::pair().map_err(Error::io("creating the wake-up socket"))?;
    waker
        .set_nonblocking(true)
        .map_err(Error::io("creating the wake-up socket"))?;
    let waker = Arc::new(Mutex::new(waker));
    let wake_on_stop = Arc::clone(&waker);
    server.shutdown.on_trigger(move || wake_up(&wake_on_stop));
    let (tx, inbox) = mpsc::channel();
    let now = Instant::now();
    let mut ring_loop = Loop {
        ring,
        listener,
        server,
        conns: HashMap::new(),
        outbox: Arc::new(RingOutbox {
            tx,
            waker,
            in_flight: InFlight::default(),
        }),
        inbox,
        wake,
        wake_buf: Box::leak(Box::new(KernelBuf::new())),
        spares: Spares::default(),
        closing: VecDeque::new(),
        accepting: false,
        accept_again_at: None,
        accept_failures: AcceptFailures::default(),
        stalled: Vec::new(),
        wake_stalled: false,
        next_idle_sweep: now,
        now,
        done: Vec::new(),
    };
    ring_loop.submit_wake_recv();
    ring_loop.submit_accept();
    ring_loop.run()
}

struct Loop {
    ring: Ring,
    listener: TcpListener,
    server: Server,
    /// Boxed: the map doubles as it grows, and a bucket of a pointer
    /// rather than a whole connection keeps that spare room small (see
    /// `docs/measurements/2026-12-07-lean-models.md`).
    conns: HashMap<u64, Box<Conn>>,
    outbox: Arc<RingOutbox>,
    inbox: Receiver<(ClientId, Outbound)>,
    /// The receiving end of the wake-up socket, and its buffer. The
    /// buffer is leaked on purpose: a receive into it is always in
    /// flight, so it must outlive everything, the ring included.
    wake: UnixStream,
    wake_buf: &'static KernelBuf,
    /// Closing connections, in deadline order.
    closing: VecDeque<u64>,
    accepting: bool,
    accept_again_at: Option<Instant>,
    accept_failures: AcceptFailures,
    /// Connections (and the wake-up receive) whose next operation found the
    /// submission ring full, or whose input waits its turn: pumped again
    /// after the turn's completions.
    stalled: Vec<u64>,
    wake_stalled: bool,
    next_idle_sweep: Instant,
    now: Instant,
    /// The turn's completions, kept to be reused.
    done: Vec<Completion>,
    spares: Spares,
}

impl Loop {
    /// Submit, wait, complete: the whole model, once per turn.
    fn run(&mut self) -> Result<(), Error> {
        while !self.server.shutdown.is_triggered() {
            self.wait(self.next_timer())?;
            self.now = Instant::now();
            let mut done = std::mem::take(&mut self.done);
            self.ring.reap(&mut done);
            for completion in done.drain(..) {
                self.complete(completion);
            }
            self.done = done;
            if std::mem::take(&mut self.wake_stalled) {
                self.submit_wake_recv();
            }
            for id in std::mem::take(&mut self.stalled) {
                self.pump(id);
            }
            self.after_timers();
        }
        self.shut_down();
        Ok(())
    }

    fn complete(&mut self, done: Completion) {
        let id = done.user_data >> 3;
        match done.user_data & KIND {
            ACCEPT => self.accepted(done.result),
            WAKE => {
                self.deliver_console_messages();
                self.submit_wake_recv();
            }
            RECV => self.received(id, done),
            SEND => self.sent(id, done.result),
            _ => self.cancelled(id),
        }
    }

    fn accepted(&mut self, result: i32) {
        self.accepting = false;
        if result < 0 {
            let e = io::Error::from_raw_os_error(-result);
            if !(peer_gave_up(&e) || e.kind() == io::ErrorKind::Interrupted) {
                // EMFILE leaves the connection queued: retrying at once would spin.
                self.accept_failures.record(&e, self.now);
                self.accept_again_at = Some(self.now + ACCEPT_BACKOFF);
                return;
            }
        } else {
            self.accept_failures.recovered(self.now);
            self.admit(self.ring.accepted(result));
        }
        self.submit_accept();
    }

    fn admit(&mut self, mut stream: TcpStream) {
        let Ok(peer) = stream.peer_addr() else {
            return; // gone already
        };
        if already_gone(SockRef::from(&stream)) {
            return;
        }
        let seats = self.server.limits.max_clients;
        let busy = Goodbye::Busy("too many clients");
        let id = match self.server.admit(peer, self.outbox.clone(), seats, busy) {
            Ok(id) => id,
            Err(refused) => {
                let _ = stream.set_nonblocking(true);
                return close_gently(&mut stream, refused.line().as_bytes());
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            stream,
            session: Session::new(id),
            // Only the single-shot path gives a connection a buffer of its own.
            recv_buf: (!self.ring.multishot()).then(KernelBuf::new),
            receiving: false,
            cancelling: false,
            held: None,
            held_eof: false,
            out: Vec::new(),
            in_flight: Vec::new(),
            sent: 0,
            sending: false,
            phase: Phase::Open,
            since: self.now,
        };
        self.conns.insert(id.0, Box::new(conn));
        self.pump(id.0);
    }

    /// A receive completed: the bytes it names go to the session — or wait
    /// in `held` if replies must go out first — and the buffer goes back to
    /// the ring. A multishot receive stays armed while the flags say MORE.
    fn received(&mut self, id: u64, done: Completion) {
        let now = self.now;
        let chosen = buffer_select(done.flags);
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.receiving &= more(done.flags);
            // The single-shot path's own buffer, out of the way of the session.
            let own = conn.recv_buf.take();
            let bytes = match (chosen, &own) {
                (Some(bid), _) => self.ring.provided(bid, done.result),
                (None, Some(own)) if done.result > 0 => own.filled(done.result as usize),
                _ => &[],
            };
            let flow = match done.result {
                // Closing: what the client still sends is not answered.
                _ if conn.phase != Phase::Open => Flow::Continue,
                n if n > 0 => {
                    conn.since = now;
                    self.spares.lend(&mut conn.out);
                    conn.take_input(&self.server, bytes)
                }
                0 => {
                    conn.held_eof = true;
                    self.spares.lend(&mut conn.out);
                    conn.take_input(&self.server, &[])
                }
                // The buffers ran out (ENOBUFS), or the receive was called
                // back: re-armed by `pump` when input is wanted. By then this
                // turn's buffers are all back in the ring, so it never spins.
                e if e == -libc::ENOBUFS || e == -libc::ECANCELED => Flow::Continue,
                _ => {
                    conn.out.clear();
                    Flow::Close
                }
            };
            conn.recv_buf = own;
            if flow == Flow::Close {
                conn.start_closing(now);
                self.closing.push_back(id);
            }
        }
        if let Some(bid) = chosen {
            self.ring.give_back(bid);
        }
        self.pump(id);
    }

    fn sent(&mut self, id: u64, result: i32) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.sending = false;
        if result < 0 {
            conn.out.clear();
            conn.in_flight.clear();
            conn.sent = 0;
            conn.phase = Phase::Done;
        } else {
            conn.sent += result as u32;
            if conn.sent as usize == conn.in_flight.len() {
                self.spares.take_back(&mut conn.in_flight);
                conn.sent = 0;
            }
        }
        self.pump(id);
    }

    fn cancelled(&mut self, id: u64) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.cancelling = false;
            self.pump(id);
        }
    }

    /// Does what the connection's state calls for: answers input that
    /// waited, hands the kernel the next send, arms a receive while input
    /// is wanted (and calls a multishot one back while it is not), and
    /// closes the connection once everything is said.
    fn pump(&mut self, id: u64) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.phase == Phase::Open && conn.can_resume() {
            self.spares.lend(&mut conn.out);
            if conn.resume(&self.server) == Flow::Close {
                conn.start_closing(now);
                self.closing.push_back(id);
            } else if conn.can_resume() {
                // Its turn is spent (the session's time budget): the rest
                // waits until every other completion of this turn is handled.
                self.stalled.push(id);
            }
        }
        if conn.phase != Phase::Done && !conn.sending {
            if conn.in_flight.is_empty() {
                std::mem::swap(&mut conn.in_flight, &mut conn.out);
            }
            let sent = conn.sent as usize;
            if sent < conn.in_flight.len() {
                conn.sending = self.ring.send(id, &conn.stream, &conn.in_flight[sent..]);
                if !conn.sending {
                    self.stalled.push(id);
                }
            }
        }
        // An idle connection holds no reply buffer.
        if conn.out.is_empty() {
            self.spares.take_back(&mut conn.out);
        }
        if conn.wants_input() && !conn.receiving && !conn.cancelling {
            conn.receiving = self.ring.receive(id, &conn.stream, conn.recv_buf.as_ref());
            if !conn.receiving {
                self.stalled.push(id);
            }
        } else if !conn.wants_input() && conn.receiving && !conn.cancelling {
            // A multishot receive would go on reading what there is no room
            // to answer: it is called back, and re-armed once there is.
            conn.cancelling = self.ring.multishot() && self.ring.cancel(id, RECV);
        }
        let said_all = !conn.sending && conn.unsent() == 0;
        if conn.phase == Phase::Closing && said_all {
            conn.phase = Phase::Done;
        }
        if conn.phase == Phase::Done {
            if conn.receiving || conn.sending {
                // Ends what is in flight, so its buffer comes back; the
                // connection goes with the last completion.
                let _ = conn.stream.shutdown(Direction::Both);
            } else {
                self.drop_conn(id);
            }
        }
    }

    fn drop_conn(&mut self, id: u64) {
        if let Some(mut conn) = self.conns.remove(&id) {
            self.server.clients().leave(conn.session.id());
            let _ = conn.stream.set_nonblocking(true);
            close_gently(&mut conn.stream, &[]);
        }
    }

    /// Carries the operator's messages (queued by the console thread) out.
    fn deliver_console_messages(&mut self) {
        while let Ok((id, msg)) = self.inbox.try_recv() {
            self.outbox.in_flight.took(id, &msg);
            self.tell(id.0, msg);
        }
    }

    fn tell(&mut self, id: u64, msg: Outbound) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.phase != Phase::Open {
            return;
        }
        match msg {
            Outbound::Line(text) => {
                let outside = beyond_replies(conn.unsent());
                if past_output_bound(conn.session.id(), outside, text.len() + 1) {
                    conn.out.clear();
                    conn.phase = Phase::Done;
                } else {
                    conn.out.extend_from_slice(text.as_bytes());
                    conn.out.push(b'\n');
                }
            }
            // Its output is past the bound: no goodbye would get through.
            Outbound::Close(Goodbye::Overflow) => {
                conn.out.clear();
                conn.phase = Phase::Done;
            }
            Outbound::Close(why) => {
                conn.out.extend_from_slice(why.line().as_bytes());
                conn.start_closing(now);
                self.closing.push_back(id);
            }
        }
        self.pump(id);
    }

    fn submit_accept(&mut self) {
        if self.accepting || self.accept_again_at.is_some() {
            return;
        }
        self.accepting = self.ring.accept(&self.listener);
        if !self.accepting {
            self.accept_again_at = Some(self.now + ACCEPT_BACKOFF);
        }
    }

    fn submit_wake_recv(&mut self) {
        self.wake_stalled = !self.ring.wake_recv(&self.wake, self.wake_buf);
    }

    fn next_timer(&self) -> Option<Duration> {
        let idle = self
            .server
            .limits
            .idle_timeout
            .map(|_| self.next_idle_sweep);
        let grace = self.closing.front().and_then(|id| self.deadline(*id));
        // Stalled operations are retried as soon as the ring has room.
        let retry = (self.wake_stalled || !self.stalled.is_empty()).then_some(self.now);
        [idle, grace, self.accept_again_at, retry]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(self.now))
    }

    fn deadline(&self, id: u64) -> Option<Instant> {
        let conn = self.conns.get(&id)?;
        (conn.phase == Phase::Closing).then(|| conn.since + CLOSE_GRACE)
    }

    /// Resumes accepting after a pause, closes clients that never took their
    /// last replies, and closes clients silent too long.
    fn after_timers(&mut self) {
        let now = self.now;
        if self.accept_again_at.is_some_and(|at| at <= now) {
            self.accept_again_at = None;
            self.submit_accept();
        }
        while let Some(&id) = self.closing.front() {
            match self.deadline(id) {
                Some(by) if by > now => break,
                Some(_) => {
                    if let Some(conn) = self.conns.get_mut(&id) {
                        tracing::debug!("client did not take its last replies; closing");
                        conn.phase = Phase::Done;
                    }
                    self.pump(id);
                }
                None => {}
            }
            self.closing.pop_front();
        }
        if let Some(limit) = self.server.limits.idle_timeout {
            if now >= self.next_idle_sweep {
                self.next_idle_sweep = now + idle_sweep_interval(limit);
                let idle: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.phase == Phase::Open && now.duration_since(c.since) >= limit)
                    .map(|(id, _)| *id)
                    .collect();
                for id in idle {
                    self.tell(id, Outbound::Close(Goodbye::IdleTimeout));
                }
            }
        }
    }

    /// Tells every client the server is going, gives the goodbyes a
    /// moment to go out, then waits for the kernel to give back every
    /// buffer still in flight. One it never gives back is leaked, never
    /// freed under the kernel's feet.
    fn shut_down(&mut self) {
        // The accept in flight holds the listening socket: until it is
        // cancelled, the port would accept connections after we exit.
        if self.accepting {
            self.ring.cancel(0, ACCEPT);
        }
        self.deliver_console_messages();
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.tell(id, Outbound::Close(Goodbye::ShuttingDown));
        }
        let until = Instant::now() + STOP_GRACE;
        self.drain_until(until);
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.phase = Phase::Done;
            }
            self.pump(id);
        }
        self.drain_until(Instant::now() + STOP_GRACE);
        tracing::debug!(
            submitted = self.ring.submitted,
            "io-uring: operations submitted over the server's life"
        );
        for (_, conn) in self.conns.drain() {
            self.server.clients().leave(conn.session.id());
            self.ring.kernel_may_hold_buffers = true;
            std::mem::forget(conn); // the kernel may still write into it
        }
    }

    fn drain_until(&mut self, until: Instant) {
        while !self.conns.is_empty() || self.accepting {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.wait(Some(left)).is_err() {
                return;
            }
            self.now = Instant::now();
            let mut done = std::mem::take(&mut self.done);
            self.ring.reap(&mut done);
            for completion in done.drain(..) {
                let (id, result) = (completion.user_data >> 3, completion.result);
                match completion.user_data & KIND {
                    ACCEPT => {
                        self.accepting = false;
                        if result >= 0 {
                            // A client just too late is told, not dropped.
                            let mut late = self.ring.accepted(result);
                            let _ = late.set_nonblocking(true);
                            let goodbye = Goodbye::ShuttingDown.line();
                            close_gently(&mut late, goodbye.as_bytes());
                        }
                    }
                    RECV => self.received(id, completion),
                    SEND => self.sent(id, result),
                    CANCEL => self.cancelled(id),
                    _ => {} // no more console
                }
            }
            self.done = done;
        }
    }

    /// Submits what is queued and waits for one completion, or until
    /// `timeout`.
    fn wait(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.ring.submit_and_wait(timeout).map_err(|e| Error::Io {
            context: "waiting for completions",
            source: e,
        })
    }
}

impl Drop for Loop {
    /// However the loop ends — an error, a panic — each client still here
    /// is told (best effort), shut down and forgotten by the registry, so
    /// none is left hanging or holding a seat; a connection with an
    /// operation in flight is leaked, never freed under the kernel's feet.
    fn drop(&mut self) {
        // An accept may still be in flight and keep the listener open:
        // shut, it takes no client that nobody would serve.
        let _ = SockRef::from(&self.listener).shutdown(Direction::Both);
        for (_, mut conn) in self.conns.drain() {
            self.server.clients().leave(conn.session.id());
            let _ = conn.stream.set_nonblocking(true);
            if !conn.sending {
                let _ = conn.stream.write(Goodbye::Internal.line().as_bytes());
            }
            let _ = conn.stream.shutdown(Direction::Both);
            if conn.receiving || conn.sending {
                self.ring.kernel_may_hold_buffers = true;
                std::mem::forget(conn);
            }
        }
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// Everything is said: closed once sent, or [`CLOSE_GRACE`] after it
    /// began closing.
    Closing,
    /// Shut down; dropped once the kernel has given back its buffers.
    Done,
}

/// One client. Idle on the multishot path, it holds its session, its socket
/// and one armed receive in the kernel: no buffer, as `held`, `out` and
/// `in_flight` are empty and unallocated then.
struct Conn {
    stream: TcpStream,
    session: Session,
    /// The single-shot path's own receive buffer: the kernel's while
    /// `receiving`. None on the multishot path.
    recv_buf: Option<KernelBuf>,
    /// A receive is armed (a multishot one until a completion without MORE).
    receiving: bool,
    /// The multishot receive is being called back.
    cancelling: bool,
    /// Input that arrived while replies had to go out first (a multishot
    /// receive reads on until its cancellation lands), and whether the
    /// client's end came after it: answered once there is room.
    #[expect(
        clippy::box_collection,
        reason = "8 bytes for every idle connection, not a Vec's 24; the box exists only while input waits"
    )]
    held: Option<Box<Vec<u8>>>,
    held_eof: bool,
    /// Replies not yet handed to the kernel.
    out: Vec<u8>,
    /// The kernel's while `sending`: bytes handed over, `sent` of them done
    /// (a u32, as a send takes at most that many, and what waits stops
    /// growing near [`OUTPUT_LIMIT`]; it packs beside the socket).
    in_flight: Vec<u8>,
    sent: u32,
    sending: bool,
    phase: Phase,
    /// When the phase began: the client was last heard from (open), or
    /// the closing began (closing).
    since: Instant,
}

impl Conn {
    fn unsent(&self) -> usize {
        self.out.len() + self.in_flight.len() - self.sent as usize
    }

    /// Whether the session can take new input now: open, with nothing
    /// waiting to be answered and its replies under the bound.
    fn wants_input(&self) -> bool {
        self.phase == Phase::Open
            && !self.session.has_backlog()
            && self.held.is_none()
            && !self.held_eof
            && self.unsent() < OUTPUT_LIMIT
    }

    /// Whether input a pause left waiting can be answered now: its replies
    /// have room.
    fn can_resume(&self) -> bool {
        let waiting = self.session.has_backlog() || self.held.is_some() || self.held_eof;
        waiting && self.unsent() < OUTPUT_LIMIT
    }

    /// Hands what arrived to the session, or holds it while earlier input
    /// still waits.
    fn take_input(&mut self, server: &Server, bytes: &[u8]) -> Flow {
        let waiting = self.session.has_backlog() || self.held.is_some();
        if waiting || self.unsent() >= OUTPUT_LIMIT {
            if !bytes.is_empty() {
                self.held.get_or_insert_default().extend_from_slice(bytes);
            }
            return Flow::Continue;
        }
        let flow = self
            .session
            .on_bytes(&server.context(), bytes, &mut self.out);
        if flow == Flow::Continue && self.held_eof && !self.session.has_backlog() {
            self.held_eof = false;
            return self.session.on_eof(&server.context(), &mut self.out);
        }
        flow
    }

    /// Answers what waited: the session's own backlog first, then what
    /// arrived meanwhile, then the client's end.
    fn resume(&mut self, server: &Server) -> Flow {
        let context = server.context();
        if self.session.has_backlog() {
            return self.session.resume(&context, &mut self.out);
        }
        let held = self.held.take().unwrap_or_default();
        let flow = self.session.on_bytes(&context, &held, &mut self.out);
        if flow == Flow::Continue && self.held_eof && !self.session.has_backlog() {
            self.held_eof = false;
            return self.session.on_eof(&context, &mut self.out);
        }
        flow
    }

    fn start_closing(&mut self, now: Instant) {
        if self.phase == Phase::Open {
            self.phase = Phase::Closing;
            self.since = now;
        }
    }
}

/// Reply buffers between uses, so that an idle connection holds none and
/// a busy one does not allocate one per message: a connection borrows one
/// as its replies begin and gives it back once they are sent (why and what
/// it saved: docs/measurements/2026-12-07-io-uring-lean-again.md).
#[derive(Default)]
struct Spares(Vec<Vec<u8>>);

impl Spares {
    /// At most this many are kept: enough for every connection of a busy
    /// turn; more would be memory held for a burst that has passed.
    const KEEP: usize = 128;
    /// A buffer grown past this (a client that fell far behind) is freed.
    const KEEP_CAPACITY: usize = 16 * 1024;

    /// Gives `out` a spare buffer if it has none.
    fn lend(&mut self, out: &mut Vec<u8>) {
        if out.capacity() == 0 {
            if let Some(spare) = self.0.pop() {
                *out = spare;
            }
        }
    }

    /// Takes back `buf`'s allocation, its bytes all sent, leaving it empty.
    fn take_back(&mut self, buf: &mut Vec<u8>) {
        let mut buf = std::mem::take(buf);
        if buf.capacity() > 0 && buf.capacity() <= Self::KEEP_CAPACITY && self.0.len() < Self::KEEP
        {
            buf.clear();
            self.0.push(buf);
        }
    }
}

/// The console's way into the ring: queue the message, then write one
/// byte to the wake-up socket, whose receive is always in flight.
struct RingOutbox {
    tx: Sender<(ClientId, Outbound)>,
    waker: Arc<Mutex<UnixStream>>,
    in_flight: InFlight,
}

impl Outbox for RingOutbox {
    fn send(&self, to: ClientId, msg: Outbound) {
        let Some(msg) = self.in_flight.admit(to, msg) else {
            return;
        };
        if self.tx.send((to, msg)).is_ok() {
            wake_up(&self.waker);
        }
    }
}

/// A full wake-up socket already holds a wake-up: the error is ignored.
fn wake_up(waker: &Mutex<UnixStream>) {
    let mut waker = waker.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = waker.write(&[1]);
}

// ---------------------------------------------------------------------------
// The rings and the buffers lent to the kernel: every `unsafe` of the model.

/// One completion, as the loop reads it.
struct Completion {
    user_data: u64,
    result: i32,
    flags: u32,
}

/// The ring, checked for what this model needs, with the provided buffers
/// when multishot receive works here.
pub(super) struct Ring {
    uring: Uring,
    /// Operations submitted (logged at shutdown): what multishot saves.
    submitted: u64,
    /// The buffers multishot receives draw from; None on the single-shot path.
    provided: Option<BufRing>,
    /// Set when an operation may still be in flight as the ring goes: the
    /// provided buffers are then leaked, never freed under the kernel's feet.
    kernel_may_hold_buffers: bool,
}

impl Ring {
    /// Whether io_uring works here, with a ring just big enough to ask.
    pub(super) fn probe() -> Result<(), Error> {
        Ring::with_entries(8).map(drop)
    }

    fn open() -> Result<Ring, Error> {
        Ring::with_entries(ENTRIES)
    }

    fn with_entries(entries: u32) -> Result<Ring, Error> {
        let unavailable = |reason: String| Error::Unavailable {
            model: MODEL.name,
            reason,
        };
        // Room for more completions than submissions: each connection
        // has at most three operations out, and completions are reaped once
        // per turn. Past this many, the kernel holds the overflow until they
        // are reaped (IORING_FEAT_NODROP).
        let uring = Uring::builder()
            .setup_cqsize(entries * 4)
            .build(entries)
            .map_err(|e| unavailable(format!("the kernel refused io_uring ({e})")))?;
        if !uring.params().is_feature_ext_arg() {
            return Err(unavailable(
                "the kernel's io_uring is too old (needs 5.11)".into(),
            ));
        }
        Ok(Ring {
            uring,
            submitted: 0,
            provided: None,
            kernel_may_hold_buffers: false,
        })
    }

    /// Registers the provided buffers if this kernel has multishot receive
    /// (6.0), unless `single_shot` (or [`SINGLE_SHOT_ENV`]) asks for the
    /// path every io_uring kernel has; says which in one line.
    fn offer_buffers(&mut self, single_shot: bool) {
        let forced = single_shot || std::env::var_os(SINGLE_SHOT_ENV).is_some_and(|v| v == "1");
        let why_not = if forced {
            "asked for".to_string()
        } else {
            match BufRing::register(&self.uring, BUFFERS, BUFFER_SIZE) {
                Err(e) => format!("this kernel has no provided-buffer rings: {e}"),
                Ok(ring) => {
                    self.provided = Some(ring);
                    if self.multishot_works() {
                        return;
                    }
                    self.drop_provided();
                    "this kernel has no multishot receive".to_string()
                }
            }
        };
        tracing::info!("io-uring: single-shot receives, a buffer per connection ({why_not})");
    }

    fn multishot(&self) -> bool {
        self.provided.is_some()
    }

    /// Whether a multishot receive works: one byte sent over a socket pair
    /// must arrive with the receive still armed (MORE); kernels before 6.0
    /// refuse the flag. Runs before anything else is in flight.
    fn multishot_works(&mut self) -> bool {
        let Ok((ours, mut theirs)) = UnixStream::pair() else {
            return false;
        };
        if theirs.write_all(&[0]).is_err() || !self.receive(0, &ours, None) {
            return false;
        }
        let (mut works, mut ended) = (false, false);
        let mut done = Vec::new();
        while !ended {
            if self.submit_and_wait(Some(Duration::from_secs(1))).is_err() {
                self.kernel_may_hold_buffers = true;
                return false;
            }
            self.reap(&mut done);
            if done.is_empty() {
                // No answer within a second: not a ring to rely on.
                self.kernel_may_hold_buffers = true;
                return false;
            }
            for c in done.drain(..) {
                works |= c.result == 1 && more(c.flags);
                ended |= !more(c.flags);
                if let Some(bid) = buffer_select(c.flags) {
                    self.give_back(bid);
                }
            }
            // Its end ends the receive (with 0), which then lends nothing.
            let _ = ours.shutdown(Direction::Both);
        }
        works
    }

    fn drop_provided(&mut self) {
        if let Some(provided) = self.provided.take() {
            if self.kernel_may_hold_buffers {
                std::mem::forget(provided);
            } else {
                let _ = self.uring.submitter().unregister_buf_ring(BufRing::GROUP);
                drop(provided);
            }
        }
    }

    /// Submits what is queued and waits for one completion, or until
    /// `timeout`. A timeout, a signal, or a full completion queue all
    /// mean "look", not failure.
    fn submit_and_wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let waited = match timeout {
            Some(timeout) => {
                let timespec = types::Timespec::from(timeout);
                let args = types::SubmitArgs::new().timespec(&timespec);
                self.uring.submitter().submit_with_args(1, &args)
            }
            None => self.uring.submit_and_wait(1),
        };
        match waited {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            other => other.map(drop),
        }
    }

    /// The completions that have arrived.
    fn reap(&mut self, into: &mut Vec<Completion>) {
        into.extend(self.uring.completion().map(|c| Completion {
            user_data: c.user_data(),
            result: c.result(),
            flags: c.flags(),
        }));
    }

    /// The socket a successful accept completion names.
    fn accepted(&self, fd: i32) -> TcpStream {
        // SAFETY: a successful accept completion's result is a new
        // descriptor that nothing else owns.
        unsafe { TcpStream::from_raw_fd(fd) }
    }

    fn accept(&mut self, listener: &TcpListener) -> bool {
        let fd = types::Fd(listener.as_raw_fd());
        // As std's accept: not inherited by a child.
        let accept = opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
            .flags(libc::SOCK_CLOEXEC);
        // SAFETY: no buffer: the peer's address is not asked for.
        unsafe { self.push(&accept.build().user_data(user_data(0, ACCEPT))) }
    }

    /// Arms client `id`'s receive: a multishot one drawing on the provided
    /// buffers, or a single one into `own`, the connection's buffer.
    fn receive(&mut self, id: u64, stream: &impl AsRawFd, own: Option<&KernelBuf>) -> bool {
        let fd = types::Fd(stream.as_raw_fd());
        let entry = match (&self.provided, own) {
            (Some(_), _) => opcode::RecvMulti::new(fd, BufRing::GROUP).build(),
            (None, Some(buf)) => opcode::Recv::new(fd, buf.ptr(), KernelBuf::LEN as u32).build(),
            (None, None) => return false,
        };
        // SAFETY: the provided buffers outlive every receive (they are
        // leaked if one may still be in flight when the ring goes); a
        // connection's own buffer is an allocation of its own (it does not
        // move with the connection), kept until `receiving` is false.
        unsafe { self.push(&entry.user_data(user_data(id, RECV))) }
    }

    fn wake_recv(&mut self, wake: &UnixStream, buf: &'static KernelBuf) -> bool {
        let fd = types::Fd(wake.as_raw_fd());
        let recv = opcode::Recv::new(fd, buf.ptr(), KernelBuf::LEN as u32);
        // SAFETY: the buffer is leaked: it lives as long as the process.
        unsafe { self.push(&recv.build().user_data(user_data(0, WAKE))) }
    }

    fn send(&mut self, id: u64, stream: &TcpStream, bytes: &[u8]) -> bool {
        let len = bytes.len().min(u32::MAX as usize) as u32;
        let send = opcode::Send::new(types::Fd(stream.as_raw_fd()), bytes.as_ptr(), len);
        // SAFETY: the caller's `in_flight` is neither touched nor freed
        // while `sending`; the connection is kept until it is false.
        unsafe { self.push(&send.build().user_data(user_data(id, SEND))) }
    }

    /// Calls back the `kind` operation of client `id` (0: the loop's own).
    fn cancel(&mut self, id: u64, kind: u64) -> bool {
        let cancel = opcode::AsyncCancel::new(user_data(id, kind)).build();
        // SAFETY: a cancellation lends no buffer.
        unsafe { self.push(&cancel.user_data(user_data(id, CANCEL))) }
    }

    /// The first `len` bytes of provided buffer `bid`, which a completion
    /// just named.
    fn provided(&self, bid: u16, len: i32) -> &[u8] {
        match &self.provided {
            Some(ring) if len > 0 => ring.filled(bid, len as usize),
            _ => &[],
        }
    }

    /// Gives provided buffer `bid` back to the kernel, its bytes handed on.
    fn give_back(&mut self, bid: u16) {
        if let Some(ring) = &mut self.provided {
            ring.give_back(bid);
        }
    }

    /// Queues one operation, submitting what is queued first if the
    /// submission ring is full; false if it could not be queued.
    ///
    /// # Safety
    ///
    /// Any buffer the entry points to must stay valid and in place until
    /// its completion is reaped.
    unsafe fn push(&mut self, entry: &squeue::Entry) -> bool {
        for _ in 0..3 {
            // SAFETY: passed on from the caller.
            if unsafe { self.uring.submission().push(entry) }.is_ok() {
                self.submitted += 1;
                return true;
            }
            if let Err(e) = self.uring.submit() {
                tracing::warn!("io_uring submit failed: {e}");
            }
        }
        false
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.drop_provided();
    }
}

/// The provided-buffer ring: buffers the kernel picks from as data
/// arrives, named in each receive's completion, and given back through the
/// ring's tail once their bytes are handed on. Shared by the entries and
/// the kernel: the kernel reads entries up to the tail we publish.
struct BufRing {
    /// `count` entries, page-aligned; entry 0's last field is the tail.
    entries: NonNull<BufRingEntry>,
    /// `count` buffers of `size` bytes, one allocation.
    bufs: NonNull<u8>,
    count: u16,
    size: u32,
    /// Our copy of the tail: the next entry to fill.
    tail: u16,
}

impl BufRing {
    /// The buffer group every multishot receive names.
    const GROUP: u16 = 0;

    fn register(uring: &Uring, count: u16, size: u32) -> io::Result<BufRing> {
        let invalid = |_| io::Error::from(io::ErrorKind::InvalidInput);
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let entries_layout =
            Layout::from_size_align(usize::from(count) * size_of::<BufRingEntry>(), page)
                .map_err(invalid)?;
        let bufs_layout =
            Layout::from_size_align(usize::from(count) * size as usize, 64).map_err(invalid)?;
        // SAFETY: both layouts have a non-zero size (count and size are
        // constants above zero); a null result is checked.
        let entries = NonNull::new(unsafe { alloc::alloc_zeroed(entries_layout) });
        // SAFETY: as above.
        let bufs = NonNull::new(unsafe { alloc::alloc(bufs_layout) });
        let (Some(entries), Some(bufs)) = (entries, bufs) else {
            alloc::handle_alloc_error(entries_layout);
        };
        let mut ring = BufRing {
            entries: entries.cast(),
            bufs,
            count,
            size,
            tail: 0,
        };
        // SAFETY: the entries stay allocated, in place, until the group is
        // unregistered (`Ring::drop_provided`) or leaked with the ring.
        let registered = unsafe {
            uring.submitter().register_buf_ring_with_flags(
                entries.as_ptr() as u64,
                count,
                Self::GROUP,
                0,
            )
        };
        registered?; // on failure, `ring` is dropped: the kernel never saw it
        for bid in 0..count {
            ring.give_back(bid);
        }
        Ok(ring)
    }

    fn filled(&self, bid: u16, len: usize) -> &[u8] {
        if bid >= self.count {
            return &[];
        }
        let start = usize::from(bid) * self.size as usize;
        // SAFETY: buffer `bid` lies within `bufs`; a completion named it,
        // so the kernel wrote `len` bytes there (at most `size`) and will
        // not touch it again until it is given back.
        unsafe {
            std::slice::from_raw_parts(self.bufs.as_ptr().add(start), len.min(self.size as usize))
        }
    }

    fn give_back(&mut self, bid: u16) {
        if bid >= self.count {
            return; // not one of ours: never hand the kernel such an address
        }
        let slot = usize::from(self.tail & (self.count - 1));
        let start = usize::from(bid) * self.size as usize;
        // SAFETY: `slot` < `count` (a power of two), so the entry is inside
        // the allocation; it lies past the published tail, so the kernel
        // does not read it now. Only addr, len and bid are written, never
        // entry 0's tail field.
        let entry = unsafe { &mut *self.entries.as_ptr().add(slot) };
        entry.set_addr(self.bufs.as_ptr().wrapping_add(start) as u64);
        entry.set_len(self.size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail is a u16 field of entry 0, aligned as one; the
        // kernel reads it concurrently, hence atomic, and the release store
        // makes the entry written above visible before the new tail.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.as_ptr()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        let count = usize::from(self.count);
        // SAFETY: the same layouts `register` allocated with (they were valid
        // then); the kernel no longer uses them (see `Ring::drop_provided`).
        unsafe {
            let page = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)).unwrap_or(4096);
            let entries =
                Layout::from_size_align_unchecked(count * size_of::<BufRingEntry>(), page);
            alloc::dealloc(self.entries.as_ptr().cast(), entries);
            let bufs = Layout::from_size_align_unchecked(count * self.size as usize, 64);
            alloc::dealloc(self.bufs.as_ptr(), bufs);
        }
    }
}

/// A buffer lent to the kernel for one receive at a time: an allocation of
/// its own, reached only through a raw pointer, so that moving its owner (a
/// `Conn` in a growing map) asserts nothing about memory the kernel may be
/// writing. Its size is fixed, so the handle is one pointer.
struct KernelBuf(NonNull<[u8; KernelBuf::LEN]>);

impl KernelBuf {
    const LEN: usize = 4096;

    fn new() -> KernelBuf {
        KernelBuf(NonNull::from(Box::leak(Box::new([0u8; KernelBuf::LEN]))))
    }

    fn ptr(&self) -> *mut u8 {
        self.0.as_ptr().cast()
    }

    /// The first `n` bytes, once the kernel has given the buffer back.
    fn filled(&self, n: usize) -> &[u8] {
        // SAFETY: a live allocation of `LEN` bytes; called only after the
        // receive into it completed (`n` is what it wrote).
        unsafe { std::slice::from_raw_parts(self.ptr(), n.min(KernelBuf::LEN)) }
    }
}

impl Drop for KernelBuf {
    fn drop(&mut self) {
        // SAFETY: made by `Box::leak` in `new`, and dropped only when no
        // operation of the kernel's holds it (see `Conn` and `Loop::drop`).
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}
