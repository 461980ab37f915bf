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

mod backlog;
mod buffers;

use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use socket2::SockRef;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Sleep;

use super::accept::{already_gone, close_gently, peer_gave_up, AcceptFailures, ACCEPT_BACKOFF};
use super::{ConnectionStrategy, Model};
use crate::error::Error;
use crate::protocol::{ClientId, Goodbye, Outbound};
use crate::server::Server;
use crate::session::{Flow, Session};
use backlog::{tell, Backlog};
use buffers::{poll_read_lent, read_now, send, Arrived, Replies};

/// `--model async`.
pub const MODEL: Model = Model {
    name: "async",
    about: "a task per connection on tokio's work-stealing runtime, --workers threads",
    strategy: &AsyncTasks,
};

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
                        // tokio's stream, closed through socket2's view of it.
                        let goodbye = refused.line();
                        close_gently(&mut &*SockRef::from(&stream), goodbye.as_bytes());
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
        close_gently(&mut &*SockRef::from(&stream), &[]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::Echo;

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
}
