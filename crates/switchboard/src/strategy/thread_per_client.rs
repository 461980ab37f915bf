//! Thread-per-client: every connection gets its own OS thread.
//!
//! **How it works.** The main thread blocks in `accept`. Each new connection
//! is handed to a fresh thread, which blocks in `read` until its client says
//! something, answers, and blocks again, until the client leaves. The code is
//! as simple as a single-client server's — straight-line, blocking calls —
//! and the operating system's scheduler does the multiplexing: a slow or
//! silent client only ever holds up its own thread.
//!
//! **What it costs.** A thread per client: a stack (reserved address space of
//! which only touched pages become memory — we ask for a small one, so
//! thousands fit), a kernel task, and a wake-up and context switch each time
//! a client's data arrives. Per message that switch is the model's price:
//! `compare` shows it as CPU per message well above one event loop's.
//!
//! **Where it breaks.** At tens of thousands of clients (memory, the
//! system's thread limit), or when many busy clients make the switches
//! dominate the work.
//!
//! One problem is not the model's but the coursework's: the operator may
//! write to a client (`@2 hello`, `/kick 2`) while that client's thread is
//! blocked in `read`. `shared_writer.rs` solves it; this file uses it as a
//! plain writer.
//!
//! The accept loop below is shared with [`single_client`](super::single_client),
//! which is this model with one seat.

mod shared_writer;

use std::io::{self, ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use self::shared_writer::SharedWriter;
use socket2::SockRef;

use super::accept::{accept_blocking, already_gone, has_input};
use super::{ConnectionStrategy, Model};
use crate::clients::Outbox;
use crate::error::Error;
use crate::protocol::{ClientId, Goodbye, Outbound};
use crate::server::Server;
use crate::session::{Flow, Session};

/// `--model thread-per-client` (`server2`).
pub const MODEL: Model = Model {
    name: "thread-per-client",
    about: "one OS thread per connection, blocking reads (server2)",
    strategy: &ThreadPerClient,
};

/// Stack per client thread. Sessions keep little on the stack (the
/// calculator caps its recursion at 64 levels, about 140 KiB in a debug
/// build), so 512 KiB of address space is ample; untouched pages cost no
/// memory.
pub(super) const STACK_SIZE: usize = 512 * 1024;

/// A client's read buffer starts this small — what an idle client holds —
/// and doubles each time a read fills it, up to [`MAX_READ`]: a client of
/// 16 KiB lines is soon read in one call instead of four.
const FIRST_READ: usize = 1024;
const MAX_READ: usize = 64 * 1024;

/// Windows may not end a blocking `read` when another thread shuts the socket
/// down (on `/kick` or at shutdown), so there a client's thread wakes this
/// often to check; elsewhere the shutdown itself ends the `read`.
const CHECK_CLOSED_EVERY: Option<Duration> = if cfg!(windows) {
    Some(Duration::from_secs(1))
} else {
    None
};

/// How long a stopping server waits for its client threads to send their
/// goodbyes and finish.
pub(super) const THREADS_GRACE: Duration = Duration::from_millis(500);

/// Serves each client on a thread of its own, up to `--max-clients`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadPerClient;

impl ConnectionStrategy for ThreadPerClient {
    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error> {
        let seats = server.limits.max_clients;
        thread_per_client(&listener, &server, seats, Goodbye::Busy("too many clients"))
    }
}

/// Serves up to `seats` clients at once, each on a thread of its own; the
/// rest are turned away with `busy`. Waits (briefly) at shutdown for the
/// threads to finish saying goodbye.
pub(super) fn thread_per_client(
    listener: &TcpListener,
    server: &Server,
    seats: usize,
    busy: Goodbye,
) -> Result<(), Error> {
    let running = Running::default();
    let most_threads = thread_budget();
    accept_loop(
        listener,
        server,
        seats,
        busy,
        || {},
        |client| {
            let (id, writer) = (client.id, Arc::clone(&client.writer));
            if *running.count() >= most_threads {
                server.clients().leave(id);
                writer.close(Some(Goodbye::Busy("no thread for this client")));
                return Ok(());
            }
            // The whole model is this: a new thread for each new client.
            let server_for_thread = server.clone();
            let counted = running.start();
            let spawned = std::thread::Builder::new()
                .name(format!("client-{id}"))
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    let _counted = counted;
                    serve_client(client, &server_for_thread, None);
                });
            if spawned.is_err() {
                // Out of threads or memory: this client is told so; the others
                // are served on.
                server.clients().leave(id);
                writer.close(Some(Goodbye::Busy("no thread for this client")));
            }
            spawned.map(drop)
        },
    )?;
    running.wait_all(THREADS_GRACE);
    Ok(())
}

