//! Async: one task per connection on tokio's work-stealing runtime.
//!
//! **How it works.** This is the server a Rust programmer writes today. Each
//! connection gets a *task*: code that reads like thread-per-client's —
//! read, answer, write, in a loop — but every `.await` where it would block
//! instead hands the thread back to the runtime. Underneath, tokio runs an
//! event loop much like ours (epoll or kqueue, via mio) on `--workers N`
//! threads, and wakes a task when its socket is ready; idle threads steal
//! ready tasks from busy ones. So the model is an event loop with the
//! bookkeeping written for you: no `Conn` struct, no `again` list — the state
//! of a connection is simply the task's local variables.
//!
//! **What it costs.** Per idle client, one task: its future (the locals of
//! `serve_client` across an `.await`, in tokio's task cell) plus the
//! runtime's per-socket state and the client's mailbox. An idle connection
//! holds its session, an empty mailbox and a waiting task: no buffer. The
//! task reads as `stream.read(&mut buf).await` would, but into a buffer
//! of the worker thread's, lent only while the read is polled
//! (`read_lent`), and answers into the worker thread's reply buffer
//! (`Replies`), as the event loop lends its buffers to every connection:
//! it owns bytes only while a line is unfinished (the session holds them)
//! or a write has to wait. Per message, what the event loop pays plus the
//! runtime's scheduling: a waker, a queue push and pop, and with several
//! workers, now and then a steal from another thread. What each of these
//! costs, and what is left of an idle connection's memory, is measured in
//! `docs/measurements/2026-12-07-async-lean-again.md`. Leanness costs
//! plainness in four places: `read_lent`, `Replies`, `Backlog` (a
//! mailbox, not an mpsc channel) and `serve_client` (not an `async fn`).
//!
//! **Where it breaks.** Where any event loop does, but later: a line that
//! takes long to answer (a big `calc`) blocks one worker thread and the tasks
//! queued on it, though the others keep going. And the cost of "written for
//! you" is that the runtime's choices (buffers, scheduling, fairness) are
//! not yours, which `compare` shows against our own loop.
//!
//! The console reaches a task through its mailbox — the goodbye at shutdown
//! included — and a task waits on that mailbox, its socket and its idle
//! timer at once (`select!`). Each branch of that `select!` is polled for
//! each message, which is part of the runtime's price: the fewer, and the
//! less each one sets up anew, the cheaper.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Poll, Waker};
use std::time::{Duration, Instant};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};

use super::accept::{already_gone, peer_gave_up, AcceptFailures, ACCEPT_BACKOFF};
use super::{beyond_replies, past_output_bound, ConnectionStrategy, Model};
use crate::clients::Outbox;
use crate::error::Error;
use crate::protocol::{ClientId, Goodbye, Outbound};
use crate::server::Server;
use crate::session::{Flow, Session};

/// `--model async`.
pub const MODEL: Model = Model {
    name: "async",
    about: "a task per connection on tokio's work-stealing runtime, --workers threads",
    strategy: &AsyncTasks,
};

/// A reply that is not all written within this long fails, and the client
/// is dropped: a task does not wait forever on a client that never reads.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping server waits for its tasks to send their goodbyes.
const TASKS_GRACE: Duration = Duration::from_millis(500);

/// Serves each client in a task of its own on a tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncTasks;

impl ConnectionStrategy for AsyncTasks {
    fn serve(&self, listener: std::net::TcpListener, server: Server) -> Result<(), Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(server.workers.max(1))
            .thread_name("async-worker")
            .enable_all()
            .build()
            .map_err(Error::io("starting the tokio runtime"))?;
        runtime.block_on(accept_loop(listener, server))
    }
}

