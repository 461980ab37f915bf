//! io_uring: completion-based I/O, one thread.
//!
//! **How it works.** Every other model asks "is this socket ready?" and then
//! does the `read` or `write` itself. Here the thread *hands the operation to
//! the kernel*: "receive on this socket", "send these bytes", "accept the
//! next connection" go into a submission ring shared with the kernel, and the
//! kernel reports each one as done, with its result, in a completion ring.
//! One system call (`io_uring_enter`) submits a batch and waits for the next
//! completions. So the loop in `ring.rs` is three steps — submit, wait,
//! complete — and never calls `read` or `write`: it reacts to completions,
//! feeds received bytes to the session, and submits the replies. Read it in
//! that order: `Loop::run`, then `received` and `sent`, then `pump`, which
//! submits whatever one connection's state calls for.
//!
//! **Receiving the modern way.** Each connection has one *multishot* receive
//! armed: a single submission that keeps completing, once per arrival, for
//! as long as the connection lives. It names no buffer of its own. The loop
//! registers one ring of *provided buffers* with the kernel, and the kernel
//! takes one only when data arrives, names it in the completion, and gets it
//! back once its bytes are handed to the session. A completion without the
//! MORE flag means the receive has ended — the client left, an error, or the
//! buffers ran out (ENOBUFS) — and it is armed again, never spun on. While
//! a client's replies pile up, its receive is called back (cancelled), as
//! the event loop stops reading, and armed again once there is room.
//!
//! **What it costs — and what completion changes.** A buffer given to the
//! kernel is the kernel's until its completion arrives: it may not move,
//! shrink, or be freed. So the bytes being sent stay untouched until the
//! send completes, a connection is only freed once nothing of its is in
//! flight, and the provided buffers outlive every receive; that is what the
//! `unsafe` in `kernel.rs` promises, and why shutdown waits for outstanding
//! operations rather than just dropping them. Per message, one submission
//! (the send) instead of two, and one `io_uring_enter` carries many
//! connections' sends.
//!
//! **An idle connection holds** one boxed `Conn` (socket, session, flags;
//! no buffer, as replies borrow one of the loop's spares only while they
//! wait), its slot in the loop's map, its seat in the registry, and one armed
//! receive in the kernel: docs/measurements/2026-12-07-io-uring-lean-again.md.
//!
//! **Where it breaks.** One thread, like the event loop: a slow line delays
//! everyone. Linux only (5.11 or later here), and container sandboxes often
//! forbid it (seccomp, `kernel.io_uring_disabled`); then this model says so
//! and exits. A kernel without multishot receive (before 6.0) gets the
//! older shape, said in one log line at start: one receive submitted at a
//! time into a 4 KiB buffer each connection owns, idle or not.
//!
//! **The files.** `ring.rs`: the loop, submit and complete. `ring/hardening.rs`:
//! what it shares with the event loop (closing grace, the idle sweep, accept
//! back-off, the console's mailbox: `strategy/mod.rs` and
//! `strategy/accept.rs`) and the shutdown it does not. `conn.rs`: one
//! connection's state. `kernel.rs`: the rings and the buffers lent to the
//! kernel, where every `unsafe` is.

use std::net::TcpListener;

use super::{ConnectionStrategy, Model};
use crate::error::Error;
use crate::server::Server;

/// `--model io-uring`.
pub const MODEL: Model = Model {
    name: "io-uring",
    about: "completion-based I/O: receives and sends submitted to io_uring, one thread (Linux)",
    strategy: &IoUring { single_shot: false },
};

/// The same model held to the older receive path, as on a kernel without
/// multishot receive: for tests, so that both paths are run everywhere.
#[doc(hidden)]
pub const SINGLE_SHOT: Model = Model {
    name: "io-uring-single-shot",
    about: "io-uring with one single-shot receive per connection at a time (tests)",
    strategy: &IoUring { single_shot: true },
};

/// Set to `1`, `server --model io-uring` takes the single-shot receive
/// path, as on a kernel without multishot receive: it exists for tests.
pub const SINGLE_SHOT_ENV: &str = "SWITCHBOARD_IO_URING_SINGLE_SHOT";

/// Serves every client from one thread through one io_uring.
#[derive(Debug, Clone, Copy, Default)]
pub struct IoUring {
    /// Whether to take the single-shot receive path even where multishot
    /// receive works (see [`SINGLE_SHOT`]).
    single_shot: bool,
}

impl ConnectionStrategy for IoUring {
    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error> {
        #[cfg(target_os = "linux")]
        return ring::serve(listener, server, self.single_shot);
        #[cfg(not(target_os = "linux"))]
        return {
            let _ = (listener, server);
            self.check()
        };
    }

    fn check(&self) -> Result<(), Error> {
        #[cfg(target_os = "linux")]
        return kernel::Ring::probe();
        #[cfg(not(target_os = "linux"))]
        return Err(Error::Unavailable {
            model: MODEL.name,
            reason: "io_uring exists on Linux only".into(),
        });
    }
}

#[cfg(target_os = "linux")]
mod conn;
#[cfg(target_os = "linux")]
mod kernel;
#[cfg(target_os = "linux")]
mod ring;
