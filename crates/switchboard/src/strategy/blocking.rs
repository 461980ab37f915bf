//! What the two blocking strategies share: the accept loop, and one client's
//! session driven by blocking reads on a thread of its own.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Direction, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use super::{close_gently, peer_gave_up, AcceptFailures, Server, ACCEPT_BACKOFF};
use crate::console::{Outbound, Outbox};
use crate::error::Error;
use crate::session::{ClientId, Flow, Goodbye, Session};

/// A write that makes no progress for this long fails, and the client is
/// dropped: a session thread does not wait forever on a client that never
/// reads.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the console thread waits for one operator line to be taken.
const CONSOLE_WRITE_TIMEOUT: Duration = Duration::from_millis(200);

/// Windows may not end a blocking `read` when another thread shuts the socket
/// down (on `/kick` or at shutdown), so there the session wakes this often to
/// check; elsewhere the shutdown itself ends the `read`.
const CHECK_CLOSED_EVERY: Option<Duration> = if cfg!(windows) {
    Some(Duration::from_secs(1))
} else {
    None
};

/// How long a stopping server waits for its session threads to send their
/// goodbyes and finish (the process deadline in `run` comes later).
const SESSIONS_GRACE: Duration = Duration::from_millis(500);

/// Accepts connections and hands each to `on_client` until shutdown, then
/// tells every registered client the server is going and waits (briefly) for
/// the session threads to finish saying so.
pub(super) fn accept_loop(
    listener: &TcpListener,
    server: &Server,
    mut on_client: impl FnMut(TcpStream, SocketAddr, &Sessions) -> io::Result<()>,
) -> Result<(), Error> {
    let sessions = Sessions::default();
    // A blocking accept() cannot be interrupted portably; connecting to
    // ourselves wakes it, and the loop then sees the flag.
    let wake = wake_address(
        listener
            .local_addr()
            .map_err(Error::io("listener address"))?,
    );
    server.shutdown.on_trigger(move || {
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
    });
    let mut failures = AcceptFailures::default();
    while !server.shutdown.is_triggered() {
        match listener.accept() {
            Ok(_) if server.shutdown.is_triggered() => break,
            // Out of descriptors, setting the client up fails as accept does.
            Ok((stream, peer)) => match on_client(stream, peer, &sessions) {
                Ok(()) => failures.recovered(Instant::now()),
                Err(e) => failures.record(&e, Instant::now()),
            },
            Err(e) if e.kind() == ErrorKind::Interrupted || peer_gave_up(&e) => {}
            Err(e) => {
                failures.record(&e, Instant::now());
                std::thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
    server
        .console
        .send_all(&Outbound::Close(Goodbye::ShuttingDown));
    sessions.wait_all(SESSIONS_GRACE);
    Ok(())
}

/// How many session threads are still running, so shutdown can wait for them.
#[derive(Clone, Default)]
pub(super) struct Sessions(Arc<(Mutex<usize>, Condvar)>);

impl Sessions {
    fn start(&self) -> SessionGuard {
        *self.count() += 1;
        SessionGuard(self.clone())
    }

    fn count(&self) -> MutexGuard<'_, usize> {
        self.0 .0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_all(&self, within: Duration) {
        let count = self.count();
        let _ = self.0 .1.wait_timeout_while(count, within, |n| *n > 0);
    }
}

/// Counts one session thread until dropped (at its very end, panics included).
struct SessionGuard(Sessions);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        *self.0.count() -= 1;
        self.0 .0 .1.notify_all();
    }
}

/// Registers the client, then runs its session on a new thread (with the
/// given stack size, if any). On failure the connection is dropped.
pub(super) fn spawn_session(
    stream: TcpStream,
    peer: SocketAddr,
    server: &Server,
    sessions: &Sessions,
    stack_size: Option<usize>,
) -> io::Result<()> {
    let link = Arc::new(Link::new(&stream)?);
    let id = server.console.join(peer, link.clone());
    let server_for_thread = server.clone();
    let mut builder = std::thread::Builder::new().name(format!("client-{id}"));
    if let Some(size) = stack_size {
        builder = builder.stack_size(size);
    }
    let running = sessions.start();
    let spawned = builder.spawn(move || {
        let _running = running;
        run_session(stream, id, &link, &server_for_thread);
    });
    if spawned.is_err() {
        tracing::debug!(%peer, "no thread for this client");
        server.console.leave(id);
    }
    spawned.map(drop)
}

/// Turns a client away with an `ERR` line, without blocking the caller.
pub(super) fn refuse(mut stream: TcpStream, why: Goodbye) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    close_gently(&mut stream, why.line().as_bytes());
    Ok(())
}