/// How many client threads fit in the address space the process may have
/// (`RLIMIT_AS`: `ulimit -v`, `prlimit --as`). Stacks get at most half of it,
/// so the heap keeps room: past that, a client is told `ERR busy` — where
/// the next stack would have left the next allocation without memory, and
/// a Rust process aborts when an allocation fails. With no such limit (the
/// usual case), only the system's own limits apply.
fn thread_budget() -> usize {
    #[cfg(unix)]
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::AS) {
        if soft != rlimit::INFINITY {
            return usize::try_from(soft / 2).unwrap_or(usize::MAX) / STACK_SIZE;
        }
    }
    usize::MAX
}

/// An accepted and admitted client, ready for a thread to serve it.
pub(super) struct Client {
    id: ClientId,
    writer: Arc<SharedWriter>,
    /// When it was admitted: its silence counts from here, even while it
    /// waits for a thread.
    arrived: Instant,
}

impl Client {
    /// Whether the console has closed this client (it was kicked).
    pub(super) fn is_closing(&self) -> bool {
        self.writer.is_closing()
    }

    /// Whether, still waiting for a thread, it has been silent for `limit`:
    /// it sent nothing since it was admitted.
    pub(super) fn silent_for(&self, limit: Duration) -> bool {
        self.arrived.elapsed() >= limit && !has_input(SockRef::from(self.writer.reader()))
    }

    /// Whether, still waiting for a thread, its client has already gone
    /// (closed or reset without a word): its seat can be freed at once.
    pub(super) fn is_gone(&self) -> bool {
        already_gone(SockRef::from(self.writer.reader()))
    }

    /// Frees the seat of a client that has gone, and closes its socket.
    pub(super) fn forget(&self, server: &Server) {
        server.clients().leave(self.id);
        self.writer.close(None);
    }

    /// Tells it `ERR idle timeout` and closes it, without blocking.
    pub(super) fn time_out(&self) {
        let goodbye = Outbound::Close(Goodbye::IdleTimeout);
        self.writer.send(self.id, goodbye);
    }
}

/// Accepts connections until shutdown. Each is admitted while fewer than
/// `seats` are connected and handed to `serve` (which must not block for
/// long: it starts or queues the work); the rest are turned away with
/// `busy`. At shutdown, every client is told the server is going.
///
/// When every seat is taken, `make_room` is asked first to free the seats of
/// clients that have gone while they waited (a thread pool's queue).
pub(super) fn accept_loop(
    listener: &TcpListener,
    server: &Server,
    seats: usize,
    busy: Goodbye,
    mut make_room: impl FnMut(),
    mut serve: impl FnMut(Client) -> io::Result<()>,
) -> Result<(), Error> {
    accept_blocking(listener, server, |stream, peer| {
        if server.clients().count() >= seats {
            make_room();
        }
        match admit(stream, peer, server, seats, busy)? {
            Some(client) => {
                let id = client.id;
                serve(client).inspect_err(|_| server.clients().leave(id))
            }
            None => Ok(()), // turned away
        }
    })?;
    let goodbye = Outbound::Close(Goodbye::ShuttingDown);
    server.clients().send_all(&goodbye);
    Ok(())
}

/// Admits the client, or turns it away with `busy` if every seat is taken.
pub(super) fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    server: &Server,
    seats: usize,
    busy: Goodbye,
) -> io::Result<Option<Client>> {
    let writer = Arc::new(SharedWriter::new(stream, Arc::downgrade(server.clients()))?);
    let id = match server.admit(peer, writer.clone(), seats, busy) {
        Ok(id) => id,
        Err(refused) => {
            writer.close(Some(refused)); // without blocking the accept loop
            return Ok(None);
        }
    };
    Ok(Some(Client {
        id,
        writer,
        arrived: Instant::now(),
    }))
}

/// Work a serving thread does between its client's reads, at least once
/// every `every`: single-client's one thread watches its door there. A
/// goodbye it returns ends the conversation with that `ERR` line.
pub(super) struct Between<'a> {
    pub(super) every: Duration,
    pub(super) work: &'a mut dyn FnMut() -> Option<Goodbye>,
}

