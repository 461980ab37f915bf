//! Async: one task per connection on tokio's work-stealing runtime.
//!
//! **How it works.** This is the server a Rust programmer writes today. Each
//! connection gets a *task*: code that reads like thread-per-client's —
//! read, answer, write, in a loop — but every `.await` where it would block
//! instead hands the thread back to the runtime. Underneath, tokio runs an
//! event loop much like ours (epoll or kqueue, via mio) on `--workers N`
//! threads, and wakes a task when its socket is ready; idle threads steal
//! ready tasks from busy ones. So the model is an event loop with the
//! bookkeeping written for you: no table of connections, no `again` list —
//! the state of a connection is simply what its task holds.
//!
//! **What it costs.** An idle connection holds a waiting task (tokio's
//! task cell, the future's locals among it), tokio's readiness record for
//! its socket, its mailbox and its seat in the client registry: no buffer.
//! The task reads as `stream.read(&mut buf).await` would, but into a buffer
//! of the worker thread's, lent only while the read is polled
//! (`poll_read_lent`), and answers into the worker thread's reply buffer
//! (`Replies`), as the event loop lends its buffers to every connection:
//! it owns bytes only while a line is unfinished (the session holds them)
//! or a write has to wait. Per message, what the event loop pays plus the
//! runtime's scheduling: a waker, a queue push and pop, and with several
//! workers, now and then a steal from another thread. What each of these
//! costs, and what an idle connection's memory comes to, is measured in
//! `docs/measurements/2026-12-07-async-under-a-kilobyte.md`. Leanness
//! costs plainness in a few places, each saying so: `wait` (not a
//! `select!`), `Arrived` and `Replies` (buffers of the thread's), `send`
//! (a boxed wait), `Backlog` (a mailbox, not an mpsc channel) and
//! `serve_client` (not an `async fn`).
//!
//! **Where it breaks.** Where any event loop does, but later: a line that
//! takes long to answer (a big `calc`) blocks one worker thread and the tasks
//! queued on it, though the others keep going. And the cost of "written for
//! you" is that the runtime's choices (buffers, scheduling, fairness) are
//! not yours, which `compare` shows against our own loop.
//!
//! The console reaches a task through its mailbox — the goodbye at shutdown
//! included — and a task waits on that mailbox, its socket and its idle
//! timer at once (`wait`). Each of the three is polled for each message,
//! which is part of the runtime's price: the fewer, and the less each one
//! sets up anew, the cheaper.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io::ErrorKind;
use std::marker::PhantomData;
use std::net::Shutdown;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Sleep;

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
                let mailbox = Arc::new(Backlog::default());
                let busy = Goodbye::Busy("too many clients");
                let outbox = Arc::clone(&mailbox);
                match server.admit(peer, outbox, server.limits.max_clients, busy) {
                    Ok(id) => {
                        let client = Client::new(id, mailbox, &server, running.clone());
                        tokio::spawn(serve_client(stream, client));
                    }
                    Err(refused) => {
                        // A fresh socket takes one line.
                        let _ = stream.try_write(refused.line().as_bytes());
                        close_gently(stream);
                    }
                }
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
fn serve_client(mut stream: TcpStream, mut client: Client) -> impl Future<Output = ()> {
    async move {
        let _ = stream.set_nodelay(true);
        loop {
            let woken = if client.session.has_backlog() {
                // Its turn is spent (replies piled up, or the session's time
                // budget ran out): the other tasks go first, then the rest.
                tokio::task::yield_now().await;
                Woken::Resumed
            } else {
                wait(&mut stream, &mut client).await
            };
            let flow;
            // In a block of its own: a buffer kept in a local across the
            // `.await` below would have a place in every task's future.
            let sending = {
                let mut out = Replies::take();
                flow = client.answer(woken, &stream, &mut out);
                if flow == Flow::Close {
                    // Leave before the last reply goes out: a client that has
                    // read `bye` may reconnect at once and must find the seat
                    // free.
                    client.leave();
                }
                send(&mut stream, out, &client.mailbox)
            };
            // Backpressure for free: while the client does not read, this
            // await does not return, and nothing more is read from it. (At
            // shutdown a write that is stuck is abandoned with its task.)
            if !sending.await {
                tracing::debug!(client = %client.session.id(), "client is not taking its replies; closing");
                break;
            }
            if flow == Flow::Close {
                break;
            }
        }
        close_gently(stream);
    }
}

