//! What a task borrows from the worker thread it runs on: the thread's read
//! buffer, for one read and the session's answer to it, and its reply
//! buffer, until the replies are written. A waiting task holds neither, as
//! an idle connection of the event loop holds none of its loop's buffers;
//! only a write that has to wait keeps its replies, in a box of its own.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::ErrorKind;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::backlog::Backlog;

/// A reply that is not all written within this long fails, and the client
/// is dropped: a task does not wait forever on a client that never reads.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Size of each worker thread's read buffer (as the event loop's).
const READ_BUFFER: usize = 64 * 1024;

thread_local! {
    /// The read buffer of the worker thread a task runs on, lent for one
    /// read and the session's answer to it, never across an `.await`: so
    /// a waiting task holds none.
    static LENT: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUFFER].into_boxed_slice());
}

/// Bytes a read left in the worker thread's buffer ([`LENT`]). Not `Send`,
/// so a task cannot keep it across an `.await`, after which the task may run
/// on another thread and the buffer may hold another task's bytes: the
/// compiler sees to it that they are used first.
pub(super) struct Arrived {
    len: usize,
    _this_thread: PhantomData<*const ()>,
}

impl Arrived {
    fn new(len: usize) -> Self {
        Arrived {
            len,
            _this_thread: PhantomData,
        }
    }

    /// Lends the bytes to `f`.
    pub(super) fn bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        LENT.with_borrow(|buf| f(&buf[..self.len]))
    }
}

/// `stream.read(&mut buf)`, polled, into the worker thread's buffer.
///
/// It reads through tokio's own `poll_read`, as `read().await` does: one
/// `recv` per wake-up, and a read that does not fill the buffer tells tokio
/// the socket is drained. Waiting with `readable().await` and reading with
/// `try_read` costs a second `recv`, failing with `WouldBlock`, per message
/// (see `docs/measurements/2026-12-07-async-lean-again.md`).
pub(super) fn poll_read_lent(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<Arrived>> {
    LENT.with_borrow_mut(|buf| {
        let mut buf = ReadBuf::new(buf);
        ready!(Pin::new(stream).poll_read(cx, &mut buf))?;
        Poll::Ready(Ok(Arrived::new(buf.filled().len())))
    })
}

/// A read straight from the kernel, that does not wait.
pub(super) fn read_now(stream: &TcpStream) -> std::io::Result<Arrived> {
    LENT.with_borrow_mut(|buf| std::io::Read::read(&mut &*SockRef::from(stream), buf))
        .map(Arrived::new)
}

thread_local! {
    /// The reply buffer of the worker thread a task runs on (see [`Replies`]).
    static REPLIES: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A task's replies, in the worker thread's reply buffer ([`REPLIES`]):
/// taken when the task has something to answer, given back when dropped,
/// so a waiting task holds no reply buffer and the buffer keeps the size
/// that bursts of replies grew it to. Only a write that has to wait keeps
/// it across an `.await`; the thread then grows another.
pub(super) struct Replies(Vec<u8>);

impl Replies {
    pub(super) fn take() -> Self {
        Replies(REPLIES.take())
    }
}

impl Deref for Replies {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Replies {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Replies {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        buf.clear();
        // A task dropped as its thread ends finds no buffer to give it to.
        let _ = REPLIES.try_with(|replies| replies.set(buf));
    }
}

/// Writes `out`: at once, without waiting, when the socket takes it all
/// (the usual case), or else in a boxed wait of at most [`WRITE_TIMEOUT`]
/// for a client that does not take it. Resolves to false if it could not
/// all be written.
///
/// Boxed: the rare wait's state (a timer among it) would otherwise be part
/// of every task, waiting or not. While it waits, what is left counts toward
/// the client's output bound (see [`Backlog`]), and a line from outside that
/// passes the bound ends the wait at once: the client is closed.
pub(super) fn send<'a>(
    stream: &'a mut TcpStream,
    out: Replies,
    mailbox: &'a Backlog,
) -> Sending<impl Future<Output = bool> + 'a> {
    if out.is_empty() {
        return Sending::Settled(true);
    }
    let written = match stream.try_write(&out) {
        Ok(n) if n == out.len() => return Sending::Settled(true),
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
        Err(_) => return Sending::Settled(false),
    };
    Sending::Waiting(Box::pin(async move {
        let rest = &out[written..];
        mailbox.unsent.store(rest.len(), Ordering::Relaxed);
        let written = tokio::select! {
            written = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(rest)) => {
                matches!(written, Ok(Ok(())))
            }
            () = std::future::poll_fn(|cx| mailbox.poll_overflowed(cx)) => false,
        };
        mailbox.unsent.store(0, Ordering::Relaxed);
        written
    }))
}

/// Replies on their way out (see [`send`]).
pub(super) enum Sending<W> {
    /// Written, or failed, without waiting.
    Settled(bool),
    /// Waiting for the client to take the rest.
    Waiting(Pin<Box<W>>),
}

impl<W: Future<Output = bool>> Future for Sending<W> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        match self.get_mut() {
            Sending::Settled(written) => Poll::Ready(*written),
            Sending::Waiting(wait) => wait.as_mut().poll(cx),
        }
    }
}