/// One client's life on a thread: block in `read`, feed the session, write
/// the replies, until either side ends it.
pub(super) fn serve_client(client: Client, server: &Server, mut between: Option<Between<'_>>) {
    let Client {
        id,
        writer,
        arrived,
    } = client;
    let _watch = Watch {
        id,
        writer: &writer,
        server,
    };
    let mut stream = writer.reader();
    let peer = stream.peer_addr().ok();
    let mut session = Session::new(id);
    let idle_timeout = server.limits.idle_timeout;
    // The read gives up when the client is next due to be found silent (and
    // on Windows, every so often), so the idle timeout can be checked.
    let mut last_heard = arrived;
    let work_every = between.as_ref().map(|b| b.every);
    let wake_in = |last_heard: Instant| {
        let due = idle_timeout.map(|limit| {
            let left = limit.saturating_sub(last_heard.elapsed());
            left.max(Duration::from_millis(1))
        });
        let every = work_every.or(CHECK_CLOSED_EVERY);
        match (due, every) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    if let Err(e) = stream.set_read_timeout(wake_in(last_heard)) {
        tracing::warn!(?peer, "cannot set a read timeout: {e}");
    }
    let mut buf = vec![0; FIRST_READ];
    let mut out = Vec::new();
    let mut worked = Instant::now();
    loop {
        // Echo's whole lines are their own answer: `buf[..echoed]` goes back
        // as it is, before `out`.
        let mut echoed = 0;
        let goodbye = match &mut between {
            Some(between) if worked.elapsed() >= between.every => {
                worked = Instant::now();
                (between.work)()
            }
            _ => None,
        };
        let flow = if let Some(why) = goodbye {
            out.extend_from_slice(why.line().as_bytes());
            Flow::Close
        } else if session.has_backlog() {
            session.resume(&server.context(), &mut out) // replies piled up; answer the rest first
        } else {
            match stream.read(&mut buf) {
                // Input that arrives after the console closed this client (our
                // own shutdown's end of file included) goes unanswered.
                Ok(_) if writer.is_closing() => Flow::Close,
                Ok(0) => session.on_eof(&server.context(), &mut out),
                Ok(n) => {
                    if idle_timeout.is_some() {
                        last_heard = Instant::now();
                    }
                    let context = server.context();
                    echoed = session.passes_through(&context, &buf[..n]);
                    let flow = session.on_bytes(&context, &buf[echoed..n], &mut out);
                    if n == buf.len() && n < MAX_READ {
                        buf.resize(2 * n, 0);
                    }
                    flow
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if writer.is_closing() {
                        Flow::Close
                    } else if idle_timeout.is_some_and(|limit| last_heard.elapsed() >= limit) {
                        out.extend_from_slice(Goodbye::IdleTimeout.line().as_bytes());
                        Flow::Close
                    } else {
                        let _ = stream.set_read_timeout(wake_in(last_heard));
                        continue;
                    }
                }
                Err(e) => {
                    tracing::debug!(?peer, "read failed: {e}");
                    Flow::Close
                }
            }
        };
        if flow == Flow::Close {
            // Leave before the last reply goes out: a client that has read
            // `bye` may reconnect at once and must find the seat free.
            server.clients().leave(id);
        }
        let replies = [&buf[..echoed], &out[..]];
        let written = (replies.into_iter())
            .filter(|r| !r.is_empty())
            .try_for_each(|r| writer.write(r));
        if let Err(e) = written {
            tracing::debug!(?peer, "write failed: {e}");
            server.clients().leave(id);
            break;
        }
        out.clear();
        if flow == Flow::Close {
            break;
        }
    }
    writer.close(None);
}

/// Watches a client's thread: if it dies serving the client (a panic outside
/// the mode, which the session already contains), the client is told
/// `ERR internal error` and its seat freed, not left hanging.
struct Watch<'a> {
    id: ClientId,
    writer: &'a SharedWriter,
    server: &'a Server,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(client = %self.id, "the thread serving this client died; client closed");
            self.server.clients().leave(self.id);
            self.writer.close(Some(Goodbye::Internal));
        }
    }
}

/// How many client threads are still running, so shutdown can wait for them.
#[derive(Clone, Default)]
pub(super) struct Running(Arc<(Mutex<usize>, Condvar)>);

impl Running {
    pub(super) fn start(&self) -> Counted {
        *self.count() += 1;
        Counted(self.clone())
    }

    fn count(&self) -> MutexGuard<'_, usize> {
        self.0 .0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn wait_all(&self, within: Duration) {
        let count = self.count();
        let _ = self.0 .1.wait_timeout_while(count, within, |n| *n > 0);
    }
}

/// Counts one client thread until dropped (at its very end, panics included).
pub(super) struct Counted(Running);

impl Drop for Counted {
    fn drop(&mut self) {
        *self.0.count() -= 1;
        self.0 .0 .1.notify_all();
    }
}
