//! Event loop with workers: one loop owns every socket; a pool of
//! `--workers N` threads answers the lines.
//!
//! **How it works.** The loop is [`event_loop`](super::event_loop)'s, line for
//! line: it accepts, reads, writes, pushes back. The one change is who runs
//! the session. When bytes arrive, the loop sends the connection's session
//! and those bytes to a pool thread, which frames them, answers every
//! complete line through the mode, and sends the session back with its
//! replies, waking the loop; the loop writes them. While its session is
//! away a connection is not read, so its replies keep the order of its
//! lines (`event_loop/workers.rs` is the hand-off, in a few dozen lines).
//!
//! **What it costs.** Per cheap line, more than the plain loop: a copy of
//! the bytes, two channel hand-offs and a wake-up, and the thread switches
//! they bring — `compare` shows it. Per client, the same few hundred bytes.
//! Threads: the loop, N workers, the console's helpers.
//!
//! **Where it wins.** A slow line — a `calc` line of thousands of big-number
//! remainders, as `compare -w heavy` sends — ties up one worker, not the
//! loop: every other client is still read, answered by the other workers,
//! and written to. On the plain event loop the same line stalls everyone
//! (`compare -w heavy` shows both). It breaks down when
//! every worker is busy with slow lines, or when the loop's single thread
//! is itself the bottleneck (then see `multi-reactor`).

use std::net::TcpListener;

use super::event_loop::{Answer, Door, Loop};
use super::{ConnectionStrategy, Model};
use crate::error::Error;
use crate::server::Server;

/// `--model event-loop-workers`.
pub const MODEL: Model = Model {
    name: "event-loop-workers",
    about: "one event loop owns the sockets; --workers threads answer the lines",
    strategy: &EventLoopWorkers,
};

/// One event loop whose sessions run on `server.workers` pool threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventLoopWorkers;

impl ConnectionStrategy for EventLoopWorkers {
    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error> {
        let (one_loop, _) = Loop::new(Door::Listener(listener), server, Answer::OnWorkers)?;
        one_loop.run()
    }
}
