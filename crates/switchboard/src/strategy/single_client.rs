//! Single-client: one conversation at a time, with blocking I/O.
//!
//! **How it works.** This is the first server every course writes: accept a
//! client, talk with it until it leaves, accept the next. It is the
//! thread-per-client model with a single seat, and it needs that second
//! thread for one reason: while the session blocks in `read`, the accepting
//! thread stays free to turn a newcomer away *at once* with
//! `ERR busy: serving another client`. Without it the newcomer would sit in
//! the kernel's backlog — connected as far as it can tell (the kernel
//! completes the handshake however small the backlog), but never answered.
//!
//! **What it costs.** One thread for the session, one for accepting; nothing
//! per waiting client, because there are none.
//!
//! **Where it breaks.** As soon as two people want service: throughput is
//! one client's, whatever the machine.
//!
//! Read [`thread_per_client`](super::thread_per_client) for the accept loop
//! and the blocking read loop; this file only chooses one seat.

use std::net::TcpListener;

use super::thread_per_client::thread_per_client;
use super::{ConnectionStrategy, Model};
use crate::error::Error;
use crate::protocol::Goodbye;
use crate::server::Server;

/// `--model single-client` (`server1`).
pub const MODEL: Model = Model {
    name: "single-client",
    about: "one client at a time, blocking I/O; others get ERR busy (server1)",
    strategy: &SingleClient,
};

/// Serves one client at a time; others get `ERR busy` and are closed.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleClient;

impl ConnectionStrategy for SingleClient {
    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error> {
        // The session leaves the registry before its last reply goes out, so
        // a client that has read `bye` finds the seat free.
        let busy = Goodbye::Busy("serving another client");
        thread_per_client(&listener, &server, 1, busy)
    }
}
