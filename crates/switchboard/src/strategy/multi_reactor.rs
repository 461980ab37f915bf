//! Multi-reactor: `--workers N` event loops, one per thread, each owning its
//! connections for life.
//!
//! **How it works.** One [`event_loop`](super::event_loop) per thread, the
//! same code as `event-loop` — drain readiness, never assume a write
//! completes, push back — but N of them, so N cores can serve at once. This
//! is how nginx, memcached, Netty and Redis's I/O threads scale. A
//! connection belongs to one loop from accept to close: its state is never
//! shared, so the loops need no locks between them (only the registry of
//! clients, touched on connect and disconnect, is shared).
//!
//! How connections reach the loops is the design choice. Here one acceptor
//! thread blocks in `accept` and hands each connection to the next loop in
//! turn (round-robin), through that loop's channel and waker. The spread is
//! therefore exact — connection k goes to loop k mod N — whatever the
//! addresses; its cost is one hand-off (a channel push and a wake-up) per
//! connection, not per message. The alternatives: `SO_REUSEPORT`, a
//! listening socket per loop with the kernel spreading connections by a hash
//! of their addresses (no hand-off, but uneven with few clients, and it
//! would let any process of the same user bind our port too); or every loop
//! watching one shared listener (each new connection wakes every loop, and
//! one wins: the thundering herd).
//!
//! **What it costs.** Per loop, a thread, a poller and a 64 KiB read buffer;
//! per client, what one event loop pays. Threads: N loops, the acceptor, and
//! the console's helpers.
//!
//! **Where it breaks.** Round-robin balances connections, not load: N busy
//! clients that happen to land on one loop share one core while others
//! idle, and a long-lived connection never moves. A slow line still delays
//! everyone on its loop (not everyone on the server). And on a machine with
//! fewer free cores than loops, the loops only take turns.

use std::net::TcpListener;
use std::sync::mpsc;

use super::accept::accept_blocking;
use super::event_loop::{Answer, Door, Loop};
use super::{ConnectionStrategy, Model};
use crate::error::Error;
use crate::server::Server;

/// `--model multi-reactor`.
pub const MODEL: Model = Model {
    name: "multi-reactor",
    about: "--workers event loops, one per thread; an acceptor hands connections round-robin",
    strategy: &MultiReactor,
};

/// Serves with `server.workers` event loops fed by one acceptor.
#[derive(Debug, Clone, Copy, Default)]
pub struct MultiReactor;

impl ConnectionStrategy for MultiReactor {
    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error> {
        let mut doors = Vec::new();
        let mut loops = Vec::new();
        for n in 0..server.workers.max(1) {
            let (hand_over, handed) = mpsc::channel();
            let (event_loop, waker) =
                Loop::new(Door::HandedOver(handed), server.clone(), Answer::Here)?;
            let thread = std::thread::Builder::new()
                .name(format!("loop-{n}"))
                .spawn(move || event_loop.run())
                .map_err(Error::io("starting an event-loop thread"))?;
            doors.push((hand_over, waker));
            loops.push(thread);
        }

        // The acceptor: block in `accept`, hand each connection to the next loop.
        let mut next = 0;
        accept_blocking(&listener, &server, |stream, peer| {
            let (hand_over, waker) = &doors[next];
            tracing::debug!(%peer, "loop" = next, "handed over");
            if hand_over.send((stream, peer)).is_ok() {
                let _ = waker.wake();
            }
            next = (next + 1) % doors.len();
            Ok(())
        })?;
        // Each loop saw the same shutdown: it tells its own clients and ends.
        let mut outcome = Ok(());
        for thread in loops {
            match thread.join() {
                Ok(Err(e)) if outcome.is_ok() => outcome = Err(e),
                Ok(_) => {}
                Err(_) => tracing::error!("an event loop panicked"),
            }
        }
        outcome
    }
}
