//! The rings shared with the kernel and the buffers lent to it: every
//! `unsafe` of the io-uring model, each with its SAFETY note. The loop
//! (`ring.rs`) only asks for operations by what they are — accept, receive,
//! send, cancel — and reads completions back as [`Completion`]s.
//!
//! The one promise behind every `unsafe` here: memory the kernel was told
//! about stays valid, and in place, until the completion that gives it back
//! is reaped. A send's bytes, a connection's own receive buffer, the
//! provided buffers: none moves, shrinks or is freed while in flight, and
//! one the kernel may still hold when the loop ends is leaked instead.
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::io::{self, Write};
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::cqueue::{buffer_select, more};
use io_uring::types::BufRingEntry;
use io_uring::{opcode, squeue, types, IoUring as Uring};

use super::{MODEL, SINGLE_SHOT_ENV};
use crate::error::Error;

/// Submission ring size: operations in flight at once before a submit.
const ENTRIES: u32 = 1024;
/// The provided buffers every multishot receive draws from: how many, and
/// how big. They belong to the loop, not to a connection; one is out only
/// from a completion that names it until its bytes are handed on, so a
/// turn's worth of busy connections uses them.
const BUFFERS: u16 = 512;
const BUFFER_SIZE: u32 = 4096;

/// What an operation is, and whose: carried to its completion in the
/// entry's `user_data` (the low three bits the kind, the rest the client's
/// id), so that a completion needs no lookup to be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// The one accept in flight on the listener.
    Accept,
    /// The receive on the wake-up socket, always in flight.
    Wake,
    /// Client `id`'s receive (a multishot one stays armed).
    Recv(u64),
    /// Client `id`'s send.
    Send(u64),
    /// The cancellation of client `id`'s receive, or (id 0) of the accept.
    Cancel(u64),
}

impl Op {
    fn user_data(self) -> u64 {
        let (id, kind) = match self {
            Op::Accept => (0, 0),
            Op::Wake => (0, 1),
            Op::Recv(id) => (id, 2),
            Op::Send(id) => (id, 3),
            Op::Cancel(id) => (id, 4),
        };
        id << 3 | kind
    }

    fn of(user_data: u64) -> Op {
        let id = user_data >> 3;
        match user_data & 0b111 {
            0 => Op::Accept,
            1 => Op::Wake,
            2 => Op::Recv(id),
            3 => Op::Send(id),
            _ => Op::Cancel(id),
        }
    }
}

/// One completion, as the loop reads it. Made only here, from the kernel's
/// completion ring: an accept's result is then a descriptor nobody owns yet
/// (see [`Ring::accepted`]).
pub(super) struct Completion {
    op: Op,
    result: i32,
    flags: u32,
}

impl Completion {
    /// The operation this completes.
    pub(super) fn op(&self) -> Op {
        self.op
    }

    /// What the system call would have returned: a count, a descriptor, or
    /// a negated errno.
    pub(super) fn result(&self) -> i32 {
        self.result
    }

    /// Whether a multishot receive stays armed after this completion.
    pub(super) fn more(&self) -> bool {
        more(self.flags)
    }

    /// The provided buffer the kernel filled, if it took one.
    pub(super) fn buffer(&self) -> Option<u16> {
        buffer_select(self.flags)
    }
}

/// The ring, checked for what this model needs, with the provided buffers
/// when multishot receive works here.
pub(super) struct Ring {
    uring: Uring,
    /// Operations submitted (logged at shutdown): what multishot saves.
    pub(super) submitted: u64,
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

