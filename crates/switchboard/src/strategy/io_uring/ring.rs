//! The io-uring model's loop: submit, wait, complete (the lesson is in
//! `io_uring.rs`). The core comes first — [`Loop::run`], then what each
//! completion does (`received`, `sent`) and [`Loop::pump`], which submits
//! whatever a connection's state calls for. The hardening every loop has —
//! the door, the console, the timers, the shutdown — is in
//! `ring/hardening.rs`. One connection's state is in `conn.rs`; the rings
//! and every `unsafe` in `kernel.rs`.

mod hardening;

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown as Direction, TcpListener};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::{Conn, Phase, Spares};
use super::kernel::{Completion, Incoming, KernelBuf, Op, Ring};
use crate::error::Error;
use crate::server::Server;
use crate::session::Flow;
use crate::strategy::accept::{close_gently, AcceptPause};
use crate::strategy::{Closing, IdleSweep, Inbox, Wake};

/// How long a stopping server waits for its goodbyes to go out, and then
/// for the kernel to give back the buffers still in flight. Where the event
/// loop writes its goodbyes itself and closes at once, here a goodbye is a
/// send the kernel holds, and freeing what it holds is not ours to do early.
const STOP_GRACE: Duration = Duration::from_millis(300);

pub(super) fn serve(listener: TcpListener, server: Server, single_shot: bool) -> Result<(), Error> {
    let mut ring = Ring::open()?;
    ring.offer_buffers(single_shot);
    let (wake, waker) = UnixStream::pair().map_err(Error::io("creating the wake-up socket"))?;
    waker
        .set_nonblocking(true)
        .map_err(Error::io("creating the wake-up socket"))?;
    let waker = Arc::new(WakeSocket(waker));
    let wake_on_stop = Arc::clone(&waker);
    server.shutdown.on_trigger(move || wake_on_stop.wake());
    let now = Instant::now();
    let mut ring_loop = Loop {
        ring,
        conns: HashMap::new(),
        spares: Spares::default(),
        stalled: Vec::new(),
        now,
        done: Vec::new(),
        listener,
        accepting: false,
        accept_pause: AcceptPause::default(),
        inbox: Inbox::new(waker),
        wake,
        wake_buf: Box::leak(Box::new(KernelBuf::new())),
        wake_stalled: false,
        closing: Closing::default(),
        idle_sweep: IdleSweep::new(server.limits.idle_timeout, now),
        server,
    };
    ring_loop.submit_wake_recv();
    ring_loop.submit_accept();
    ring_loop.run()
}

struct Loop {
    ring: Ring,
    /// Boxed: the map doubles as it grows, and a bucket of a pointer
    /// rather than a whole connection keeps that spare room small (see
    /// `docs/measurements/2026-12-07-lean-models.md`).
    conns: HashMap<u64, Box<Conn>>,
    /// Reply buffers between uses (see [`Spares`]).
    spares: Spares,
    /// Connections (and the wake-up receive) whose next operation found the
    /// submission ring full, or whose input waits its turn: pumped again
    /// after the turn's completions.
    stalled: Vec<u64>,
    /// Read once per turn, when the wait returns.
    now: Instant,
    /// The turn's completions, kept to be reused.
    done: Vec<Completion>,
    server: Server,
    listener: TcpListener,
    /// An accept is in flight.
    accepting: bool,
    accept_pause: AcceptPause,
    inbox: Inbox<Arc<WakeSocket>>,
    /// The receiving end of the wake-up socket, and its buffer. The
    /// buffer is leaked on purpose: a receive into it is always in
    /// flight, so it must outlive everything, the ring included.
    wake: UnixStream,
    wake_buf: &'static KernelBuf,
    wake_stalled: bool,
    closing: Closing<u64>,
    idle_sweep: IdleSweep,
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
        match done.op() {
            Op::Accept => self.accepted(&done),
            Op::Wake => {
                self.deliver_console_messages();
                self.submit_wake_recv();
            }
            Op::Recv(id) => self.received(id, done),
            Op::Send(id) => self.sent(id, done.result()),
            Op::Cancel(id) => self.cancelled(id),
        }
    }

    /// A receive completed: the bytes it names go to the session — or wait
    /// in `held` if replies must go out first — and the buffer goes back to
    /// the ring. A multishot receive stays armed while the flags say MORE.
    fn received(&mut self, id: u64, done: Completion) {
        if let Some(conn) = self.conns.get_mut(&id) {
            // Out of the connection, for the session to have it meanwhile.
            let mut incoming = std::mem::replace(&mut conn.incoming, Incoming::new(None));
            let bytes = incoming.completed(&self.ring, &done);
            let flow = match done.result() {
                // Closing: what the client still sends is not answered.
                _ if conn.phase != Phase::Open => Flow::Continue,
                n if n > 0 => {
                    conn.last_heard = self.now;
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
            conn.incoming = incoming;
            if flow == Flow::Close {
                conn.start_closing(&mut self.closing, id, self.now);
            }
        }
        self.ring.give_back(done);
        self.pump(id);
    }

    /// A send completed: its bytes are done with, or (a short send) the
    /// rest goes next. Once all are sent, the buffer goes back to the spares.
    fn sent(&mut self, id: u64, result: i32) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        match conn.outgoing.completed(result) {
            Ok(Some(mut emptied)) => self.spares.take_back(&mut emptied),
            Ok(None) => {}
            Err(()) => {
                conn.out.clear();
                conn.phase = Phase::Done;
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
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.phase == Phase::Open && conn.can_resume() {
            self.spares.lend(&mut conn.out);
            if conn.resume(&self.server) == Flow::Close {
                conn.start_closing(&mut self.closing, id, self.now);
            } else if conn.can_resume() {
                // Its turn is spent (the session's time budget): the rest
                // waits until every other completion of this turn is handled.
                self.stalled.push(id);
            }
        }
        if conn.phase != Phase::Done {
            conn.outgoing.take(&mut conn.out);
            if !conn.outgoing.submit(&mut self.ring, id, &conn.stream) {
                self.stalled.push(id);
            }
        }
        // An idle connection holds no reply buffer.
        if conn.out.is_empty() {
            self.spares.take_back(&mut conn.out);
        }
        if conn.wants_input() && !conn.incoming.armed() && !conn.cancelling {
            if !conn.incoming.arm(&mut self.ring, id, &conn.stream) {
                self.stalled.push(id);
            }
        } else if !conn.wants_input() && conn.incoming.armed() && !conn.cancelling {
            // A multishot receive would go on reading what there is no room
            // to answer: it is called back, and re-armed once there is.
            conn.cancelling = self.ring.multishot() && self.ring.cancel_receive(id);
        }
        let said_all = !conn.outgoing.sending() && conn.unsent() == 0;
        if conn.phase == Phase::Closing && said_all {
            conn.phase = Phase::Done;
        }
        if conn.phase == Phase::Done {
            if conn.incoming.armed() || conn.outgoing.sending() {
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

    /// Submits what is queued and waits for one completion, or until
    /// `timeout`.
    fn wait(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.ring.submit_and_wait(timeout).map_err(|e| Error::Io {
            context: "waiting for completions",
            source: e,
        })
    }
}

/// The wake-up socket's sending end: one byte wakes the loop, whose receive
/// on the other end is always in flight.
struct WakeSocket(UnixStream);

impl Wake for WakeSocket {
    /// A full wake-up socket already holds a wake-up: the error is ignored.
    fn wake(&self) {
        let _ = (&self.0).write(&[1]);
    }
}