/// One client's life on its own thread: block in `read`, feed the session,
/// write the replies, until either side ends it.
fn run_session(mut stream: TcpStream, id: ClientId, link: &Link, server: &Server) {
    let peer = stream.peer_addr().ok();
    let mut session = Session::new(id, server.mode.clone(), server.limits.max_line);
    let idle_timeout = server.limits.idle_timeout;
    let wake_every = match (idle_timeout, CHECK_CLOSED_EVERY) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Err(e) = stream.set_read_timeout(wake_every) {
        tracing::warn!(?peer, "cannot set a read timeout: {e}");
    }
    let mut buf = [0; 4096];
    let mut out = Vec::new();
    let mut last_heard = Instant::now();
    loop {
        let flow = if session.has_backlog() {
            session.resume(&mut out) // replies piled up; answer the rest first
        } else {
            match stream.read(&mut buf) {
                // Input that arrives after the console closed this client (our
                // own shutdown's end of file included) goes unanswered.
                Ok(_) if link.is_closing() => Flow::Close,
                Ok(0) => session.on_eof(&mut out),
                Ok(n) => {
                    last_heard = Instant::now();
                    session.on_bytes(&buf[..n], &mut out)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if link.is_closing() {
                        Flow::Close
                    } else if idle_timeout.is_some_and(|limit| last_heard.elapsed() >= limit) {
                        out.extend_from_slice(Goodbye::IdleTimeout.line().as_bytes());
                        Flow::Close
                    } else {
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
            server.console.leave(id);
        }
        if !out.is_empty() {
            if let Err(e) = link.write(&out) {
                tracing::debug!(?peer, "write failed: {e}");
                server.console.leave(id);
                break;
            }
            out.clear();
        }
        if flow == Flow::Close {
            break;
        }
    }
    link.close(None);
}

/// The writing half of a blocking connection, shared by its session thread
/// and the console.
///
/// The session thread writes under the lock and may block there while its
/// client is slow to read. The console thread must never wait on a client,
/// so it only *tries* the lock, and closes through a second handle that needs
/// no lock at all: shutting the socket down also fails a write blocked on it.
struct Link {
    writer: Mutex<Option<TcpStream>>,
    closer: TcpStream,
    /// A goodbye asked for while the session thread held the writer: the
    /// session thread sends it on its way out.
    goodbye: Mutex<Option<Goodbye>>,
    /// Set as soon as anyone starts closing; input read afterwards is dropped.
    closing: AtomicBool,
}

impl Link {
    fn new(stream: &TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok(Link {
            writer: Mutex::new(Some(stream.try_clone()?)),
            closer: stream.try_clone()?,
            goodbye: Mutex::new(None),
            closing: AtomicBool::new(false),
        })
    }

    /// The writer, unless another thread is writing right now.
    fn try_writer(&self) -> Option<MutexGuard<'_, Option<TcpStream>>> {
        match self.writer.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Whether someone has started to close this client.
    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    fn pending_goodbye(&self) -> MutexGuard<'_, Option<Goodbye>> {
        self.goodbye.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session thread's write: blocks until the client takes the bytes.
    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        match writer.as_mut() {
            Some(stream) => stream.write_all(bytes),
            None => Err(ErrorKind::NotConnected.into()),
        }
    }

    /// Closes without ever blocking. If no write is under way: sends the
    /// goodbye and shuts the socket down both ways, which also ends the session
    /// thread's blocking `read`. If the session thread is writing, it is left
    /// the goodbye to send, and only our reading side is shut, which ends its
    /// next `read`; a write that never completes meets its timeout.
    fn close(&self, why: Option<Goodbye>) {
        self.closing.store(true, Ordering::SeqCst);
        let Some(mut writer) = self.try_writer() else {
            if why.is_some() {
                *self.pending_goodbye() = why;
            }
            let _ = self.closer.shutdown(Direction::Read);
            // The writer may have been released just before the goodbye was
            // left: then nobody would send it, so try once more ourselves.
            if self.try_writer().is_some() {
                self.close(None);
            }
            return;
        };
        if let Some(mut stream) = writer.take() {
            let why = why.or_else(|| self.pending_goodbye().take());
            let _ = stream.set_nonblocking(true);
            let last = why.map(Goodbye::line).unwrap_or_default();
            close_gently(&mut stream, last.as_bytes());
        }
        let _ = self.closer.shutdown(Direction::Both);
    }
}

impl Outbox for Link {
    fn send(&self, to: ClientId, msg: Outbound) {
        match msg {
            Outbound::Line(mut text) => {
                let Some(mut writer) = self.try_writer() else {
                    return tracing::warn!(client = %to, "client is not taking its replies; line dropped");
                };
                text.push('\n');
                // A short line fits the socket's buffer unless the client has
                // stopped reading. The console must not wait on such a client,
                // so while we hold the writer (nobody else writes) the
                // timeout is short; a client that cannot take one line is closed.
                let written = writer.as_mut().map(|stream| {
                    let _ = stream.set_write_timeout(Some(CONSOLE_WRITE_TIMEOUT));
                    let written = stream.write_all(text.as_bytes());
                    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
                    written
                });
                drop(writer);
                if matches!(written, Some(Err(_))) {
                    self.close(None);
                }
            }
            Outbound::Close(why) => self.close(Some(why)),
        }
    }
}

/// Where to connect to wake our own `accept`: a wildcard address is not
/// connectable everywhere, so use loopback instead.
fn wake_address(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let loopback: std::net::IpAddr = match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        };
        addr.set_ip(loopback);
    }
    addr
}