/// A client as its task holds it. Dropping it, however the task ends —
/// even by a panic outside the mode (which the session already contains;
/// the runtime catches it and goes on) — frees the client's seat, and the
/// socket, dropped beside it, closes.
struct Client {
    session: Session,
    /// How the console (and the goodbye at shutdown) reaches the task.
    mailbox: Arc<Backlog>,
    /// The server, shared by every task.
    server: Arc<Server>,
    /// One timer for the client's life, pushed back whenever it is heard
    /// from; none without a timeout.
    idle: Option<Pin<Box<Sleep>>>,
    /// Held while the task runs: at shutdown the server waits (briefly)
    /// until every one is dropped.
    _running: mpsc::Sender<()>,
}

impl Client {
    fn new(
        id: ClientId,
        mailbox: Arc<Backlog>,
        server: &Arc<Server>,
        running: mpsc::Sender<()>,
    ) -> Self {
        Client {
            session: Session::new(id),
            mailbox,
            server: Arc::clone(server),
            idle: (server.limits.idle_timeout).map(|limit| Box::pin(tokio::time::sleep(limit))),
            _running: running,
        }
    }

    /// Answers whatever woke the task, into `out`.
    fn answer(&mut self, woken: Woken, stream: &TcpStream, out: &mut Vec<u8>) -> Flow {
        match woken {
            Woken::Resumed => self.session.resume(&self.server.context(), out),
            Woken::Mail => self.mailbox.deliver(out),
            Woken::Read(read) => self.heard(read, out),
            // The timer and the client's data can be due together (after the
            // server stalled): what arrived is read before the client is
            // judged silent. The kernel is asked, as tokio's record of
            // readiness may not have caught up yet.
            Woken::Idle => match read_now(stream) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    tell(Outbound::Close(Goodbye::IdleTimeout), out)
                }
                read => self.heard(read, out),
            },
        }
    }

    /// Hands what a read brought to the session (no bytes: the client's end).
    fn heard(&mut self, read: std::io::Result<Arrived>, out: &mut Vec<u8>) -> Flow {
        let context = self.server.context();
        match read {
            Ok(arrived) => arrived.bytes(|bytes| match bytes {
                [] => self.session.on_eof(&context, out),
                bytes => {
                    if let (Some(timer), Some(limit)) =
                        (&mut self.idle, self.server.limits.idle_timeout)
                    {
                        timer.as_mut().reset(tokio::time::Instant::now() + limit);
                    }
                    self.session.on_bytes(&context, bytes, out)
                }
            }),
            Err(e) => {
                tracing::debug!(client = %self.session.id(), "read failed: {e}");
                out.clear();
                Flow::Close
            }
        }
    }

    /// Frees the client's seat (again, harmlessly, when it is dropped).
    fn leave(&self) {
        self.server.clients().leave(self.session.id());
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(client = %self.session.id(), "the task serving this client died; client closed");
        }
        self.leave();
    }
}

/// What woke a task.
enum Woken {
    /// Nothing: its turn was spent with lines still waiting (see
    /// `serve_client`).
    Resumed,
    /// Mail from outside.
    Mail,
    /// Bytes from the client, or its end, or a failed read.
    Read(std::io::Result<Arrived>),
    /// The idle timer.
    Idle,
}

