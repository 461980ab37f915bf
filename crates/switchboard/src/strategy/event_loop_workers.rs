//! Event loop with workers: one loop owns every socket; a pool of
//! `--workers N` threads answers the lines.
//!
//! **How it works.** The loop is [`event_loop`](super::event_loop)'s, line for
//! line: it accepts, reads, writes, pushes back. The one change is who runs
//! the session, and it is all in this file, as the loop's `Hooks`: when
//! bytes arrive, `Pool::answer` sends the connection's session and those
//! bytes to a pool thread, which frames them, answers every complete line
//! through the mode, and sends the session back with its replies, waking
//! the loop (`Pool::start`); the loop takes it back (`Pool::back`) and
//! writes the replies. While its session is away a connection is not read,
//! so its replies keep the order of its lines.
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use mio::{Token, Waker};

use super::event_loop::{Answered, Back, Conn, Hooks, Input, Loop};
use super::{ConnectionStrategy, Model};
use crate::error::Error;
use crate::server::Server;
use crate::session::{Context, Flow, Session};

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
        let (one_loop, _) = Loop::new(Some(listener), server, Pool::start)?;
        one_loop.run()
    }
}

/// The loop's hooks: lines are answered on the pool, not on the loop's thread.
impl Hooks for Pool {
    /// The hand-off: the session leaves the connection with what was read.
    fn answer(
        &mut self,
        token: Token,
        conn: &mut Conn,
        input: Input<'_>,
        _here: &Context<'_>,
        _out: &mut Vec<u8>,
    ) -> Answered {
        let Some(session) = conn.send_session_away() else {
            return Answered::Later;
        };
        let work = match input {
            Input::Bytes(bytes) => Work::Bytes(bytes.to_vec()),
            Input::Eof => Work::Eof,
            Input::Resume => Work::Resume,
        };
        if self
            .errands
            .send(Errand {
                token,
                session,
                work,
            })
            .is_ok()
        {
            return Answered::Later;
        }
        tracing::warn!(client = %conn.id(), "no worker to answer; closing");
        Answered::Now(Flow::Close)
    }

    /// The return: sessions the pool threads answered, for the loop to write.
    fn back(&mut self) -> Vec<Back> {
        self.done.try_iter().collect()
    }

    fn cannot_go_on(&self) -> Option<&'static str> {
        let none_left = self.alive.load(Ordering::Relaxed) == 0;
        none_left.then_some("every worker thread has died")
    }
}

// The pool: a connection's session travels to a pool thread with the bytes
// to answer, and comes back, with its replies, through the loop's waker.
//
// Order needs no sequence numbers: a connection has at most one errand out
// at a time (its session is *in* the errand), and the loop reads nothing
// more from it until the session is back. Its replies therefore go out in
// the order its lines came in, while other connections' errands run on the
// other threads — a slow line holds up its own connection only.

/// What a session is asked to do with its errand.
enum Work {
    /// Answer these bytes, as read from the client.
    Bytes(Vec<u8>),
    /// The client stopped sending: answer a last unterminated line.
    Eof,
    /// Answer input that waited while replies piled up.
    Resume,
}

/// A session sent out, and what it must do.
struct Errand {
    token: Token,
    session: Session,
    work: Work,
}

/// The pool: errands go out on one channel, answers come back on another
/// (a [`Back`]: without the session if the thread died answering, a bug;
/// the connection is then closed).
struct Pool {
    errands: Sender<Errand>,
    done: Receiver<Back>,
    /// Threads still running: each counts itself out as it ends.
    alive: Arc<AtomicUsize>,
}

impl Pool {
    /// Starts `server.workers` threads that answer for `server` and wake the
    /// loop through `waker` after each errand. They end when the pool is
    /// dropped.
    fn start(server: &Server, waker: Arc<Waker>) -> Result<Pool, Error> {
        let (errands, waiting) = mpsc::channel::<Errand>();
        let (answered, done) = mpsc::channel();
        let waiting = Arc::new(Mutex::new(waiting));
        let alive = Arc::new(AtomicUsize::new(0));
        for n in 1..=server.workers.max(1) {
            let (waiting, answered, waker) = (waiting.clone(), answered.clone(), waker.clone());
            let server = server.clone();
            alive.fetch_add(1, Ordering::SeqCst);
            let counted = CountedOut(Arc::clone(&alive));
            std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .spawn(move || {
                    let _counted = counted;
                    while let Some(errand) = next(&waiting) {
                        let watch = Watch {
                            token: errand.token,
                            answered: &answered,
                            waker: &waker,
                        };
                        let done = run(errand, &server);
                        std::mem::forget(watch);
                        if answered.send(done).is_err() {
                            break; // the loop has stopped
                        }
                        let _ = waker.wake();
                    }
                })
                .map_err(Error::io("starting the worker threads"))?;
        }
        Ok(Pool {
            errands,
            done,
            alive,
        })
    }
}

/// Counts a pool thread out when it ends, however it ends.
struct CountedOut(Arc<AtomicUsize>);

impl Drop for CountedOut {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Watches one errand: if its thread dies on it (a panic outside the mode,
/// which the session already contains), the loop still hears back, without
/// the session, and closes that client instead of waiting for it forever.
/// The other threads go on; when none is left, the loop stops
/// ([`Pool::cannot_go_on`]).
struct Watch<'a> {
    token: Token,
    answered: &'a Sender<Back>,
    waker: &'a Waker,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        tracing::error!("a worker thread died answering a client; that client is closed");
        let lost = Back {
            token: self.token,
            session: None,
            replies: Vec::new(),
            flow: Flow::Close,
        };
        if self.answered.send(lost).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

fn next(waiting: &Mutex<Receiver<Errand>>) -> Option<Errand> {
    let waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
    waiting.recv().ok()
}

/// Does the errand: the session, framing and mode included, runs here.
fn run(errand: Errand, server: &Server) -> Back {
    let Errand {
        token,
        mut session,
        work,
    } = errand;
    let mut replies = Vec::new();
    let context = server.context();
    let flow = match work {
        Work::Bytes(bytes) => session.on_bytes(&context, &bytes, &mut replies),
        Work::Eof => session.on_eof(&context, &mut replies),
        Work::Resume => session.resume(&context, &mut replies),
    };
    Back {
        token,
        session: Some(session),
        replies,
        flow,
    }
}
