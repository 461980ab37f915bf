//! A client blocked in `read` must still be writable from the console.
//!
//! In a blocking model each client's thread spends its life in `read`. The
//! operator, meanwhile, may send that client a line (`@2 hello`), kick it
//! (`/kick 2`) or shut the server down — from the console's thread, which
//! must never wait on a client. [`SharedWriter`] holds such a connection for
//! the client's thread and everyone else; the thread reads from it, and the
//! writing is shared:
//!
//! - whoever writes holds the writer, a lock; the client's own thread may
//!   block there while its client is slow to read (a write timeout ends that);
//! - a line from anyone else is first put in the connection's *waiting*
//!   queue, then the writer is *tried*. Whoever holds the writer sends what
//!   waits before letting go, and looks once more after letting go: so a
//!   line is never dropped because the client's thread happened to be
//!   writing, and lines go out in the order they were sent;
//! - the queue is held to the one output bound: a client that lets it pass
//!   the bound is closed, and that is logged;
//! - closing needs no lock at all: shutting the socket down also fails a
//!   write blocked on it, and ends the blocked `read`.
//!
//! All of that goes through one descriptor (std's `Read` and `Write` work on
//! a shared `&TcpStream`): a server that cloned the socket for each role
//! would run out of descriptors at a third of its `--max-clients`.
//!
//! An event loop needs none of this: it owns every socket on one thread, and
//! the console just queues a message and wakes it.

use std::io::{self, ErrorKind, Write};
use std::net::{Shutdown as Direction, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError, Weak};
use std::time::Duration;

use crate::clients::{Clients, Outbox};
use crate::protocol::{ClientId, Goodbye, Outbound};
use crate::strategy::accept::close_gently;
use crate::strategy::past_output_bound;

/// A write that makes no progress for this long fails, and the client is
/// dropped: a client's thread does not wait forever on a client that never
/// reads.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the console waits for one operator line to be taken.
const CONSOLE_WRITE_TIMEOUT: Duration = Duration::from_millis(200);

/// A blocking connection whose writing is shared by its client's thread and
/// the console.
pub(super) struct SharedWriter {
    stream: TcpStream,
    /// Held while writing; false once the connection is closed for writing.
    writer: Mutex<bool>,
    /// To free the seat of a client the console closes, at once (a queued
    /// client in a thread pool would otherwise hold it until dequeued).
    clients: Weak<Clients>,
    /// What others left for whoever holds the writer.
    waiting: Mutex<Waiting>,
    /// Set as soon as anyone starts closing; input read afterwards is dropped.
    closing: AtomicBool,
}

/// Left for the writer's holder to send.
#[derive(Default)]
struct Waiting {
    /// Lines from outside the session (the operator, a relay), in order.
    lines: Vec<u8>,
    /// A goodbye asked for while someone held the writer: sent on the way out.
    goodbye: Option<Goodbye>,
}

impl SharedWriter {
    pub(super) fn new(stream: TcpStream, clients: Weak<Clients>) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok(SharedWriter {
            stream,
            writer: Mutex::new(true),
            clients,
            waiting: Mutex::default(),
            closing: AtomicBool::new(false),
        })
    }

    /// The connection, for the client's thread to read from (and to set its
    /// read timeout).
    pub(super) fn reader(&self) -> &TcpStream {
        &self.stream
    }

    /// Whether someone has started to close this client.
    pub(super) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// The client's own thread writes: blocks until the client takes the
    /// bytes (or the write timeout passes), then sends the lines that
    /// waited meanwhile.
    pub(super) fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let open = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if !*open {
            return Err(ErrorKind::NotConnected.into());
        }
        (&self.stream).write_all(bytes)?;
        self.send_waiting(open)
    }

    /// Sends what waits, holding the writer, until nothing does; lets go;
    /// then looks once more, since a line left just before letting go finds
    /// nobody else to send it.
    fn send_waiting<'a>(&'a self, mut open: MutexGuard<'a, bool>) -> io::Result<()> {
        loop {
            loop {
                let lines = std::mem::take(&mut self.waiting().lines);
                if lines.is_empty() {
                    break;
                }
                if *open {
                    (&self.stream).write_all(&lines)?;
                }
            }
            drop(open);
            if self.waiting().lines.is_empty() {
                return Ok(());
            }
            open = match self.try_writer() {
                Some(open) => open,
                None => return Ok(()), // its holder will look after letting go
            };
        }
    }

    /// Closes without ever blocking. If no write is under way: sends what
    /// waits and the goodbye, best effort, and shuts the socket down both
    /// ways, which also ends the client thread's blocking `read`. If a write
    /// is under way, its writer is left the goodbye to send, and only our
    /// reading side is shut, which ends its next `read`; a write that never
    /// completes meets its timeout.
    pub(super) fn close(&self, why: Option<Goodbye>) {
        self.closing.store(true, Ordering::SeqCst);
        let Some(mut writer) = self.try_writer() else {
            if why.is_some() {
                self.waiting().goodbye = why;
            }
            let _ = self.stream.shutdown(Direction::Read);
            // The writer may have been released just before the goodbye was
            // left: then nobody would send it, so try once more ourselves.
            if self.try_writer().is_some() {
                self.close(None);
            }
            return;
        };
        if std::mem::replace(&mut *writer, false) {
            let last = {
                let mut waiting = self.waiting();
                let why = why.or_else(|| waiting.goodbye.take());
                let mut last = std::mem::take(&mut waiting.lines);
                last.extend_from_slice(why.map(Goodbye::line).unwrap_or_default().as_bytes());
                last
            };
            let _ = self.stream.set_nonblocking(true);
            close_gently(&mut &self.stream, &last);
        }
        let _ = self.stream.shutdown(Direction::Both);
    }

    /// The writer, unless another thread is writing right now.
    fn try_writer(&self) -> Option<MutexGuard<'_, bool>> {
        match self.writer.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Frees the client's seat, then closes (see [`SharedWriter::close`]).
    fn leave_and_close(&self, to: ClientId, why: Option<Goodbye>) {
        // The seat is free before the goodbye is out: a client who reads it
        // and reconnects at once must find it free.
        if let Some(clients) = self.clients.upgrade() {
            clients.leave(to);
        }
        self.close(why);
    }
}

impl Outbox for SharedWriter {
    fn send(&self, to: ClientId, msg: Outbound) {
        let text = match msg {
            Outbound::Line(text) => text,
            Outbound::Close(why) => return self.leave_and_close(to, Some(why)),
        };
        {
            let mut waiting = self.waiting();
            if self.is_closing() {
                return; // the client is on its way out: no more lines for it
            }
            if past_output_bound(to, waiting.lines.len(), text.len() + 1) {
                waiting.lines = Vec::new();
                drop(waiting);
                return self.leave_and_close(to, None);
            }
            waiting.lines.extend_from_slice(text.as_bytes());
            waiting.lines.push(b'\n');
        }
        // Nobody is writing: send it ourselves. A short line fits the
        // socket's buffer unless the client has stopped reading, and the
        // console must not wait on such a client, so while we hold the
        // writer the timeout is short; a client that cannot take it is closed.
        let Some(open) = self.try_writer() else {
            return; // its holder sends it before letting go
        };
        let _ = self.stream.set_write_timeout(Some(CONSOLE_WRITE_TIMEOUT));
        let sent = self.send_waiting(open);
        let _ = self.stream.set_write_timeout(Some(WRITE_TIMEOUT));
        if let Err(e) = sent {
            tracing::warn!(client = %to, "client is not taking its lines ({e}); closed");
            self.leave_and_close(to, None);
        }
    }
}