    pub(super) fn open() -> Result<Ring, Error> {
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
    pub(super) fn offer_buffers(&mut self, single_shot: bool) {
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

    pub(super) fn multishot(&self) -> bool {
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
                works |= c.result == 1 && c.more();
                ended |= !c.more();
                self.give_back(c);
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
    pub(super) fn submit_and_wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
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
    pub(super) fn reap(&mut self, into: &mut Vec<Completion>) {
        into.extend(self.uring.completion().map(|c| Completion {
            op: Op::of(c.user_data()),
            result: c.result(),
            flags: c.flags(),
        }));
    }

    /// The socket a successful accept completion names; `None` for any
    /// other completion.
    pub(super) fn accepted(&self, done: &Completion) -> Option<TcpStream> {
        if done.op != Op::Accept || done.result < 0 {
            return None;
        }
        // SAFETY: a successful accept completion's result is a new
        // descriptor that nothing else owns, and completions are made only
        // from the kernel's ring, each taken once.
        Some(unsafe { TcpStream::from_raw_fd(done.result) })
    }

    pub(super) fn accept(&mut self, listener: &TcpListener) -> bool {
        let fd = types::Fd(listener.as_raw_fd());
        // As std's accept: not inherited by a child.
        let accept = opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
            .flags(libc::SOCK_CLOEXEC);
        // SAFETY: no buffer: the peer's address is not asked for.
        unsafe { self.push(&accept.build().user_data(Op::Accept.user_data())) }
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
        // move with the connection), held by an `Incoming` that reads it
        // only from its completion and leaks it if dropped while armed.
        unsafe { self.push(&entry.user_data(Op::Recv(id).user_data())) }
    }

    pub(super) fn wake_recv(&mut self, wake: &UnixStream, buf: &'static KernelBuf) -> bool {
        let fd = types::Fd(wake.as_raw_fd());
        let recv = opcode::Recv::new(fd, buf.ptr(), KernelBuf::LEN as u32);
        // SAFETY: the buffer is leaked: it lives as long as the process.
        unsafe { self.push(&recv.build().user_data(Op::Wake.user_data())) }
    }

    /// Only through [`Outgoing::submit`], which keeps the bytes still.
    fn send(&mut self, id: u64, stream: &TcpStream, bytes: &[u8]) -> bool {
        let len = bytes.len().min(u32::MAX as usize) as u32;
        let send = opcode::Send::new(types::Fd(stream.as_raw_fd()), bytes.as_ptr(), len);
        // SAFETY: `bytes` are an `Outgoing`'s, which lets nobody touch,
        // move or free them while its send is in flight, and leaks them if
        // it is dropped then.
        unsafe { self.push(&send.build().user_data(Op::Send(id).user_data())) }
    }

    /// Calls back client `id`'s multishot receive.
    pub(super) fn cancel_receive(&mut self, id: u64) -> bool {
        self.cancel(Op::Recv(id), id)
    }

    /// Calls back the accept in flight, which holds the listening socket.
    pub(super) fn cancel_accept(&mut self) -> bool {
        self.cancel(Op::Accept, 0)
    }

    fn cancel(&mut self, op: Op, id: u64) -> bool {
        let cancel = opcode::AsyncCancel::new(op.user_data()).build();
        // SAFETY: a cancellation lends no buffer.
        unsafe { self.push(&cancel.user_data(Op::Cancel(id).user_data())) }
    }

    /// An operation may still be in flight as the ring goes: the provided
    /// buffers are then leaked, never freed under the kernel's feet.
    pub(super) fn kernel_may_hold_buffers(&mut self) {
        self.kernel_may_hold_buffers = true;
    }

    /// The bytes of the provided buffer a receive completion names (none if
    /// it names none), for as long as the completion is kept: it is given
    /// back by giving up the completion ([`Ring::give_back`]).
    pub(super) fn provided<'a>(&'a self, done: &'a Completion) -> &'a [u8] {
        match (&self.provided, done.buffer()) {
            (Some(ring), Some(bid)) if done.result > 0 => ring.filled(bid, done.result as usize),
            _ => &[],
        }
    }

    /// Gives the provided buffer a receive completion names back to the
    /// kernel, its bytes handed on. The completion is given up with it, so
    /// no buffer goes back twice, nor while its bytes are still read.
    pub(super) fn give_back(&mut self, done: Completion) {
        if let (Some(ring), Some(bid)) = (&mut self.provided, done.buffer()) {
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
pub(super) struct KernelBuf(NonNull<[u8; KernelBuf::LEN]>);

impl KernelBuf {
    const LEN: usize = 4096;

    pub(super) fn new() -> KernelBuf {
        KernelBuf(NonNull::from(Box::leak(Box::new([0u8; KernelBuf::LEN]))))
    }

    fn ptr(&self) -> *mut u8 {
        self.0.as_ptr().cast()
    }

    /// The first `n` bytes, once the kernel has given the buffer back (only
    /// [`Incoming::completed`] asks, from the receive's completion).
    fn filled(&self, n: usize) -> &[u8] {
        // SAFETY: a live allocation of `LEN` bytes; called only after the
        // receive into it completed (`n` is what it wrote).
        unsafe { std::slice::from_raw_parts(self.ptr(), n.min(KernelBuf::LEN)) }
    }
}

impl Drop for KernelBuf {
    fn drop(&mut self) {
        // SAFETY: made by `Box::leak` in `new`, and dropped only when no
        // operation of the kernel's holds it (see `Conn` and the loop's `Drop`).
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// A connection's replies handed to the kernel: the bytes, how many of them
/// are sent, and whether a send of them is in flight. While one is, the
/// bytes are the kernel's: nothing here lets them be touched, moved or
/// freed before its completion comes back ([`Outgoing::completed`]), and
/// dropped meanwhile they are leaked, not freed under the kernel's feet.
#[derive(Default)]
pub(super) struct Outgoing {
    bytes: Vec<u8>,
    /// A u32, as a send takes at most that many, and what waits stops
    /// growing near the output bound; it packs beside the socket.
    sent: u32,
    sending: bool,
}

impl Outgoing {
    /// Whether a send is in flight.
    pub(super) fn sending(&self) -> bool {
        self.sending
    }

    /// Bytes handed over and not yet sent.
    pub(super) fn unsent(&self) -> usize {
        self.bytes.len() - self.sent as usize
    }

    /// Takes `out`'s replies to send next, when everything before them is
    /// sent: the two buffers swap.
    pub(super) fn take(&mut self, out: &mut Vec<u8>) {
        if !self.sending && self.bytes.is_empty() {
            std::mem::swap(&mut self.bytes, out);
        }
    }

    /// Hands the kernel what is not sent yet, unless a send is in flight;
    /// false only if the submission ring was full (try again).
    pub(super) fn submit(&mut self, ring: &mut Ring, id: u64, stream: &TcpStream) -> bool {
        if self.sending || self.unsent() == 0 {
            return true;
        }
        self.sending = ring.send(id, stream, &self.bytes[self.sent as usize..]);
        self.sending
    }

    /// The send in flight completed with `result`. `Ok(Some(buffer))` once
    /// every byte is sent (its allocation, emptied, to keep for later),
    /// `Ok(None)` while some remain, `Err(())` if the send failed (then
    /// nothing more will be sent).
    pub(super) fn completed(&mut self, result: i32) -> Result<Option<Vec<u8>>, ()> {
        self.sending = false;
        if result < 0 {
            self.bytes.clear();
            self.sent = 0;
            return Err(());
        }
        self.sent += result as u32;
        if self.unsent() > 0 {
            return Ok(None);
        }
        self.sent = 0;
        Ok(Some(std::mem::take(&mut self.bytes)))
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        if self.sending {
            std::mem::forget(std::mem::take(&mut self.bytes));
        }
    }
}

/// A connection's receive: whether one is armed, and on the single-shot
/// path the buffer it fills. While a receive is armed that buffer is the
/// kernel's: it is read only from the receive's completion
/// ([`Incoming::completed`]), and dropped meanwhile it is leaked.
pub(super) struct Incoming {
    own: Option<KernelBuf>,
    armed: bool,
}

impl Incoming {
    /// A connection's receive, not armed yet; `own` only on the
    /// single-shot path.
    pub(super) fn new(own: Option<KernelBuf>) -> Self {
        Incoming { own, armed: false }
    }

    /// Whether a receive is armed (a multishot one until a completion
    /// without MORE).
    pub(super) fn armed(&self) -> bool {
        self.armed
    }

    /// Arms a receive unless one is: false only if the submission ring was
    /// full (try again).
    pub(super) fn arm(&mut self, ring: &mut Ring, id: u64, stream: &TcpStream) -> bool {
        if !self.armed {
            self.armed = ring.receive(id, stream, self.own.as_ref());
        }
        self.armed
    }

    /// A receive completed: the bytes it brought, from the provided buffer
    /// it names or from the connection's own buffer, which is ours again
    /// once a single-shot receive has completed.
    pub(super) fn completed<'a>(&'a mut self, ring: &'a Ring, done: &'a Completion) -> &'a [u8] {
        self.armed &= done.more();
        match &self.own {
            Some(own) if !self.armed && done.result > 0 => own.filled(done.result as usize),
            _ => ring.provided(done),
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if self.armed {
            std::mem::forget(self.own.take());
        }
    }
}