/// Accepts connections and spawns a task for each until shutdown, then waits
/// (briefly) for every task to say goodbye.
async fn accept_loop(listener: std::net::TcpListener, server: Server) -> Result<(), Error> {
    // One for all tasks: a task holds a pointer to it, not a copy.
    let server = Arc::new(server);
    listener
        .set_nonblocking(true)
        .map_err(Error::io("making the listener non-blocking"))?;
    let listener =
        TcpListener::from_std(listener).map_err(Error::io("registering the listener"))?;
    // A watch channel, not a notification: a task that starts after the
    // signal fired still sees it.
    let (stop, stopped) = watch::channel(false);
    server.shutdown.on_trigger(move || {
        stop.send_replace(true);
    });
    // Every task holds a sender; when the last is gone, every task is.
    // (tokio's own way to wait for tasks: a JoinSet would keep an entry
    // per client.)
    let (running, mut all_done) = mpsc::channel::<()>(1);
    let mut failures = AcceptFailures::default();
    let mut stopping = stopped;
    loop {
        let accepted = tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) if already_gone(SockRef::from(&stream)) => {}
            Ok((stream, peer)) => {
                failures.recovered(Instant::now());
                let backlog = Arc::new(Backlog::default());
                let outbox = Arc::clone(&backlog);
                let busy = Goodbye::Busy("too many clients");
                let id = match server.admit(peer, outbox, server.limits.max_clients, busy) {
                    Ok(id) => id,
                    Err(refused) => {
                        // A fresh socket takes one line.
                        let _ = stream.try_write(refused.line().as_bytes());
                        let running = running.clone();
                        tokio::spawn(async move {
                            close_gently(stream).await;
                            drop(running);
                        });
                        continue;
                    }
                };
                let client =
                    serve_client(stream, id, backlog, Arc::clone(&server), running.clone());
                tokio::spawn(client);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted || peer_gave_up(&e) => {}
            Err(e) => {
                // EMFILE leaves the connection queued: retrying at once would spin.
                failures.record(&e, Instant::now());
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    // Each task hears it through its mailbox, and says goodbye.
    let goodbye = Outbound::Close(Goodbye::ShuttingDown);
    server.clients().send_all(&goodbye);
    drop(running);
    let _ = tokio::time::timeout(TASKS_GRACE, all_done.recv()).await;
    Ok(())
}

/// One client's life: wait for whichever comes first — a message from the
/// console (or the goodbye at shutdown), bytes from the client, the idle
/// timeout — answer, write, and wait again, until either side ends it.
///
/// A function returning an `async move` block rather than an `async fn`:
/// an `async fn` keeps a second copy of its arguments in its future, which
/// every waiting task would carry.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would hold its arguments twice"
)]
fn serve_client(
    mut stream: TcpStream,
    id: ClientId,
    backlog: Arc<Backlog>,
    server: Arc<Server>,
    running: mpsc::Sender<()>,
) -> impl Future<Output = ()> {
    async move {
        let _watch = Watch {
            id,
            server: &server,
        };
        let _ = stream.set_nodelay(true);
        let mut session = Session::new(id);
        let mut out = Replies::default();
        // One timer for the client's life, pushed back whenever it is heard
        // from; none without a timeout.
        let mut idle = server
            .limits
            .idle_timeout
            .map(|limit| Box::pin(tokio::time::sleep(limit)));
        loop {
            let flow = if session.has_backlog() {
                // Its turn is spent (replies piled up, or the session's time
                // budget ran out): the other tasks go first, then the rest.
                tokio::task::yield_now().await;
                session.resume(&server.context(), out.buf())
            } else {
                let (flow, heard) = tokio::select! {
                    // Checked first: a goodbye comes before anything else.
                    biased;
                    () = backlog.mail() => (backlog.deliver(out.buf()), false),
                    answered = read_lent(&mut stream, |read| {
                        answer(read, &mut session, &server, out.buf())
                    }) => answered,
                    // The timer and the client's data can be due together (after
                    // the server stalled): what arrived is read before the
                    // client is judged silent. The kernel is asked, as tokio's
                    // record of readiness may not have caught up yet.
                    () = expired(&mut idle) => LENT.with_borrow_mut(|buf| {
                        match std::io::Read::read(&mut &*SockRef::from(&stream), buf) {
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                                (tell(Outbound::Close(Goodbye::IdleTimeout), out.buf()), false)
                            }
                            read => answer(read.map(|n| &buf[..n]), &mut session, &server, out.buf()),
                        }
                    }),
                };
                if let (true, Some(timer), Some(limit)) =
                    (heard, &mut idle, server.limits.idle_timeout)
                {
                    timer.as_mut().reset(tokio::time::Instant::now() + limit);
                }
                flow
            };
            if flow == Flow::Close {
                // Leave before the last reply goes out: a client that has read
                // `bye` may reconnect at once and must find the seat free.
                server.clients().leave(id);
            }
            if !out.is_empty() {
                // Backpressure for free: while the client does not read, this
                // await does not return, and nothing more is read from it. (At
                // shutdown a write that is stuck is abandoned with its task.)
                if !write_all(&mut stream, &out.0, &backlog).await {
                    tracing::debug!(client = %id, "client is not taking its replies; closing");
                    server.clients().leave(id);
                    out.give_back();
                    break;
                }
            }
            out.give_back();
            if flow == Flow::Close {
                break;
            }
        }
        close_gently(stream).await;
        drop(running);
    }
}

