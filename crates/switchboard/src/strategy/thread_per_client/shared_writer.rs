//! A client blocked in `read` must still be writable from the console.
//!
//! In a blocking model each client's thread spends its life in `read`. The
//! operator, meanwhile, may send that client a line (`@2 hello`), kick it
//! (`/kick 2`) or shut the server down — from the console's thread, which
//! must never wait on a client. [`SharedWriter`] holds such a connection for
//! the client's thread and everyone else; the thread reads from it, and the
//! writing is shared:
//!
//! - the client's own thread writes its replies under a lock, and may block
//!   there while its client is slow to read (a write timeout ends that);
//! - anyone else only *tries* the lock, with a short timeout once they hold
//!   it, and closes without the lock at all: shutting the socket down also
//!   fails a write blocked on it, and ends the blocked `read`.
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

use crate::clients::{Clients, Outbound, Outbox};
use crate::session::{ClientId, Goodbye};
use crate::strategy::accept::close_gently;

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
    /// A goodbye asked for while the client's thread held the writer: that
    /// thread sends it on its way out.
    goodbye: Mutex<Option<Goodbye>>,
    /// Set as soon as anyone starts closing; input read afterwards is dropped.
    closing: AtomicBool,
}

impl SharedWriter {
    pub(super) fn new(stream: TcpStream, clients: Weak<Clients>) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok(SharedWriter {
            stream,
            writer: Mutex::new(true),
            clients,
            goodbye: Mutex::new(None),
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
    /// bytes (or the write timeout passes).
    pub(super) fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let open = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        match *open {
            true => (&self.stream).write_all(bytes),
            false => Err(ErrorKind::NotConnected.into()),
        }
    }

    /// Closes without ever blocking. If no write is under way: sends the
    /// goodbye and shuts the socket down both ways, which also ends the
    /// client thread's blocking `read`. If that thread is writing, it is left
    /// the goodbye to send, and only our reading side is shut, which ends its
    /// next `read`; a write that never completes meets its timeout.
    pub(super) fn close(&self, why: Option<Goodbye>) {
        self.closing.store(true, Ordering::SeqCst);
        let Some(mut writer) = self.try_writer() else {
            if why.is_some() {
                *self.pending_goodbye() = why;
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
            let why = why.or_else(|| self.pending_goodbye().take());
            let _ = self.stream.set_nonblocking(true);
            let last = why.map(Goodbye::line).unwrap_or_default();
            close_gently(&mut &self.stream, last.as_bytes());
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

    fn pending_goodbye(&self) -> MutexGuard<'_, Option<Goodbye>> {
        self.goodbye.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Outbox for SharedWriter {
    fn send(&self, to: ClientId, msg: Outbound) {
        match msg {
            Outbound::Line(mut text) => {
                let Some(writer) = self.try_writer() else {
                    return tracing::warn!(client = %to, "client is not taking its replies; line dropped");
                };
                text.push('\n');
                // A short line fits the socket's buffer unless the client has
                // stopped reading. The console must not wait on such a client,
                // so while we hold the writer (nobody else writes) the
                // timeout is short; a client that cannot take one line is closed.
                let written = (*writer).then(|| {
                    let _ = self.stream.set_write_timeout(Some(CONSOLE_WRITE_TIMEOUT));
                    let written = (&self.stream).write_all(text.as_bytes());
                    let _ = self.stream.set_write_timeout(Some(WRITE_TIMEOUT));
                    written
                });
                drop(writer);
                if matches!(written, Some(Err(_))) {
                    self.close(None);
                }
            }
            Outbound::Close(why) => {
                // The seat is free before the goodbye is out: a client who
                // reads it and reconnects at once must find it free.
                if let Some(clients) = self.clients.upgrade() {
                    clients.leave(to);
                }
                self.close(Some(why));
            }
        }
    }
}
