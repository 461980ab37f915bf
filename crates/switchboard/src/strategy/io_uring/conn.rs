//! One connection of the io-uring model: its socket, its session, and the
//! state of the operations the kernel holds for it. No `unsafe` here: what
//! it lends the kernel is lent through `kernel.rs`, and the loop
//! (`ring.rs`) keeps a connection until none of it is in flight.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::kernel::{Incoming, KernelBuf, Outgoing};
use crate::server::Server;
use crate::session::{Context, Flow, Session, OUTPUT_LIMIT};
use crate::strategy::Closing;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Reading requests and answering them.
    Open,
    /// Everything is said (`bye`, an `ERR` line, end of input): closed once
    /// sent, or when its grace runs out (the loop's `closing`).
    Closing,
    /// Shut down; dropped once the kernel has given back its buffers.
    Done,
}

/// One client. Idle on the multishot path, it holds its session, its socket
/// and one armed receive in the kernel: no buffer, as `held`, `out` and
/// `outgoing` are empty and unallocated then. Every field counts, as ten
/// thousand idle clients hold ten thousand of these.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) session: Session,
    /// The receive armed in the kernel, and the single-shot path's buffer.
    pub(super) incoming: Incoming,
    /// The multishot receive is being called back.
    pub(super) cancelling: bool,
    /// Input that arrived while replies had to go out first (a multishot
    /// receive reads on until its cancellation lands), and whether the
    /// client's end came after it: answered once there is room.
    #[expect(
        clippy::box_collection,
        reason = "8 bytes for every idle connection, not a Vec's 24; the box exists only while input waits"
    )]
    held: Option<Box<Vec<u8>>>,
    pub(super) held_eof: bool,
    /// Replies not yet handed to the kernel.
    pub(super) out: Vec<u8>,
    /// Replies handed to the kernel, and whether a send of them is in flight.
    pub(super) outgoing: Outgoing,
    pub(super) phase: Phase,
    /// When the client was last heard from, for `--idle-timeout`.
    pub(super) last_heard: Instant,
}

impl Conn {
    /// A connection just admitted, open and quiet; `recv_buf` only on the
    /// single-shot path.
    pub(super) fn new(
        stream: TcpStream,
        session: Session,
        recv_buf: Option<KernelBuf>,
        now: Instant,
    ) -> Self {
        Conn {
            stream,
            session,
            incoming: Incoming::new(recv_buf),
            cancelling: false,
            held: None,
            held_eof: false,
            out: Vec::new(),
            outgoing: Outgoing::default(),
            phase: Phase::Open,
            last_heard: now,
        }
    }

    /// Replies not yet sent: not yet handed over, or handed over and not done.
    pub(super) fn unsent(&self) -> usize {
        self.out.len() + self.outgoing.unsent()
    }

    /// Whether the session can take new input now: open, with nothing
    /// waiting to be answered and its replies under the bound.
    pub(super) fn wants_input(&self) -> bool {
        self.phase == Phase::Open
            && !self.session.has_backlog()
            && self.held.is_none()
            && !self.held_eof
            && self.unsent() < OUTPUT_LIMIT
    }

    /// Whether input a pause left waiting can be answered now: its replies
    /// have room.
    pub(super) fn can_resume(&self) -> bool {
        let waiting = self.session.has_backlog() || self.held.is_some() || self.held_eof;
        waiting && self.unsent() < OUTPUT_LIMIT
    }

    /// Hands what arrived to the session, or holds it while earlier input
    /// still waits.
    pub(super) fn take_input(&mut self, server: &Server, bytes: &[u8]) -> Flow {
        let waiting = self.session.has_backlog() || self.held.is_some();
        if waiting || self.unsent() >= OUTPUT_LIMIT {
            if !bytes.is_empty() {
                self.held.get_or_insert_default().extend_from_slice(bytes);
            }
            return Flow::Continue;
        }
        self.answer(&server.context(), bytes)
    }

    /// Answers what waited: the session's own backlog first, then what
    /// arrived meanwhile, then the client's end.
    pub(super) fn resume(&mut self, server: &Server) -> Flow {
        let context = server.context();
        if self.session.has_backlog() {
            return self.session.resume(&context, &mut self.out);
        }
        let held = self.held.take().unwrap_or_default();
        self.answer(&context, &held)
    }

    /// Answers `bytes`, and then the client's end if it came after them and
    /// nothing of theirs is left to answer.
    fn answer(&mut self, context: &Context<'_>, bytes: &[u8]) -> Flow {
        let flow = self.session.on_bytes(context, bytes, &mut self.out);
        if flow == Flow::Continue && self.held_eof && !self.session.has_backlog() {
            self.held_eof = false;
            return self.session.on_eof(context, &mut self.out);
        }
        flow
    }

    /// Everything is said (`bye`, an `ERR` line, end of input): the
    /// connection closes once its replies are sent, or when its grace in
    /// `closing` runs out.
    pub(super) fn start_closing(&mut self, closing: &mut Closing<u64>, id: u64, now: Instant) {
        self.phase = Phase::Closing;
        closing.push(id, now);
    }

    /// Whether the client has been silent for `limit` while open.
    pub(super) fn is_idle(&self, now: Instant, limit: Duration) -> bool {
        self.phase == Phase::Open && now.duration_since(self.last_heard) >= limit
    }
}

/// Reply buffers between uses, so that an idle connection holds none and
/// a busy one does not allocate one per message: a connection borrows one
/// as its replies begin and gives it back once they are sent (why and what
/// it saved: docs/measurements/2026-12-07-io-uring-lean-again.md).
#[derive(Default)]
pub(super) struct Spares(Vec<Vec<u8>>);

impl Spares {
    /// At most this many are kept: enough for every connection of a busy
    /// turn; more would be memory held for a burst that has passed.
    const KEEP: usize = 128;
    /// A buffer grown past this (a client that fell far behind) is freed.
    const KEEP_CAPACITY: usize = 16 * 1024;

    /// Gives `out` a spare buffer if it has none.
    pub(super) fn lend(&mut self, out: &mut Vec<u8>) {
        if out.capacity() == 0 {
            if let Some(spare) = self.0.pop() {
                *out = spare;
            }
        }
    }

    /// Takes back `buf`'s allocation, its bytes all sent, leaving it empty.
    pub(super) fn take_back(&mut self, buf: &mut Vec<u8>) {
        let mut buf = std::mem::take(buf);
        if buf.capacity() > 0 && buf.capacity() <= Self::KEEP_CAPACITY && self.0.len() < Self::KEEP
        {
            buf.clear();
            self.0.push(buf);
        }
    }
}
