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

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

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
        let queue = Arc::new(Queue::default());
        let running = Running::default();
        for n in 1..=workers {
            let (queue, server, counted) = (queue.clone(), server.clone(), running.start());
            let spawned = std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    let _counted = counted;
                    while let Some(client) = queue.pop() {
                        serve_client(client, &server);
                    }
                });
            spawned.map_err(Error::io("starting a worker thread"))?;
        }
        let busy = Goodbye::Busy("every worker is busy and the queue is full");
        // One seat is one worker's client or one place in the queue, so
        // admission keeps the queue within the seats.
        accept_loop(&listener, &server, seats, busy, |client| {
            queue.push(client);
            Ok(())
        })?;
        queue.close(); // workers finish their clients, then find it closed
        running.wait_all(THREADS_GRACE);
        Ok(())
    }
}

/// The accepted connections waiting for a worker, first come first served.
#[derive(Default)]
struct Queue {
    waiting: Mutex<(VecDeque<Client>, bool)>,
    changed: Condvar,
}

impl Queue {
    fn push(&self, client: Client) {
        let mut waiting = self.lock();
        // A client kicked while it waited left its seat at once; its place
        // (and its socket) go now.
        waiting.0.retain(|queued| !queued.is_closing());
        waiting.0.push_back(client);
        self.changed.notify_one();
    }

    /// The next client, waiting for one; `None` once the queue is closed.
    fn pop(&self) -> Option<Client> {
        let mut waiting = self.lock();
        loop {
            if let Some(client) = waiting.0.pop_front() {
                return Some(client);
            }
            if waiting.1 {
                return None;
            }
            waiting = self
                .changed
                .wait(waiting)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn close(&self) {
        self.lock().1 = true;
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, (VecDeque<Client>, bool)> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
