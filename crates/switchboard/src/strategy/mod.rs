//! How connections are served: the [`ConnectionStrategy`] trait and its four
//! implementations, one file each.
//!
//! A strategy only moves bytes between sockets and a [`Session`]; what the
//! bytes mean is decided by the session and the server's [`Mode`].
//!
//! [`Session`]: crate::session::Session

mod blocking;
mod echo;
mod event_loop;
mod single_client;
mod thread_per_client;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::console::Console;
use crate::error::Error;
use crate::mode::Mode;
use crate::shutdown::Shutdown;

pub use echo::EchoServer;
pub use event_loop::EventLoop;
pub use single_client::SingleClient;
pub use thread_per_client::ThreadPerClient;

/// A concurrency model: serves every connection arriving on a listener until
/// the server's [`Shutdown`] fires, then tells each client
/// `ERR server shutting down` and returns.
pub trait ConnectionStrategy {
    /// A short name for logs and tables (`thread-per-client`).
    fn name(&self) -> &'static str;

    /// Serves `listener` until `server.shutdown` fires.
    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error>;
}

/// Everything a strategy needs besides its listener; cheap to clone.
#[derive(Clone)]
pub struct Server {
    /// What each line means.
    pub mode: Arc<dyn Mode>,
    /// The limits every connection is held to.
    pub limits: Limits,
    /// The client registry and the operator's commands.
    pub console: Arc<Console>,
    /// Fires when the server must stop.
    pub shutdown: Shutdown,
}

/// Per-server limits (SPEC section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; one more gets `ERR busy` and is closed.
    pub max_clients: usize,
    /// A client silent this long gets `ERR idle timeout` and is closed.
    pub idle_timeout: Option<Duration>,
    /// Longest line accepted, in bytes, without its `\n` or `\r\n`.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 1024,
            idle_timeout: None,
            max_line: 65536,
        }
    }
}

impl Server {
    /// A server answering through `mode`, with default limits, a fresh
    /// console and a shutdown signal that has not fired.
    pub fn new(mode: Arc<dyn Mode>) -> Self {
        Server {
            mode,
            limits: Limits::default(),
            console: Console::new(),
            shutdown: Shutdown::new(),
        }
    }
}

/// After an accept error such as EMFILE (out of descriptors) the pending
/// connection stays queued and `accept` fails again at once: retrying straight
/// away would spin, so accepting pauses this long.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A failure that persists (out of descriptors until clients leave) is logged
/// again at most this often, so stderr does not grow ten lines a second.
const ACCEPT_REPORT_EVERY: Duration = Duration::from_secs(5);

/// Logs failures to take a connection (`accept`, or setting one up) without
/// flooding the log: one line at once, then at most one per
/// [`ACCEPT_REPORT_EVERY`] carrying the count of the failures in between,
/// however often accepting fails and recovers meanwhile.
#[derive(Debug, Default)]
struct AcceptFailures {
    last_report: Option<Instant>,
    unreported: u64,
}

impl AcceptFailures {
    fn record(&mut self, e: &std::io::Error, now: Instant) {
        if !self.due(now) {
            self.unreported += 1;
            return;
        }
        let more = match self.unreported {
            0 => String::new(),
            n => format!(" ({n} more since the last report)"),
        };
        tracing::warn!("cannot take a connection: {e}{more}");
        self.reported(now);
    }

    /// A connection was taken: reports failures still uncounted, once due.
    fn recovered(&mut self, now: Instant) {
        if self.unreported > 0 && self.due(now) {
            tracing::info!(
                "taking connections again, after {} more failures",
                self.unreported
            );
            self.reported(now);
        }
    }

    fn due(&self, now: Instant) -> bool {
        self.last_report
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_REPORT_EVERY)
    }

    fn reported(&mut self, now: Instant) {
        self.last_report = Some(now);
        self.unreported = 0;
    }
}

/// An accept error that only means this one client gave up before we took
/// it; the next connection can be accepted at once.
fn peer_gave_up(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    )
}

/// A TCP stream as the strategies close it: std's blocking one or mio's.
trait Socket: std::io::Read + std::io::Write {
    fn shutdown_write(&self);
}

impl Socket for std::net::TcpStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Socket for mio::net::TcpStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

/// Ends a connection gently, on a non-blocking socket: sends `last` (best
/// effort), ends our side, then swallows what the client already sent.
///
/// Closing a socket with unread input makes the kernel send a reset, which can
/// destroy our last line (`bye`, an `ERR`) before the client reads it.
fn close_gently(stream: &mut impl Socket, last: &[u8]) {
    let _ = stream.write_all(last);
    stream.shutdown_write();
    let mut sink = [0; 1024];
    for _ in 0..16 {
        if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One failure is reported at once; the rest within the next 5 s only
    /// counted, successes in between included, and reported with the next line.
    #[test]
    fn accept_failures_are_reported_at_most_every_five_seconds() {
        let emfile = std::io::Error::from_raw_os_error(24);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut f = AcceptFailures::default();
        f.record(&emfile, at(0));
        assert_eq!((f.last_report, f.unreported), (Some(at(0)), 0));
        f.record(&emfile, at(1));
        f.recovered(at(2)); // too soon to report the one counted
        f.record(&emfile, at(3));
        assert_eq!((f.last_report, f.unreported), (Some(at(0)), 2));
        f.record(&emfile, at(5)); // due: reported with the count
        assert_eq!((f.last_report, f.unreported), (Some(at(5)), 0));
        f.record(&emfile, at(6));
        f.recovered(at(11)); // due: the last one is reported on recovery
        assert_eq!((f.last_report, f.unreported), (Some(at(11)), 0));
        f.recovered(at(20)); // nothing left to report
        assert_eq!(f.last_report, Some(at(11)));
    }
}
