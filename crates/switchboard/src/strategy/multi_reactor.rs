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

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::Waker;

use super::accept::{accept_blocking, close_gently};
use super::event_loop::{Hooks, Loop};
use super::{ConnectionStrategy, Model};
use crate::error::Error;
use crate::protocol::Goodbye;
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
            match start_loop(n, &server) {
                Ok((door, thread)) => {
                    doors.push(Some(door));
                    loops.push(thread);
                }
                Err(e) => {
                    // A failed start stops what already started.
                    server.shutdown.trigger();
                    join(loops);
                    return Err(e);
                }
            }
        }

        // The acceptor: block in `accept`, hand each connection to the next
        // loop. A loop that has stopped drops its end of the channel: the
        // connection comes back, and goes to the next loop still running.
        let mut next = 0;
        let mut all_stopped = false;
        accept_blocking(&listener, &server, |stream, peer| {
            let mut connection = (stream, peer);
            for _ in 0..doors.len() {
                let n = next;
                next = (next + 1) % doors.len();
                let Some((hand_over, waker)) = &doors[n] else {
                    continue;
                };
                match hand_over.send(connection) {
                    Ok(()) => {
                        tracing::debug!(%peer, "loop" = n, "handed over");
                        let _ = waker.wake();
                        return Ok(());
                    }
                    Err(mpsc::SendError(back)) => {
                        tracing::error!(
                            "loop" = n,
                            "an event loop has stopped; new clients go to the others"
                        );
                        doors[n] = None;
                        connection = back;
                    }
                }
            }
            // No loop is left to serve anyone: stop, rather than accept
            // clients nobody can serve.
            let (mut stream, _) = connection;
            let _ = stream.set_nonblocking(true);
            close_gently(&mut stream, Goodbye::Internal.line().as_bytes());
            all_stopped = true;
            server.shutdown.trigger();
            Ok(())
        })?;
        // Each loop saw the same shutdown: it tells its own clients and ends.
        join(loops);
        match all_stopped {
            true => Err(Error::Stopped("every event loop has stopped")),
            false => Ok(()),
        }
    }
}

/// A loop's door: the channel that hands it connections, and its waker.
type LoopDoor = (mpsc::Sender<(TcpStream, SocketAddr)>, Arc<Waker>);

/// The one change to each loop: it has no listener, and takes the
/// connections the acceptor handed over whenever it is woken.
struct HandedOver(Receiver<(TcpStream, SocketAddr)>);

impl Hooks for HandedOver {
    fn arrivals(&mut self) -> Vec<(TcpStream, SocketAddr)> {
        self.0.try_iter().collect()
    }
}

/// Starts loop `n` on a thread of its own. A loop that fails is logged
/// here; its clients are told and closed as it ends.
fn start_loop(n: usize, server: &Server) -> Result<(LoopDoor, JoinHandle<()>), Error> {
    let (hand_over, handed) = mpsc::channel();
    let (event_loop, waker) = Loop::new(None, server.clone(), |_, _| Ok(HandedOver(handed)))?;
    let thread = std::thread::Builder::new()
        .name(format!("loop-{n}"))
        .spawn(move || {
            if let Err(e) = event_loop.run() {
                tracing::error!("loop" = n, "an event loop failed: {e}");
            }
        })
        .map_err(Error::io("starting an event-loop thread"))?;
    Ok(((hand_over, waker), thread))
}

fn join(loops: Vec<JoinHandle<()>>) {
    for thread in loops {
        if thread.join().is_err() {
            tracing::error!("an event loop panicked");
        }
    }
}