/// Hands what a read brought to the session (an empty slice: the client's
/// end); true beside the flow if the client was heard from.
fn answer(
    read: std::io::Result<&[u8]>,
    session: &mut Session,
    server: &Server,
    out: &mut Vec<u8>,
) -> (Flow, bool) {
    match read {
        Ok([]) => (session.on_eof(&server.context(), out), false),
        Ok(bytes) => (session.on_bytes(&server.context(), bytes, out), true),
        Err(e) => {
            tracing::debug!(client = %session.id(), "read failed: {e}");
            out.clear();
            (Flow::Close, false)
        }
    }
}

/// Size of each worker thread's read buffer (as the event loop's).
const READ_BUFFER: usize = 64 * 1024;

thread_local! {
    /// The read buffer of the worker thread a task runs on, lent for one
    /// read and the session's answer to it, never across an `.await`: so
    /// a waiting task holds none.
    static LENT: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUFFER].into_boxed_slice());
}

/// `stream.read(&mut buf).await`, but into the worker thread's buffer
/// ([`LENT`]), borrowed only while the read is polled; what was read (an
/// empty slice: the client's end) goes to `then` before it is given back.
///
/// It reads through tokio's own `poll_read`, as `read().await` does: one
/// `recv` per wake-up, and a read that does not fill the buffer tells tokio
/// the socket is drained. Waiting with `readable().await` and reading with
/// `try_read` costs a second `recv`, failing with `WouldBlock`, per message
/// (see `docs/measurements/2026-12-07-async-lean-again.md`).
fn read_lent<'a, R>(
    stream: &'a mut TcpStream,
    mut then: impl FnMut(std::io::Result<&[u8]>) -> R + 'a,
) -> impl Future<Output = R> + 'a {
    std::future::poll_fn(move |cx| {
        LENT.with_borrow_mut(|buf| {
            let mut buf = ReadBuf::new(buf);
            let read = ready!(Pin::new(&mut *stream).poll_read(cx, &mut buf));
            Poll::Ready(then(read.map(|()| buf.filled())))
        })
    })
}

thread_local! {
    /// The reply buffer of the worker thread a task runs on (see [`Replies`]).
    static REPLIES: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A task's replies, in the worker thread's reply buffer ([`REPLIES`]):
/// taken when the task has something to answer, given back once it is
/// written, so a waiting task holds no reply buffer and the buffer keeps
/// the size that bursts of replies grew it to. Only a write that has to
/// wait keeps it across an `.await`; the thread then grows another.
#[derive(Default)]
struct Replies(Vec<u8>);

impl Replies {
    fn buf(&mut self) -> &mut Vec<u8> {
        if self.0.capacity() == 0 {
            self.0 = REPLIES.take();
        }
        &mut self.0
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn give_back(&mut self) {
        if self.0.capacity() > 0 {
            let mut buf = std::mem::take(&mut self.0);
            buf.clear();
            REPLIES.set(buf);
        }
    }
}

/// Watches a task: if it dies serving its client (a panic outside the mode,
/// which the session already contains; the runtime catches it and goes on),
/// the client's seat is freed, and its socket, dropped with the task, closes.
struct Watch<'a> {
    id: ClientId,
    server: &'a Server,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(client = %self.id, "the task serving this client died; client closed");
            self.server.clients().leave(self.id);
        }
    }
}

/// Writes `bytes`, waiting at most [`WRITE_TIMEOUT`] for a client that does
/// not take them; false if they could not all be written. The usual case —
/// the socket takes everything at once — arms no timer, whose making (a
/// runtime handle cloned, the clock read) every message would pay.
///
/// While it waits, what is left counts toward the client's output bound (see
/// [`Backlog`]), and a line from outside that passes the bound ends the
/// wait at once: the client is closed.
async fn write_all(stream: &mut TcpStream, bytes: &[u8], backlog: &Backlog) -> bool {
    let rest = match stream.try_write(bytes) {
        Ok(n) if n == bytes.len() => return true,
        Ok(n) => &bytes[n..],
        Err(e) if e.kind() == ErrorKind::WouldBlock => bytes,
        Err(_) => return false,
    };
    backlog.unsent.store(rest.len(), Ordering::Relaxed);
    // Boxed: the rare wait's state (a timer among it) would otherwise be
    // part of every task, waiting or not.
    let written = Box::pin(async {
        tokio::select! {
            written = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(rest)) => {
                matches!(written, Ok(Ok(())))
            }
            () = backlog.overflowed.notified() => false,
        }
    })
    .await;
    backlog.unsent.store(0, Ordering::Relaxed);
    written
}

/// A message from outside the session: an operator's line, or a goodbye.
fn tell(msg: Outbound, out: &mut Vec<u8>) -> Flow {
    match msg {
        Outbound::Line(text) => {
            out.extend_from_slice(text.as_bytes());
            out.push(b'\n');
            Flow::Continue
        }
        Outbound::Close(why) => {
            out.extend_from_slice(why.line().as_bytes());
            Flow::Close
        }
    }
}

