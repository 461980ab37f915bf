//! Thread-per-client: every connection gets its own OS thread.
//!
//! The accepting thread hands each new connection to a fresh thread, which
//! blocks in `read` until its client says something, answers, and blocks
//! again. The code stays as simple as the single-client server's — straight
//! line, blocking calls — and a slow or silent client only ever holds up its
//! own thread. The operating system's scheduler does the multiplexing.
//!
//! **Cost:** a thread per client: a stack (reserved virtual memory, of which
//! only the touched pages are real — we ask for a small one, so thousands fit),
//! a kernel task, and a context switch every time a client's data arrives.
//! **Breaks down:** at tens of thousands of clients (memory, thread limits),
//! or when many busy clients make the switches dominate the work.

use std::net::TcpListener;

use super::blocking::{accept_loop, refuse, spawn_session};
use super::{ConnectionStrategy, Server};
use crate::error::Error;
use crate::session::Goodbye;

/// Stack per client thread. Sessions keep little on the stack (a 4 KiB read
/// buffer; the calculator caps its recursion at 64 levels, about 140 KiB in a
/// debug build), so 512 KiB of address space is ample; untouched pages cost no memory.
const STACK_SIZE: usize = 512 * 1024;

/// Serves each client on a thread of its own, up to `--max-clients`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadPerClient;

impl ConnectionStrategy for ThreadPerClient {
    fn name(&self) -> &'static str {
        "thread-per-client"
    }

    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error> {
        accept_loop(&listener, &server, |stream, peer, sessions| {
            if server.console.active() >= server.limits.max_clients {
                tracing::warn!(%peer, "too many clients: turned away");
                refuse(stream, Goodbye::Busy("too many clients"))
            } else {
                spawn_session(stream, peer, &server, sessions, Some(STACK_SIZE))
            }
        })
    }
}
