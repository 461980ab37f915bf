//! Single-client: one conversation at a time, on one thread, with blocking
//! I/O.
//!
//! **How it works.** This is the first server every course writes, and its
//! whole logic is three steps, below in [`SingleClient::serve`]: *accept* a
//! client (blocking until one connects), *talk* with it until it leaves
//! (block in `read`, answer, write: `serve_client`, the same loop a
//! thread-per-client thread runs), then *accept the next*.
//!
//! **The catch.** While the one thread talks, nobody accepts. A second
//! client's connect still succeeds — the kernel completes the handshake and
//! queues it in the listen backlog — and then it sits there, connected as far
//! as it can tell, never answered. Telling it `ERR busy` at once takes one
//! of two things:
//!
//! - *one more thread*, a doorman blocked in `accept` while the first thread
//!   talks (thread-per-client with one seat is exactly that); or
//! - *a non-blocking accept*, which is what this file does: while a
//!   conversation is going on, the listener is switched to non-blocking and,
//!   between reads, at least every [`DOOR_EVERY`], the thread accepts
//!   whoever is queued and turns each away (`turn_away`). For that the
//!   read must give up now and then (a read timeout), even when the client
//!   is silent: a wake-up every [`DOOR_EVERY`] is this model's price for a
//!   second thread it does not have.
//!
//! **What it costs.** One thread, whatever the load; nothing per waiting
//! client, because there are none.
//!
//! **Where it breaks.** As soon as two people want service: throughput is
//! one client's, whatever the machine.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::Duration;

use super::accept::{accept_blocking, close_gently};
use super::thread_per_client::{admit, serve_client, Between};
use super::{ConnectionStrategy, Model};
use crate::error::Error;
use crate::protocol::Goodbye;
use crate::server::Server;

/// `--model single-client` (`server1`).
pub const MODEL: Model = Model {
    name: "single-client",
    about: "one client at a time on one thread, blocking I/O; others get ERR busy (server1)",
    strategy: &SingleClient,
};

/// How often, at least, the door is watched while a conversation is going
/// on: how long a newcomer may wait for its `ERR busy`, and how soon a
/// stop is noticed.
pub const DOOR_EVERY: Duration = Duration::from_millis(50);

/// Serves one client at a time; others get `ERR busy` and are closed.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleClient;

impl ConnectionStrategy for SingleClient {
    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error> {
        let busy = Goodbye::Busy("serving another client");
        // 1. Accept: block until a client connects (or the server stops).
        accept_blocking(&listener, &server, |stream, peer| {
            let Some(client) = admit(stream, peer, &server, 1, busy)? else {
                return Ok(()); // kept out by --allow/--deny
            };
            // 2. Talk with it until it leaves, watching the door between
            //    reads: newcomers are turned away without waiting.
            listener.set_nonblocking(true)?;
            let mut watch_the_door = || turn_away(&listener, &server, busy);
            let between = Between {
                every: DOOR_EVERY,
                work: &mut watch_the_door,
            };
            serve_client(client, &server, Some(between));
            // 3. Then accept the next.
            listener.set_nonblocking(false)
        })
    }
}

/// Takes every connection queued at the (non-blocking) door and turns it
/// away, without waiting, as any model's door does ([`Server::turn_away`]). Once the server is stopping, asks the conversation to end
/// with the shutdown goodbye instead.
fn turn_away(listener: &TcpListener, server: &Server, busy: Goodbye) -> Option<Goodbye> {
    if server.shutdown.is_triggered() {
        return Some(Goodbye::ShuttingDown);
    }
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                let why = server.turn_away(peer, busy);
                let _ = stream.set_nonblocking(true);
                close_gently(&mut &stream, why.line().as_bytes());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Nobody else knocked (WouldBlock), or accepting fails for now
            // (out of descriptors): the door is watched again next time.
            Err(_) => return None,
        }
    }
}