/// Waits for the first of: mail (a goodbye comes before anything else),
/// the client's bytes, the idle timer — polled in that order, as
/// `tokio::select! { biased; ... }` would poll them.
///
/// Written out rather than with `select!`, which would keep a future per
/// branch, and its own state, in every waiting task: enough bytes to move
/// the task into tokio's next size of task cell (see
/// `docs/measurements/2026-12-07-async-under-a-kilobyte.md`). Here, more
/// than anywhere else in the file, the code gives up reading like the tokio
/// server a Rust user writes, for the sake of memory.
fn wait<'a>(stream: &'a mut TcpStream, client: &'a mut Client) -> impl Future<Output = Woken> + 'a {
    std::future::poll_fn(move |cx| {
        if client.mailbox.poll_mail(cx).is_ready() {
            return Poll::Ready(Woken::Mail);
        }
        if let Poll::Ready(read) = poll_read_lent(stream, cx) {
            return Poll::Ready(Woken::Read(read));
        }
        match &mut client.idle {
            Some(timer) => timer.as_mut().poll(cx).map(|()| Woken::Idle),
            None => Poll::Pending,
        }
    })
}

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
struct Arrived {
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
    fn bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
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
fn poll_read_lent(stream: &mut TcpStream, cx: &mut Context<'_>) -> Poll<std::io::Result<Arrived>> {
    LENT.with_borrow_mut(|buf| {
        let mut buf = ReadBuf::new(buf);
        ready!(Pin::new(stream).poll_read(cx, &mut buf))?;
        Poll::Ready(Ok(Arrived::new(buf.filled().len())))
    })
}

/// A read straight from the kernel, that does not wait.
fn read_now(stream: &TcpStream) -> std::io::Result<Arrived> {
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
struct Replies(Vec<u8>);

impl Replies {
    fn take() -> Self {
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
fn send<'a>(
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
enum Sending<W> {
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

/// Ends our side, then swallows what the client already sent: closing with
/// unread input makes the kernel send a reset, which can destroy our last
/// line (`bye`, an `ERR`) before the client reads it.
fn close_gently(stream: TcpStream) {
    let _ = SockRef::from(&stream).shutdown(Shutdown::Write);
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
}

/// Lines and goodbyes from outside, in the order sent, and who to wake.
#[derive(Default)]
struct Mail {
    queue: VecDeque<Outbound>,
    /// Bytes of the lines in the queue; `usize::MAX` once the client passed
    /// its bound, until the task takes the overflow goodbye (as
    /// [`InFlight`](super::InFlight) marks it for the loops).
    told: usize,
    /// The task, once it has waited for mail (or, while a write waits,
    /// for its overflow).
    waker: Option<Waker>,
}

impl Backlog {
    fn lock(&self) -> MutexGuard<'_, Mail> {
        self.mail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ready when there is mail; else the task is woken when some comes.
    fn poll_mail(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_until(cx, |mail| !mail.queue.is_empty())
    }

    /// Ready once the client has passed its output bound; else the task is
    /// woken by the next line sent to it (it then polls again).
    fn poll_overflowed(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_until(cx, |mail| mail.told == usize::MAX)
    }

    fn poll_until(&self, cx: &mut Context<'_>, ready: impl Fn(&Mail) -> bool) -> Poll<()> {
        let mut mail = self.lock();
        if ready(&mail) {
            return Poll::Ready(());
        }
        if !matches!(&mail.waker, Some(waker) if waker.will_wake(cx.waker())) {
            mail.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Takes the mail into `out`, up to a goodbye.
    fn deliver(&self, out: &mut Vec<u8>) -> Flow {
        let mut mail = self.lock();
        // Taken whole: an idle client keeps no queue.
        for msg in std::mem::take(&mut mail.queue) {
            if let (Outbound::Line(text), false) = (&msg, mail.told == usize::MAX) {
                mail.told -= text.len() + 1;
            }
            if tell(msg, out) == Flow::Close {
                return Flow::Close;
            }
        }
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
                        // The task is told to close (woken below, even if
                        // it is stuck in a write: see `poll_overflowed`).
                        mail.told = usize::MAX;
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
    use crate::mode::Echo;
    use crate::session::OUTPUT_LIMIT;

    /// The most a task's future may keep beside its socket and still fit,
    /// with tokio's own header, scheduler and trailer, in tokio's 256-byte
    /// task cell (see `docs/measurements/2026-12-07-async-under-a-kilobyte.md`).
    /// Beside the socket, because a debug build's socket is larger.
    const BESIDE_THE_SOCKET: usize = 120;

    /// A field added to a task, or a future kept across one of its
    /// `.await`s, would move every task into the next cell size: 128 bytes
    /// more per connection, idle or not.
    #[test]
    fn a_task_fits_the_small_task_cell() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
            let address = listener.local_addr().expect("an address");
            let _peer = TcpStream::connect(address).await.expect("connected");
            let (stream, _) = listener.accept().await.expect("accepted");
            let server = Arc::new(Server::new(Echo));
            let (running, _) = mpsc::channel(1);
            let client = Client::new(ClientId(1), Arc::default(), &server, running);
            let task = serve_client(stream, client);
            let beside = std::mem::size_of_val(&task) - std::mem::size_of::<TcpStream>();
            assert!(
                beside <= BESIDE_THE_SOCKET,
                "a task keeps {beside} bytes beside its socket"
            );
        });
    }

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
