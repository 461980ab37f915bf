//! Single-client: one conversation at a time, with blocking I/O.
//!
//! This is the first server every course writes: accept a client, talk with it
//! until it leaves, accept the next. The session runs on one worker thread and
//! blocks in `read` while the client is quiet. The accepting thread stays free
//! for a single reason: to turn a second client away *at once* with
//! `ERR busy: serving another client`. Without it, the newcomer would sit in the
//! kernel's backlog — connected as far as it can tell, but never answered.
//!
//! **Cost:** one thread for the session, one for accepting; nothing per waiting
//! client, because there are none. **Breaks down:** as soon as two people want
//! service: throughput is one client's, whatever the machine.

use std::net::TcpListener;

use super::blocking::{accept_loop, refuse, spawn_session};
use super::{ConnectionStrategy, Server};
use crate::error::Error;
use crate::session::Goodbye;

/// Serves one client at a time; others get `ERR busy` and are closed.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleClient;

impl ConnectionStrategy for SingleClient {
    fn name(&self) -> &'static str {
        "single-client"
    }

    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error> {
        accept_loop(&listener, &server, |stream, peer, sessions| {
            // The session leaves the console before its last reply goes out,
            // so a client that has read `bye` finds the seat free.
            if server.console.active() >= 1 {
                tracing::info!(%peer, "busy: turned away");
                refuse(stream, Goodbye::Busy("serving another client"))
            } else {
                spawn_session(stream, peer, &server, sessions, None)
            }
        })
    }
}
