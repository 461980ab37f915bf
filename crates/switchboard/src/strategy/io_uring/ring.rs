//! The io-uring model's loop: the rings, the connections and their
//! buffers, and the completions that drive them (see the model's lesson in
//! `io_uring.rs`).

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring as Uring};
use socket2::SockRef;

use super::MODEL;
use crate::clients::Outbox;
use crate::error::Error;
use crate::protocol::{ClientId, Goodbye, Outbound};
use crate::server::Server;
use crate::session::{Flow, Session, OUTPUT_LIMIT};
use crate::strategy::accept::{
    already_gone, close_gently, peer_gave_up, AcceptFailures, ACCEPT_BACKOFF,
};
use crate::strategy::{beyond_replies, idle_sweep_interval, past_output_bound, Admit, InFlight};

/// Submission ring size: operations in flight at once before a submit.
const ENTRIES: u32 = 1024;
/// Each connection's own receive buffer (the kernel's while a receive
/// is in flight).
const RECV_BUFFER: usize = 4096;
/// A closing connection gets this long to take its last replies.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long a stopping server waits for its goodbyes to go out, and then
/// for the kernel to give back the buffers still in flight.
const STOP_GRACE: Duration = Duration::from_millis(300);

/// What a completion is about: the low two bits of its `user_data`; the
/// rest is the client's id.
const ACCEPT: u64 = 0;
const WAKE: u64 = 1;
const RECV: u64 = 2;
const SEND: u64 = 3;
/// The cancellation of the accept at shutdown (id 1: no client has it).
const CANCEL_ACCEPT: u64 = 1 << 2 | ACCEPT;

/// The ring, checked for what this model needs.
pub(super) struct Ring(Uring);

impl Ring {
    /// Whether io_uring works here, with a ring just big enough to ask.
    pub(super) fn probe() -> Result<(), Error> {
        Ring::with_entries(8).map(drop)
    }

    pub(super) fn open() -> Result<Ring, Error> {
        Ring::with_entries(ENTRIES)
    }

    fn with_entries(entries: u32) -> Result<Ring, Error> {
        let unavailable = |reason: String| Error::Unavailable {
            model: MODEL.name,
            reason,
        };
        // Room for more completions than submissions: each connection
        // has at most two operations out, and completions are reaped once
        // per turn. Past this many (over 2,000 busy connections), the kernel
        // holds the overflow until they are reaped (IORING_FEAT_NODROP).
        let ring = Uring::builder()
            .setup_cqsize(entries * 4)
            .build(entries)
            .map_err(|e| unavailable(format!("the kernel refused io_uring ({e})")))?;
        if !ring.params().is_feature_ext_arg() {
            return Err(unavailable(
                "the kernel's io_uring is too old (needs 5.11)".into(),
            ));
        }
        Ok(Ring(ring))
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// Everything is said: closed once sent, or at `by`.
    Closing {
        by: Instant,
    },
    /// Shut down; dropped once the kernel has given back its buffers.
    Done,
}

/// A buffer lent to the kernel: an allocation of its own, reached only
/// through a raw pointer, so that moving its owner (a `Conn` in a growing
/// map) asserts nothing about memory the kernel may be writing.
struct KernelBuf {
    ptr: *mut u8,
    len: usize,
}

impl KernelBuf {
    fn new(len: usize) -> KernelBuf {
        let ptr = Box::into_raw(vec![0u8; len].into_boxed_slice()) as *mut u8;
        KernelBuf { ptr, len }
    }

    /// The first `n` bytes, once the kernel has given the buffer back.
    fn filled(&self, n: usize) -> &[u8] {
        // SAFETY: `ptr` is a live allocation of `len` bytes; called only
        // after the receive into it completed (`n` is what it wrote).
        unsafe { std::slice::from_raw_parts(self.ptr, n.min(self.len)) }
    }
}

impl Drop for KernelBuf {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.ptr, self.len);
        // SAFETY: made by `Box::into_raw` in `new`, and dropped only when no
        // operation of the kernel's holds it (see `Conn` and `Loop::drop`).
        drop(unsafe { Box::from_raw(slice) });
    }
}

struct Conn {
    stream: TcpStream,
    session: Session,
    /// The kernel's while `receiving`.
    recv_buf: KernelBuf,
    receiving: bool,
    /// Replies not yet handed to the kernel.
    out: Vec<u8>,
    /// The kernel's while `sending`: bytes handed over, `sent` of them done.
    in_flight: Vec<u8>,
    sent: usize,
    sending: bool,
    phase: Phase,
    last_heard: Instant,
}

impl Conn {
    fn unsent(&self) -> usize {
        self.out.len() + self.in_flight.len() - self.sent
    }

