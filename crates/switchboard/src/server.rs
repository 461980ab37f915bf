//! What a model serves: a [`Server`] — its mode, its limits, its clients and
//! its stop signal — and [`serve`], which hands a listener and a server to a
//! model.
//!
//! The library leaves the process alone: it installs no signal handler,
//! never exits, and reads no stdin. The caller decides what stops the server
//! (Ctrl-C, a test, another thread) by triggering [`Server::shutdown`], and
//! where operator commands come from by feeding [`Server::console`].
//!
//! ```no_run
//! use std::net::TcpListener;
//! use switchboard::{mode::Reverse, serve, Server, ThreadPerClient};
//!
//! let listener = TcpListener::bind("127.0.0.1:5000")?;
//! let server = Server::new(Reverse);
//! let stop = server.shutdown.clone(); // trigger it from anywhere to stop
//! serve(&ThreadPerClient, listener, server)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::access::Access;
use crate::clients::{Clients, Outbox};
use crate::console::{Console, Screen};
use crate::error::Error;
use crate::mode::Mode;
use crate::protocol::{ClientId, Goodbye, Limits};
use crate::session::Context;
use crate::shutdown::Shutdown;
use crate::strategy::ConnectionStrategy;

/// Everything a model needs besides its listener; cheap to clone, and every
/// clone is the same server (one registry of clients, one stop signal).
#[derive(Clone)]
pub struct Server {
    /// What each line means.
    pub mode: Arc<dyn Mode>,
    /// The limits every connection is held to.
    pub limits: Limits,
    /// Threads for the models that have workers (`--workers`): at least 1.
    pub workers: usize,
    /// Who may connect (`--allow`, `--deny`).
    pub access: Access,
    /// Fires when the server must stop; clone it to stop the server from
    /// elsewhere.
    pub shutdown: Shutdown,
    /// The operator's screen: the console's answers and chat's lines.
    /// Written directly unless the caller hands in one with a thread of its
    /// own ([`Screen::start`]), as switchboard's binaries do.
    pub screen: Screen,
    /// Private, so that every part of one server — its model, its mode, its
    /// console — sees the same clients.
    clients: Arc<Clients>,
    /// Refusals are logged like accept failures: a storm of them must not
    /// become a storm of log lines.
    refusals: Arc<Mutex<Refusals>>,
}

impl Server {
    /// A server answering through `mode`, with default limits, no clients
    /// yet and a stop signal that has not fired.
    pub fn new(mode: impl Mode + 'static) -> Self {
        Server::with_mode(Arc::new(mode))
    }

    /// As [`Server::new`], for a mode already shared (as [`MODES`] builds
    /// them).
    ///
    /// [`MODES`]: crate::mode::MODES
    pub fn with_mode(mode: Arc<dyn Mode>) -> Self {
        Server {
            mode,
            limits: Limits::default(),
            workers: default_workers(),
            access: Access::default(),
            shutdown: Shutdown::new(),
            screen: Screen::direct(),
            clients: Arc::new(Clients::new()),
            refusals: Arc::default(),
        }
    }

    /// Admits a new client reachable through `outbox`: the one door of every
    /// model. A peer `--allow`/`--deny` keeps out gets `Err(Forbidden)` and
    /// takes no seat; one that finds all `seats` taken gets `Err(busy)`.
    /// Either is logged, at most once per 5 s with a count of the rest.
    pub fn admit(
        &self,
        peer: SocketAddr,
        outbox: Arc<dyn Outbox>,
        seats: usize,
        busy: Goodbye,
    ) -> Result<ClientId, Goodbye> {
        if self.access.permits(peer.ip()) {
            if let Ok(id) = self.clients.admit(peer, outbox, seats) {
                let mut refusals = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
                refusals.admitted(Instant::now());
                return Ok(id);
            }
        }
        Err(self.turn_away(peer, busy))
    }

    /// Why `peer` is turned away without a seat: `Forbidden` if the access
    /// lists keep it out, else `busy`; logged, at most once per 5 s with a
    /// count of the rest. For a model that knows there is no seat before it
    /// asks (single-client, mid-conversation).
    pub(crate) fn turn_away(&self, peer: SocketAddr, busy: Goodbye) -> Goodbye {
        let refused = match self.access.permits(peer.ip()) {
            true => busy,
            false => Goodbye::Forbidden,
        };
        let mut refusals = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        refusals.log(peer, refused, Instant::now());
        refused
    }

    /// The connected clients: send to them, count them, hear them come and go.
    pub fn clients(&self) -> &Arc<Clients> {
        &self.clients
    }

    /// The operator's commands (`@ID text`, `/list`, `/quit`, ...) over this
    /// server's clients; feed it lines from wherever the operator types.
    pub fn console(&self) -> Console {
        Console::new(
            Arc::clone(&self.clients),
            self.shutdown.clone(),
            self.screen.clone(),
            Arc::clone(&self.mode),
        )
    }

    /// What a session of this server needs at each call: the mode, the
    /// line limit, the operator's screen.
    pub fn context(&self) -> Context<'_> {
        Context::new(&*self.mode, &self.limits, &self.screen)
    }
}

/// Refusals seen since the last one logged.
#[derive(Debug, Default)]
struct Refusals {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(5);

    fn log(&mut self, peer: SocketAddr, why: Goodbye, now: Instant) {
        if self
            .last_logged
            .is_some_and(|at| now.duration_since(at) < Self::EVERY)
        {
            self.unlogged += 1;
            return;
        }
        let more = match std::mem::take(&mut self.unlogged) {
            0 => String::new(),
            n => format!(" ({n} more refused since the last report)"),
        };
        // Turning a client away for want of a seat is the model at work;
        // one the access lists keep out is worth a warning.
        match why {
            Goodbye::Forbidden => tracing::warn!(%peer, "{why}: turned away{more}"),
            _ => tracing::info!(%peer, "{why}: turned away{more}"),
        }
        self.last_logged = Some(now);
    }

    /// A client was let in: refusals counted since the last report are
    /// reported now, once due, so a burst's tally is not left unsaid.
    fn admitted(&mut self, now: Instant) {
        let due = self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= Self::EVERY);
        if self.unlogged > 0 && due {
            tracing::warn!(
                "{} more clients turned away since the last report",
                self.unlogged
            );
            self.unlogged = 0;
            self.last_logged = Some(now);
        }
    }
}

/// The default `--workers`: one per core the process may use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Serves every connection arriving on `listener` with `model` until
/// `server.shutdown` fires; then every client is told
/// `ERR server shutting down` and closed, and `serve` returns.
///
/// Errors are only those that stop the whole server (the poller failing);
/// trouble with one connection is logged and ends that connection alone.
pub fn serve(
    model: &dyn ConnectionStrategy,
    listener: TcpListener,
    server: Server,
) -> Result<(), Error> {
    model.check()?;
    model.serve(listener, server)?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One refusal is logged at once; the next within 5 s only counted; the
    /// count is reported with the next refusal or admission once due.
    #[test]
    fn refusals_are_logged_at_most_every_five_seconds() {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut r = Refusals::default();
        r.log(peer, Goodbye::Forbidden, at(0));
        assert_eq!((r.last_logged, r.unlogged), (Some(at(0)), 0));
        r.log(peer, Goodbye::Forbidden, at(1));
        r.log(peer, Goodbye::Busy("too many clients"), at(2));
        r.admitted(at(3)); // not due yet
        assert_eq!((r.last_logged, r.unlogged), (Some(at(0)), 2));
        r.admitted(at(6)); // due: the tally is reported
        assert_eq!((r.last_logged, r.unlogged), (Some(at(6)), 0));
    }
}
