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

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::clients::Clients;
use crate::console::Console;
use crate::error::Error;
use crate::mode::Mode;
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
    /// Fires when the server must stop; clone it to stop the server from
    /// elsewhere.
    pub shutdown: Shutdown,
    /// Private, so that every part of one server — its model, its mode, its
    /// console — sees the same clients.
    clients: Arc<Clients>,
}

/// Per-server limits (the `--max-clients`, `--idle-timeout` and
/// `--max-line` options).
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
            shutdown: Shutdown::new(),
            clients: Arc::new(Clients::new()),
        }
    }

    /// The connected clients: send to them, count them, hear them come and go.
    pub fn clients(&self) -> &Arc<Clients> {
        &self.clients
    }

    /// The operator's commands (`@ID text`, `/list`, `/quit`, ...) over this
    /// server's clients; feed it lines from wherever the operator types.
    pub fn console(&self) -> Console {
        Console::new(Arc::clone(&self.clients), self.shutdown.clone())
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
