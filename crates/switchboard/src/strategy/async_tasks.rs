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
//! `serve_client` across an `.await`, a read buffer among them) plus the
//! runtime's per-socket state, a few KiB. Per message, what the event loop
//! pays plus the runtime's scheduling: a waker, a queue push and pop, and
//! with several workers, now and then a steal from another thread.
//!
//! **Where it breaks.** Where any event loop does, but later: a line that
//! takes long to answer (a big `calc`) blocks one worker thread and the tasks
//! queued on it, though the others keep going. And the cost of "written for
//! you" is that the runtime's choices (buffers, scheduling, fairness) are
//! not yours, which `compare` shows against our own loop.
//!
//! The console reaches a task through a channel — the goodbye at shutdown
//! included — and a task waits on that channel, its socket and its idle
//! timer at once (`select!`). Every branch of that `select!` is set up anew
//! for each message, which is part of the runtime's price: the fewer, the
//! cheaper.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

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
    let mut tasks = JoinSet::new();
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
                let (tx, inbox) = mpsc::unbounded_channel();
                let outbox = Arc::new(TaskOutbox {
                    tx,
                    backlog: Arc::default(),
                });
                let backlog = Arc::clone(&outbox.backlog);
                let busy = Goodbye::Busy("too many clients");
                let id = match server.admit(peer, outbox, server.limits.max_clients, busy) {
                    Ok(id) => id,
                    Err(refused) => {
                        // A fresh socket takes one line.
                        let _ = stream.try_write(refused.line().as_bytes());
                        tasks.spawn(close_gently(stream));
                        continue;
                    }
                };
                let client = Client { id, inbox, backlog };
                tasks.spawn(serve_client(stream, client, server.clone()));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted || peer_gave_up(&e) => {}
            Err(e) => {
                // EMFILE leaves the connection queued: retrying at once would spin.
                failures.record(&e, Instant::now());
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
        while tasks.try_join_next().is_some() {} // forget finished tasks
    }
    // Each task hears it through its channel, and says goodbye.
    let goodbye = Outbound::Close(Goodbye::ShuttingDown);
    server.clients().send_all(&goodbye);
    let all_done = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(TASKS_GRACE, all_done).await;
    Ok(())
}

/// One client's life: wait for whichever comes first — a message from the
/// console (or the goodbye at shutdown), bytes from the client, the idle
/// timeout — answer, write, and wait again, until either side ends it.
async fn serve_client(mut stream: TcpStream, client: Client, server: Server) {
    let Client {
        id,
        mut inbox,
        backlog,
    } = client;
    let _watch = Watch {
        id,
        server: &server,
    };
    let _ = stream.set_nodelay(true);
    let mut session = Session::new(id);
    let idle_timeout = server.limits.idle_timeout;
    let mut buf = vec![0; 4096];
    let mut out = Vec::new();
    let mut last_heard = tokio::time::Instant::now();
    loop {
        let flow = if session.has_backlog() {
            // Its turn is spent (replies piled up, or the session's time
            // budget ran out): the other tasks go first, then the rest.
            tokio::task::yield_now().await;
            session.resume(&server.context(), &mut out)
        } else {
            let idle_at = idle_timeout.map(|limit| last_heard + limit);
            let read = tokio::select! {
                // Checked first: a goodbye comes before anything else.
                biased;
                Some(msg) = inbox.recv() => Err(msg),
                read = stream.read(&mut buf) => Ok(read),
                // The timer and the client's data can be due together (after
                // the server stalled): what arrived is read before the
                // client is judged silent. The kernel is asked, as tokio's
                // record of readiness may not have caught up yet.
                _ = sleep_until(idle_at) => match std::io::Read::read(&mut &*SockRef::from(&stream), &mut buf) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        Err(Outbound::Close(Goodbye::IdleTimeout))
                    }
                    read => Ok(read),
                },
            };
            match read {
                Err(msg) => {
                    if let Outbound::Line(text) = &msg {
                        backlog.told.fetch_sub(text.len() + 1, Ordering::Relaxed);
                    }
                    tell(msg, &mut out)
                }
                Ok(Ok(0)) => session.on_eof(&server.context(), &mut out),
                Ok(Ok(n)) => {
                    if idle_timeout.is_some() {
                        last_heard = tokio::time::Instant::now();
                    }
                    session.on_bytes(&server.context(), &buf[..n], &mut out)
                }
                Ok(Err(e)) => {
                    tracing::debug!(client = %id, "read failed: {e}");
                    out.clear();
                    Flow::Close
                }
            }
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
            if !write_all(&mut stream, &out, &backlog).await {
                tracing::debug!(client = %id, "client is not taking its replies; closing");
                server.clients().leave(id);
                break;
            }
            out.clear();
        }
        if flow == Flow::Close {
            break;
        }
    }
    close_gently(stream).await;
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
/// [`TaskOutbox`]), and a line from outside that passes the bound ends the
/// wait at once: the client is closed.
async fn write_all(stream: &mut TcpStream, bytes: &[u8], backlog: &Backlog) -> bool {
    let rest = match stream.try_write(bytes) {
        Ok(n) if n == bytes.len() => return true,
        Ok(n) => &bytes[n..],
        Err(e) if e.kind() == ErrorKind::WouldBlock => bytes,
        Err(_) => return false,
    };
    backlog.unsent.store(rest.len(), Ordering::Relaxed);
    let written = tokio::select! {
        written = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(rest)) => {
            matches!(written, Ok(Ok(())))
        }
        () = backlog.overflowed.notified() => false,
    };
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

/// Sleeps until `at`, or forever without a deadline.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
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

/// What a task starts with besides its socket.
struct Client {
    id: ClientId,
    inbox: mpsc::UnboundedReceiver<Outbound>,
    backlog: Arc<Backlog>,
}

/// A client's output that waits: lines queued for its task, and replies its
/// socket has not taken. Together they are held to the one output bound.
#[derive(Default)]
struct Backlog {
    /// Bytes of the lines in the channel, not yet taken by the task.
    told: AtomicUsize,
    /// Bytes the task is waiting to write (0 when writes go through at once).
    unsent: AtomicUsize,
    /// Wakes a task stuck writing when its bound is passed.
    overflowed: Notify,
}

/// The console's way to a task: a channel, so the console never waits, and
/// a count of what waits in it, so a client that does not read cannot make
/// it grow without bound.
struct TaskOutbox {
    tx: mpsc::UnboundedSender<Outbound>,
    backlog: Arc<Backlog>,
}

impl Outbox for TaskOutbox {
    fn send(&self, to: ClientId, msg: Outbound) {
        if let Outbound::Line(text) = &msg {
            let (told, unsent) = (&self.backlog.told, &self.backlog.unsent);
            let waiting =
                told.load(Ordering::Relaxed) + beyond_replies(unsent.load(Ordering::Relaxed));
            if past_output_bound(to, waiting, text.len() + 1) {
                // The task is told to close; it may be stuck in a write.
                self.backlog.overflowed.notify_one();
                let _ = self.tx.send(Outbound::Close(Goodbye::Overflow));
                return;
            }
            told.fetch_add(text.len() + 1, Ordering::Relaxed);
        }
        let _ = self.tx.send(msg);
    }
}
