//! Thread pool: a fixed crew of `--workers N` threads, each serving one
//! connection at a time.
//!
//! **How it works.** The main thread accepts, as in thread-per-client, but
//! starts no thread: it puts the connection in a bounded queue. N worker
//! threads, started once, each take the next connection from the queue and
//! serve it with blocking reads until it leaves — exactly the loop of
//! [`thread_per_client`](super::thread_per_client) — then take the next.
//!
//! **What it costs.** N threads and their stacks, whatever the load: no
//! thread is created or destroyed per client, so the cost of a connection
//! is a queue push and pop. Per message, the same wake-up and context switch
//! as thread-per-client.
//!
//! **Where it breaks.** That is its lesson. While clients ≤ N it is
//! thread-per-client. Client N+1 is accepted — its connect succeeds — and
//! then waits in the queue, unanswered, until some worker's client leaves:
//! its first reply comes only as earlier clients finish, however idle they
//! are. The queue holds `--max-clients` minus N; a client that finds it full
//! gets `ERR busy` at once. Fine for short requests (HTTP/1.0, a database's
//! connection pool); wrong for long conversations like chat.

use std::net::TcpListener;
use std::sync::mpsc::{self, Receiver, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};

use super::thread_per_client::{
    accept_loop, serve_client, Client, Running, STACK_SIZE, THREADS_GRACE,
};
use super::{ConnectionStrategy, Model};
use crate::error::Error;
use crate::server::Server;
use crate::session::Goodbye;

/// `--model thread-pool`.
pub const MODEL: Model = Model {
    name: "thread-pool",
    about: "--workers threads, each serving one connection at a time from a bounded queue",
    strategy: &ThreadPool,
};

/// Serves connections with a fixed pool of `server.workers` threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadPool;

impl ConnectionStrategy for ThreadPool {
    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error> {
        let workers = server.workers.max(1);
        let seats = server.limits.max_clients;
        // Admission counts seats (served plus queued), so a queue as long as
        // the seats is never full: a short queue could be, for the moment
        // between a worker being handed a client and taking it.
        let (queue, waiting) = mpsc::sync_channel::<Client>(seats);
        let waiting = Arc::new(Mutex::new(waiting));
        let running = Running::default();
        for n in 1..=workers {
            let (waiting, server, counted) = (waiting.clone(), server.clone(), running.start());
            let spawned = std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    let _counted = counted;
                    while let Some(client) = next_client(&waiting) {
                        serve_client(client, &server);
                    }
                });
            spawned.map_err(Error::io("starting a worker thread"))?;
        }
        let busy = Goodbye::Busy("every worker is busy and the queue is full");
        // One seat is one worker's client or one place in the queue.
        accept_loop(&listener, &server, seats, busy, |client| {
            match queue.try_send(client) {
                Ok(()) => {}
                Err(TrySendError::Full(client) | TrySendError::Disconnected(client)) => {
                    // Only if every worker has died: say so rather than hang.
                    client.turn_away(&server, busy);
                }
            }
            Ok(())
        })?;
        drop(queue); // workers finish their clients, then find the queue closed
        running.wait_all(THREADS_GRACE);
        Ok(())
    }
}

/// The next queued client, waiting for one; `None` once the queue is closed.
fn next_client(waiting: &Mutex<Receiver<Client>>) -> Option<Client> {
    // One idle worker waits in `recv` holding the lock; the others wait for
    // the lock. Either way, each client goes to exactly one worker.
    let waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
    waiting.recv().ok()
}