    /// Whether input a pause left waiting can be answered now: its replies
    /// have room.
    fn can_resume(&self) -> bool {
        self.session.has_backlog() && self.unsent() < OUTPUT_LIMIT
    }

    fn start_closing(&mut self, now: Instant) {
        if self.phase == Phase::Open {
            self.phase = Phase::Closing {
                by: now + CLOSE_GRACE,
            };
        }
    }
}

struct Loop {
    ring: Uring,
    listener: TcpListener,
    server: Server,
    conns: HashMap<u64, Conn>,
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
                std::mem::forget(conn);
            }
        }
    }
}

pub(super) fn serve(listener: TcpListener, server: Server) -> Result<(), Error> {
    let Ring(ring) = Ring::open()?;
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
        wake_buf: Box::leak(Box::new(KernelBuf::new(64))),
        closing: VecDeque::new(),
        accepting: false,
        accept_again_at: None,
        accept_failures: AcceptFailures::default(),
        stalled: Vec::new(),
        wake_stalled: false,
        next_idle_sweep: now,
        now,
    };
    ring_loop.submit_wake_recv();
    ring_loop.submit_accept();
    ring_loop.run()
}

impl Loop {
    fn run(&mut self) -> Result<(), Error> {
        while !self.server.shutdown.is_triggered() {
            self.wait(self.next_timer())?;
            self.now = Instant::now();
            let done = self.reap();
            for (user_data, result) in done {
                self.complete(user_data, result);
            }
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

    /// The completions that have arrived: what each was (`user_data`) and
    /// its result.
    fn reap(&mut self) -> Vec<(u64, i32)> {
        let done = self.ring.completion();
        done.map(|c| (c.user_data(), c.result())).collect()
    }

    /// Submits what is queued and waits for one completion, or until
    /// `timeout`.
    fn wait(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        let waited = match timeout {
            Some(timeout) => {
                let timespec = types::Timespec::from(timeout);
                let args = types::SubmitArgs::new().timespec(&timespec);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submit_and_wait(1),
        };
        match waited {
            Ok(_) => Ok(()),
            // The timeout passed, a signal came, or completions must be
            // reaped before more can be submitted: all just mean "look".
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc_errno::ETIME | libc_errno::EINTR | libc_errno::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::Io {
                context: "waiting for completions",
                source: e,
            }),
        }
    }

    fn complete(&mut self, user_data: u64, result: i32) {
        let id = user_data >> 2;
        match user_data & 3 {
            ACCEPT => self.accepted(result),
            WAKE => {
                self.deliver_console_messages();
                self.submit_wake_recv();
            }
            RECV => self.received(id, result),
            _ => self.sent(id, result),
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
            // SAFETY: a successful accept completion's result is a new
            // descriptor that nothing else owns.
            let stream = unsafe { TcpStream::from_raw_fd(result) };
            self.admit(stream);
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
            recv_buf: KernelBuf::new(RECV_BUFFER),
            receiving: false,
            out: Vec::new(),
            in_flight: Vec::new(),
            sent: 0,
            sending: false,
            phase: Phase::Open,
            last_heard: self.now,
        };
        self.conns.insert(id.0, conn);
        self.pump(id.0);
    }

    fn received(&mut self, id: u64, result: i32) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.receiving = false;
        if conn.phase == Phase::Open {
            let flow = match result {
                0 => conn.session.on_eof(&self.server.context(), &mut conn.out),
                n if n > 0 => {
                    conn.last_heard = now;
                    let bytes = conn.recv_buf.filled(n as usize);
                    conn.session
                        .on_bytes(&self.server.context(), bytes, &mut conn.out)
                }
                _ => {
                    conn.out.clear();
                    Flow::Close
                }
            };
            if flow == Flow::Close {
                conn.start_closing(now);
                self.closing.push_back(id);
            }
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
            conn.sent += result as usize;
            if conn.sent == conn.in_flight.len() {
                conn.in_flight.clear();
                conn.sent = 0;
            }
        }
        self.pump(id);
    }

    /// Does what the connection's state calls for: answers input that
    /// waited, hands the kernel the next send and the next receive, and
    /// closes it once everything is said.
    fn pump(&mut self, id: u64) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.phase == Phase::Open && conn.can_resume() {
            if conn.session.resume(&self.server.context(), &mut conn.out) == Flow::Close {
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
            if conn.sent < conn.in_flight.len() {
                let rest = &conn.in_flight[conn.sent..];
                let send = opcode::Send::new(
                    types::Fd(conn.stream.as_raw_fd()),
                    rest.as_ptr(),
                    rest.len().min(u32::MAX as usize) as u32,
                );
                // SAFETY: `in_flight` is neither touched nor freed while
                // `sending`; the connection is kept until it is false.
                conn.sending =
                    unsafe { push(&mut self.ring, &send.build().user_data(id << 2 | SEND)) };
                if !conn.sending {
                    self.stalled.push(id);
                }
            }
        }
        let wants_input = conn.phase == Phase::Open
            && !conn.session.has_backlog()
            && conn.unsent() < OUTPUT_LIMIT;
        if wants_input && !conn.receiving {
            let buf = &conn.recv_buf;
            let recv =
                opcode::Recv::new(types::Fd(conn.stream.as_raw_fd()), buf.ptr, buf.len as u32);
            // SAFETY: `recv_buf` is an allocation of its own (it does not
            // move with the connection), kept until `receiving` is false.
            conn.receiving =
                unsafe { push(&mut self.ring, &recv.build().user_data(id << 2 | RECV)) };
            if !conn.receiving {
                self.stalled.push(id);
            }
        }
        let said_all = !conn.sending && conn.unsent() == 0;
        if matches!(conn.phase, Phase::Closing { .. }) && said_all {
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
            let len = match &msg {
                Outbound::Line(text) => text.len() + 1,
                Outbound::Close(_) => 0,
            };
            self.outbox.in_flight.taken(id, len);
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
        let fd = types::Fd(self.listener.as_raw_fd());
        let accept =
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut()).flags(SOCK_CLOEXEC); // as std's accept: not inherited by a child
                                                                                                     // SAFETY: no buffer: the peer's address is not asked for.
        self.accepting = unsafe { push(&mut self.ring, &accept.build().user_data(ACCEPT)) };
        if !self.accepting {
            self.accept_again_at = Some(self.now + ACCEPT_BACKOFF);
        }
    }

    fn submit_wake_recv(&mut self) {
        let fd = types::Fd(self.wake.as_raw_fd());
        let buf = self.wake_buf;
        let recv = opcode::Recv::new(fd, buf.ptr, buf.len as u32);
        // SAFETY: `wake_buf` is leaked: it lives as long as the process.
        self.wake_stalled = !unsafe { push(&mut self.ring, &recv.build().user_data(WAKE)) };
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
        match self.conns.get(&id)?.phase {
            Phase::Closing { by } => Some(by),
            _ => None,
        }
    }

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
                    .filter(|(_, c)| {
                        c.phase == Phase::Open && now.duration_since(c.last_heard) >= limit
                    })
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
            let cancel = opcode::AsyncCancel::new(ACCEPT).build();
            // SAFETY: a cancellation lends no buffer.
            unsafe { push(&mut self.ring, &cancel.user_data(CANCEL_ACCEPT)) };
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
        for (_, conn) in self.conns.drain() {
            self.server.clients().leave(conn.session.id());
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
            let done = self.reap();
            for (user_data, result) in done {
                match user_data & 3 {
                    _ if user_data == CANCEL_ACCEPT => {}
                    ACCEPT => {
                        self.accepting = false;
                        if result >= 0 {
                            // SAFETY: as in `accepted`: a new descriptor, ours
                            // alone. A client just too late is told, not dropped.
                            let mut late = unsafe { TcpStream::from_raw_fd(result) };
                            let _ = late.set_nonblocking(true);
                            let goodbye = Goodbye::ShuttingDown.line();
                            close_gently(&mut late, goodbye.as_bytes());
                        }
                    }
                    RECV => self.received(user_data >> 2, result),
                    SEND => self.sent(user_data >> 2, result),
                    _ => {} // no more console
                }
            }
        }
    }
}

/// Queues one operation, submitting what is queued first if the
/// submission ring is full; false if it could not be queued.
///
/// # Safety
///
/// Any buffer the entry points to must stay valid and in place until
/// its completion is reaped.
unsafe fn push(ring: &mut Uring, entry: &squeue::Entry) -> bool {
    for _ in 0..3 {
        // SAFETY: passed on from the caller.
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return true;
        }
        if let Err(e) = ring.submit() {
            tracing::warn!("io_uring submit failed: {e}");
        }
    }
    false
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
        let msg = match &msg {
            Outbound::Line(text) => match self.in_flight.send(to, text.len() + 1) {
                Admit::Queue => msg,
                Admit::Close => Outbound::Close(Goodbye::Overflow),
                Admit::Drop => return,
            },
            Outbound::Close(_) => msg,
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

/// `accept4`'s flag, the same on every Linux target.
const SOCK_CLOEXEC: i32 = 0o2000000;

/// The errno values `wait` looks for (stable on every Linux target).
mod libc_errno {
    pub const EINTR: i32 = 4;
    pub const EBUSY: i32 = 16;
    pub const ETIME: i32 = 62;
}
