//! What every model does at the door: back off when `accept` fails, log
//! those failures without flooding the log, pass over connections whose
//! clients already left, wake a blocking `accept` at shutdown, and end a
//! connection without losing its last line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::error::Error;
use crate::protocol::Goodbye;
use crate::server::Server;

/// After an accept error such as EMFILE (out of descriptors) the pending
/// connection stays queued and `accept` fails again at once: retrying straight
/// away would spin, so accepting pauses this long.
pub(super) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A failure that persists (out of descriptors until clients leave) is logged
/// again at most this often, so stderr does not grow ten lines a second.
const ACCEPT_REPORT_EVERY: Duration = Duration::from_secs(5);

/// Logs failures to take a connection (`accept`, or setting one up) without
/// flooding the log: one line at once, then at most one per
/// [`ACCEPT_REPORT_EVERY`] carrying the count of the failures in between,
/// however often accepting fails and recovers meanwhile.
#[derive(Debug, Default)]
pub(super) struct AcceptFailures {
    last_report: Option<Instant>,
    unreported: u64,
}

impl AcceptFailures {
    pub(super) fn record(&mut self, e: &std::io::Error, now: Instant) {
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
    pub(super) fn recovered(&mut self, now: Instant) {
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

/// A loop's door while taking connections fails: each failure logged
/// sparingly ([`AcceptFailures`]) and accepting paused for
/// [`ACCEPT_BACKOFF`], as the connection stays queued and would fail again
/// at once. A loop waits for [`AcceptPause::until`] and then accepts again
/// itself: no new readiness (or completion) comes for connections already
/// queued.
#[derive(Debug, Default)]
pub(super) struct AcceptPause {
    failures: AcceptFailures,
    until: Option<Instant>,
}

impl AcceptPause {
    /// Accepting failed with `e` (not one [`peer_gave_up`]): logged, paused.
    pub(super) fn failed(&mut self, e: &std::io::Error, now: Instant) {
        self.failures.record(e, now);
        self.pause(now);
    }

    /// Pauses accepting for [`ACCEPT_BACKOFF`] without a failure to log
    /// (the loop could not even ask).
    pub(super) fn pause(&mut self, now: Instant) {
        self.until = Some(now + ACCEPT_BACKOFF);
    }

    /// A connection was taken: failures still uncounted are reported, once due.
    pub(super) fn taken(&mut self, now: Instant) {
        self.failures.recovered(now);
    }

    /// Whether accepting is paused.
    pub(super) fn paused(&self) -> bool {
        self.until.is_some()
    }

    /// When the pause ends, for the loop's wait.
    pub(super) fn until(&self) -> Option<Instant> {
        self.until
    }

    /// Whether the pause has run out at `now`: then accepting resumes.
    pub(super) fn over(&mut self, now: Instant) -> bool {
        let over = self.until.is_some_and(|at| at <= now);
        if over {
            self.until = None;
        }
        over
    }
}

/// An accept error that only means this one client gave up before we took
/// it; the next connection can be accepted at once.
pub(super) fn peer_gave_up(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    )
}

/// A TCP stream as the strategies close it: std's blocking one, mio's, or
/// socket2's view of any other (tokio's).
pub(super) trait Socket: std::io::Read + std::io::Write {
    fn shutdown_write(&self);
}

impl Socket for std::net::TcpStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Socket for &TcpStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Socket for mio::net::TcpStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Socket for &socket2::Socket {
    fn shutdown_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

/// Ends a connection gently, on a non-blocking socket: sends `last` (best
/// effort), ends our side, then swallows what the client already sent.
///
/// Closing a socket with unread input makes the kernel send a reset, which can
/// destroy our last line (`bye`, an `ERR`) before the client reads it.
pub(super) fn close_gently(stream: &mut impl Socket, last: &[u8]) {
    let _ = stream.write_all(last);
    stream.shutdown_write();
    let mut sink = [0; 1024];
    for _ in 0..16 {
        if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
            break;
        }
    }
}

/// A blocking `accept` cannot be interrupted portably; connecting to
/// ourselves wakes it, and the loop then sees the flag.
fn wake_accept_on_shutdown(listener: &TcpListener, server: &Server) -> Result<(), Error> {
    let mut wake = listener
        .local_addr()
        .map_err(Error::io("reading the listener's address"))?;
    // A wildcard address is not connectable everywhere: use loopback.
    if wake.ip().is_unspecified() {
        let loopback: IpAddr = match wake {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        };
        wake.set_ip(loopback);
    }
    server.shutdown.on_trigger(move || {
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
    });
    Ok(())
}

/// At shutdown, on a blocking listener: tells every connection still queued
/// (our own wake-up among them, and any client just too late) that the
/// server is going, instead of leaving the kernel to reset them.
fn tell_the_queue(listener: &TcpListener) {
    let goodbye = Goodbye::ShuttingDown.line();
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    // Bounded: a backlog holds at most `BACKLOG` connections.
    for _ in 0..crate::net::BACKLOG {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_nonblocking(true);
        close_gently(&mut &stream, goodbye.as_bytes());
    }
}

/// Whether the client of a connection just accepted has already gone: it
/// closed (or reset) before we took the connection, having sent nothing.
/// A connect-and-close storm fills the backlog with such connections;
/// seated, each would hold a seat of `--max-clients` until its end was read,
/// and real clients queued behind them would be told `ERR busy`.
pub(super) fn already_gone(socket: SockRef<'_>) -> bool {
    peek(socket) == Peeked::Gone
}

/// Whether input from the client waits on this socket, unread.
pub(super) fn has_input(socket: SockRef<'_>) -> bool {
    peek(socket) == Peeked::Input
}

/// What one `recv(MSG_PEEK | MSG_DONTWAIT)` saw on a socket: it neither
/// waits nor consumes. (Not asked on Windows, whose `recv` has no such
/// flag: there the answer is always `Nothing`.)
#[derive(Debug, PartialEq, Eq)]
enum Peeked {
    /// Bytes wait, unread.
    Input,
    /// The peer has closed or reset the connection, with nothing unread.
    Gone,
    /// Nothing yet.
    Nothing,
}

fn peek(socket: SockRef<'_>) -> Peeked {
    #[cfg(unix)]
    {
        use std::io::ErrorKind::{Interrupted, WouldBlock};
        let mut byte = [std::mem::MaybeUninit::uninit()];
        match socket.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
            Ok(0) => Peeked::Gone,
            Ok(_) => Peeked::Input,
            Err(e) if matches!(e.kind(), WouldBlock | Interrupted) => Peeked::Nothing,
            Err(_) => Peeked::Gone,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = socket;
        Peeked::Nothing
    }
}

/// The blocking door, shared by the blocking models' accept loop and the
/// multi-reactor's acceptor: blocks in `accept` until shutdown and hands each
/// connection to `take`. A failure to accept, or to take a connection (out
/// of descriptors or threads), is logged sparingly and pauses accepting, as
/// the next connection would meet the same shortage. At shutdown, whoever is
/// still queued is told the server is going.
pub(super) fn accept_blocking(
    listener: &TcpListener,
    server: &Server,
    mut take: impl FnMut(TcpStream, SocketAddr) -> std::io::Result<()>,
) -> Result<(), Error> {
    wake_accept_on_shutdown(listener, server)?;
    let mut failures = AcceptFailures::default();
    while !server.shutdown.is_triggered() {
        let taken = match listener.accept() {
            Ok((stream, _)) if server.shutdown.is_triggered() => {
                // Our own wake-up, or a client just too late: told, not dropped.
                let _ = stream.set_nonblocking(true);
                close_gently(&mut &stream, Goodbye::ShuttingDown.line().as_bytes());
                break;
            }
            Ok((stream, _)) if already_gone(SockRef::from(&stream)) => continue,
            Ok((stream, peer)) => take(stream, peer),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted || peer_gave_up(&e) => continue,
            Err(e) => Err(e),
        };
        match taken {
            Ok(()) => failures.recovered(Instant::now()),
            Err(e) => {
                // EMFILE leaves the connection queued: retrying at once would spin.
                failures.record(&e, Instant::now());
                std::thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
    // However the stop raced with an accept (it may have landed while
    // `take` ran), whoever is still queued is told.
    tell_the_queue(listener);
    Ok(())
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

    /// A failed accept pauses accepting for the backoff, and the pause ends
    /// once, when it has run out.
    #[test]
    fn a_failure_pauses_accepting_for_the_backoff() {
        let now = Instant::now();
        let mut pause = AcceptPause::default();
        assert!(!pause.paused());
        let emfile = std::io::Error::from_raw_os_error(24);
        pause.failed(&emfile, now);
        assert!(pause.paused());
        assert_eq!(pause.until(), Some(now + ACCEPT_BACKOFF));
        assert!(!pause.over(now));
        assert!(pause.over(now + ACCEPT_BACKOFF));
        assert!(!pause.paused() && !pause.over(now + ACCEPT_BACKOFF));
    }
}
