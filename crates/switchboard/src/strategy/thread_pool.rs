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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::thread_per_client::{
    accept_loop, serve_client, Client, Running, STACK_SIZE, THREADS_GRACE,
};
use super::{idle_sweep_interval, ConnectionStrategy, Model};
use crate::error::Error;
use crate::protocol::Goodbye;
use crate::server::Server;

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
        let crew = Arc::new(Crew::default());
        for n in 1..=workers {
            let (waiting, server, counted) = (queue.clone(), server.clone(), running.start());
            crew.alive.fetch_add(1, Ordering::SeqCst);
            let crew = Arc::clone(&crew);
            let spawned = std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    let _counted = counted;
                    let _watch = CrewMember(&crew, &server);
                    while let Some(client) = waiting.pop() {
                        serve_client(client, &server, None);
                    }
                });
            if let Err(e) = spawned {
                // A failed start stops what already started.
                queue.close();
                running.wait_all(THREADS_GRACE);
                return Err(Error::io("starting a worker thread")(e));
            }
        }
        if let Some(limit) = server.limits.idle_timeout {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name("queue-sweeper".into())
                .spawn(move || queue.time_out_silent(limit))
                .map_err(Error::io("starting the queue's idle sweeper"))?;
        }
        let busy = Goodbye::Busy("every worker is busy and the queue is full");
        // One seat is one worker's client or one place in the queue, so
        // admission keeps the queue within the seats.
        let make_room = || queue.forget_the_gone(&server);
        accept_loop(&listener, &server, seats, busy, make_room, |client| {
            queue.push(client);
            Ok(())
        })?;
        queue.close(); // workers finish their clients, then find it closed
        running.wait_all(THREADS_GRACE);
        // Workers that end normally stay counted: none left means all died.
        match crew.alive.load(Ordering::SeqCst) {
            0 => Err(Error::Stopped("every worker thread has died")),
            _ => Ok(()),
        }
    }
}

/// The workers still alive. A worker that dies (a bug: its client has been
/// told and closed) leaves the others serving; when none is left, the
/// server stops, rather than queue clients nobody will serve.
#[derive(Default)]
struct Crew {
    alive: AtomicUsize,
}

/// One worker of the crew, counted out if its thread dies.
struct CrewMember<'a>(&'a Crew, &'a Server);

impl Drop for CrewMember<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let left = self.0.alive.fetch_sub(1, Ordering::SeqCst) - 1;
        tracing::error!(left, "a worker thread died");
        if left == 0 {
            self.1.shutdown.trigger();
        }
    }
}

/// The accepted connections waiting for a worker, first come first served.
#[derive(Default)]
struct Queue {
    waiting: Mutex<(VecDeque<Client>, bool)>,
    changed: Condvar,
    /// Wakes the idle sweeper when the queue closes.
    closed: Condvar,
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

    /// Frees the seats of queued clients that have gone (a burst of
    /// connections reset while they waited would otherwise hold every seat,
    /// and real clients would be told `ERR busy`).
    fn forget_the_gone(&self, server: &Server) {
        self.lock().0.retain(|client| {
            if !client.is_gone() {
                return true;
            }
            client.forget(server);
            false
        });
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
        self.closed.notify_all();
    }

    /// With `--idle-timeout`: a client waiting in the queue is as silent as
    /// one a worker serves, and is told `ERR idle timeout` when due, not
    /// when a worker gets to it. One more thread, which looks every quarter
    /// of the limit, until the queue closes.
    fn time_out_silent(&self, limit: Duration) {
        let every = idle_sweep_interval(limit);
        let mut waiting = self.lock();
        while !waiting.1 {
            waiting = (self.closed.wait_timeout(waiting, every))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            waiting.0.retain(|client| {
                if !client.silent_for(limit) {
                    return true;
                }
                client.time_out();
                false
            });
        }
    }

    fn lock(&self) -> MutexGuard<'_, (VecDeque<Client>, bool)> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
