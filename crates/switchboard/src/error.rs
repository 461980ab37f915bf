//! The one error type of the library: what can stop a server as a whole.
//!
//! Trouble inside a single connection is never an [`Error`]: it is logged with
//! the peer's address and that connection alone is closed.

use std::io;
use std::net::SocketAddr;

/// Why a server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host name did not resolve to any address.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host as given.
        host: String,
        /// What the resolver said.
        source: io::Error,
    },
    /// The host as typed is not one: a bare number or numeric shorthand,
    /// refused before any lookup.
    #[error(transparent)]
    Address(#[from] crate::address::Refusal),
    /// Binding or listening on the address failed (in use, permission, ...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// The event loop or the listener failed in a way no retry can mend.
    #[error("{context}: {source}")]
    Io {
        /// What the server was doing.
        context: &'static str,
        /// What the OS said.
        source: io::Error,
    },
    /// The threads that serve clients have all stopped (each stop is
    /// logged as it happens): nobody is left to serve a new client.
    #[error("stopped: {0}")]
    Stopped(&'static str),
    /// The model cannot run on this system (io_uring off Linux, or refused
    /// by the kernel or a sandbox).
    #[error("the {model} model is not available here: {reason}")]
    Unavailable {
        /// The model's name.
        model: &'static str,
        /// Why, in a few words.
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error with what the server was doing when it happened.
    pub fn io(context: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { context, source }
    }
}
