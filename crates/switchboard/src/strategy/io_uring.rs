//! io_uring: completion-based I/O, one thread.
//!
//! **How it works.** Every other model asks "is this socket ready?" and then
//! does the `read` or `write` itself. Here the thread *hands the operation to
//! the kernel*: "receive into this buffer", "send these bytes", "accept the
//! next connection" go into a submission ring shared with the kernel, and the
//! kernel reports each one as done, with its result, in a completion ring.
//! One system call (`io_uring_enter`) submits a batch and waits for the next
//! completions. So the loop below never calls `read` or `write`: it reacts to
//! completions, feeds received bytes to the session, and submits the next
//! receive and the replies.
//!
//! **What it costs — and what completion changes.** A buffer given to the
//! kernel is the kernel's until its completion arrives: it may not move,
//! shrink, or be freed. So each connection owns a receive buffer (4 KiB, idle
//! or not — readiness models share one), keeps the bytes being sent untouched
//! until the send completes, and is only freed once nothing of its is in
//! flight; that is what the `unsafe` below promises, and why shutdown waits
//! for outstanding operations rather than just dropping them. Per message,
//! under load, the system calls are batched: one `io_uring_enter` can carry
//! many connections' receives and sends.
//!
//! **Where it breaks.** One thread, like the event loop: a slow line delays
//! everyone. Linux only (5.11 or later here), and container sandboxes often
//! forbid it (seccomp, `kernel.io_uring_disabled`); then this model says so
//! and exits. And per idle connection it holds a buffer the kernel may write
//! into at any moment.
#![allow(unsafe_code)]

use std::net::TcpListener;

use super::{ConnectionStrategy, Model};
use crate::error::Error;
use crate::server::Server;

/// `--model io-uring`.
pub const MODEL: Model = Model {
    name: "io-uring",
    about: "completion-based I/O: receives and sends submitted to io_uring, one thread (Linux)",
    strategy: &IoUring,
};

/// Serves every client from one thread through one io_uring.
#[derive(Debug, Clone, Copy, Default)]
pub struct IoUring;

impl ConnectionStrategy for IoUring {
    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error> {
        #[cfg(target_os = "linux")]
        return ring::serve(listener, server);
        #[cfg(not(target_os = "linux"))]
        return {
            let _ = (listener, server);
            self.check()
        };
    }

    fn check(&self) -> Result<(), Error> {
        #[cfg(target_os = "linux")]
        return ring::Ring::probe();
        #[cfg(not(target_os = "linux"))]
        return Err(Error::Unavailable {
            model: MODEL.name,
            reason: "io_uring exists on Linux only".into(),
        });
    }
}

#[cfg(target_os = "linux")]
mod ring;