/// Waits for the idle timer, or forever without one.
async fn expired(timer: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match timer {
        Some(timer) => timer.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Ends our side, then swallows what the client already sent: closing with
/// unread input makes the kernel send a reset, which can destroy our last
/// line (`bye`, an `ERR`) before the client reads it.
async fn close_gently(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0; 1024];
    for _ in 0..16 {
        if !matches!(stream.try_read(&mut sink), Ok(n) if n > 0) {
            break;
        }
    }
}

/// A client's output that waits: lines from outside queued for its task,
/// and replies its socket has not taken. Together they are held to the one
/// output bound. It is the console's way to the task (its [`Outbox`]): a
/// queue and the task's waker rather than an mpsc channel, because a
/// channel allocates a block of slots per client up front, idle or not,
/// where an empty queue holds nothing, and a waiting task holds no more
/// than a reference to it (a `Notify` would have it hold a waiter of its
/// own). That is one of the places this file reads less plainly than a
/// tokio server usually does.
#[derive(Default)]
struct Backlog {
    mail: Mutex<Mail>,
    /// Bytes the task is waiting to write (0 when writes go through at once).
    unsent: AtomicUsize,
    /// Wakes a task stuck writing when its bound is passed.
    overflowed: Notify,
}

/// Lines and goodbyes from outside, in the order sent, and who to wake.
#[derive(Default)]
struct Mail {
    queue: VecDeque<Outbound>,
    /// Bytes of the lines in the queue; `usize::MAX` once the client passed
    /// its bound, until the task takes the overflow goodbye (as
    /// [`InFlight`](super::InFlight) marks it for the loops).
    told: usize,
    /// The task, once it has waited for mail.
    waker: Option<Waker>,
}

impl Backlog {
    fn lock(&self) -> MutexGuard<'_, Mail> {
        self.mail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until there is mail.
    async fn mail(&self) {
        std::future::poll_fn(|cx| {
            let mut mail = self.lock();
            if !mail.queue.is_empty() {
                return Poll::Ready(());
            }
            if !matches!(&mail.waker, Some(waker) if waker.will_wake(cx.waker())) {
                mail.waker = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }

    /// Takes the mail into `out`, up to a goodbye.
    fn deliver(&self, out: &mut Vec<u8>) -> Flow {
        let mut mail = self.lock();
        while let Some(msg) = mail.queue.pop_front() {
            if let (Outbound::Line(text), false) = (&msg, mail.told == usize::MAX) {
                mail.told -= text.len() + 1;
            }
            if tell(msg, out) == Flow::Close {
                return Flow::Close;
            }
        }
        mail.queue = VecDeque::new(); // an idle client keeps no queue
        Flow::Continue
    }
}

impl Outbox for Backlog {
    /// Queues `msg`, so the console never waits, counting what waits, so a
    /// client that does not read cannot make it grow without bound.
    fn send(&self, to: ClientId, msg: Outbound) {
        let waker = {
            let mut mail = self.lock();
            if mail.told == usize::MAX {
                return; // its overflow goodbye is on its way
            }
            let msg = match &msg {
                Outbound::Line(text) => {
                    let waiting = mail.told + beyond_replies(self.unsent.load(Ordering::Relaxed));
                    if past_output_bound(to, waiting, text.len() + 1) {
                        mail.told = usize::MAX;
                        // The task is told to close; it may be stuck in a write.
                        self.overflowed.notify_one();
                        Outbound::Close(Goodbye::Overflow)
                    } else {
                        mail.told += text.len() + 1;
                        msg
                    }
                }
                Outbound::Close(_) => msg,
            };
            mail.queue.push_back(msg);
            mail.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::OUTPUT_LIMIT;

    /// A client that never reads is sent one overflow goodbye, however much
    /// more the console sends it, and the queue stops growing there.
    #[test]
    fn a_client_past_its_bound_gets_one_goodbye() {
        let backlog = Backlog::default();
        let line = "x".repeat(1023);
        for _ in 0..(OUTPUT_LIMIT / 1024) * 3 {
            backlog.send(ClientId(1), Outbound::Line(line.clone()));
        }
        let mail = backlog.lock();
        let goodbyes = (mail.queue.iter())
            .filter(|m| matches!(m, Outbound::Close(Goodbye::Overflow)))
            .count();
        assert_eq!(goodbyes, 1);
        assert_eq!(mail.queue.len(), OUTPUT_LIMIT / 1024 + 1);
    }
}
