//! The io-uring loop's hardening, which every loop has: the door (one
//! accept in flight at a time), the console, the timers and the shutdown.
//! The loop's core — submit, wait, complete — is in `ring.rs`.

use std::io::Write;
use std::net::{Shutdown as Direction, TcpStream};
use std::time::{Duration, Instant};

use socket2::SockRef;

use super::{Loop, STOP_GRACE};
use crate::protocol::{Goodbye, Outbound};
use crate::session::Session;
use crate::strategy::accept::{already_gone, close_gently, peer_gave_up};
use crate::strategy::io_uring::conn::{Conn, Phase};
use crate::strategy::io_uring::kernel::{Completion, KernelBuf, Op};
use crate::strategy::{add_from_outside, until_first, Told};

impl Loop {
    // -- The door: one accept in flight at a time. --------------------------

    pub(super) fn submit_accept(&mut self) {
        if self.accepting || self.accept_pause.paused() {
            return;
        }
        self.accepting = self.ring.accept(&self.listener);
        if !self.accepting {
            self.accept_pause.pause(self.now); // the submission ring is full
        }
    }

    pub(super) fn accepted(&mut self, done: &Completion) {
        self.accepting = false;
        match self.ring.accepted(done) {
            Some(stream) => {
                self.accept_pause.taken(self.now);
                self.admit(stream);
            }
            None => {
                let e = std::io::Error::from_raw_os_error(-done.result());
                if !(peer_gave_up(&e) || e.kind() == std::io::ErrorKind::Interrupted) {
                    self.accept_pause.failed(&e, self.now);
                    return;
                }
            }
        }
        self.submit_accept();
    }

    pub(super) fn admit(&mut self, mut stream: TcpStream) {
        let Ok(peer) = stream.peer_addr() else {
            return; // gone already
        };
        if already_gone(SockRef::from(&stream)) {
            return;
        }
        let seats = self.server.limits.max_clients;
        let busy = Goodbye::Busy("too many clients");
        let id = match self.server.admit(peer, self.inbox.mailbox(), seats, busy) {
            Ok(id) => id,
            Err(refused) => {
                let _ = stream.set_nonblocking(true);
                return close_gently(&mut stream, refused.line().as_bytes());
            }
        };
        let _ = stream.set_nodelay(true);
        // Only the single-shot path gives a connection a buffer of its own.
        let own = (!self.ring.multishot()).then(KernelBuf::new);
        let conn = Conn::new(stream, Session::new(id), own, self.now);
        self.conns.insert(id.0, Box::new(conn));
        self.pump(id.0);
    }

    // -- The console: its messages come through the inbox, woken by a byte. --

    pub(super) fn submit_wake_recv(&mut self) {
        self.wake_stalled = !self.ring.wake_recv(&self.wake, self.wake_buf);
    }

    /// Carries the operator's messages (queued by the console thread) out.
    pub(super) fn deliver_console_messages(&mut self) {
        while let Some((id, msg)) = self.inbox.next() {
            self.tell(id.0, msg);
        }
    }

    pub(super) fn tell(&mut self, id: u64, msg: Outbound) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.phase != Phase::Open {
            return;
        }
        let (client, unsent) = (conn.session.id(), conn.unsent());
        match add_from_outside(client, &msg, unsent, |bytes| {
            conn.out.extend_from_slice(bytes)
        }) {
            Told::Queued => {}
            Told::Closing => {
                conn.start_closing(&mut self.closing, id, self.now);
            }
            Told::Dropped => {
                conn.out.clear();
                conn.phase = Phase::Done;
            }
        }
        self.pump(id);
    }

    // -- Timers: the accept pause, closing grace, the idle sweep. -----------

    pub(super) fn next_timer(&self) -> Option<Duration> {
        // Stalled operations are retried as soon as the ring has room.
        let retry = (self.wake_stalled || !self.stalled.is_empty()).then_some(self.now);
        let timers = [
            self.accept_pause.until(),
            retry,
            self.idle_sweep.next(),
            self.closing.next(),
        ];
        until_first(self.now, timers)
    }

    /// Resumes accepting after a pause, closes clients that never took their
    /// last replies, and closes clients silent too long. Unlike the event
    /// loop, nothing needs reading before a client is judged silent: what
    /// it sent was reaped this turn, before the timers.
    pub(super) fn after_timers(&mut self) {
        let now = self.now;
        if self.accept_pause.over(now) {
            self.submit_accept();
        }
        while let Some(id) = self.closing.expired(now) {
            if let Some(conn) = self.conns.get_mut(&id) {
                if conn.phase == Phase::Closing {
                    tracing::debug!("client did not take its last replies; closing");
                    conn.phase = Phase::Done;
                    self.pump(id);
                }
            }
        }
        if let Some(limit) = self.idle_sweep.due(now) {
            let idle: Vec<u64> = self
                .conns
                .iter()
                .filter(|(_, c)| c.is_idle(now, limit))
                .map(|(id, _)| *id)
                .collect();
            for id in idle {
                self.tell(id, Outbound::Close(Goodbye::IdleTimeout));
            }
        }
    }

    // -- Shutdown: goodbyes, then every lent buffer back. --------------------

    /// Tells every client the server is going, gives the goodbyes a
    /// moment to go out, then waits for the kernel to give back every
    /// buffer still in flight. One it never gives back is leaked, never
    /// freed under the kernel's feet.
    pub(super) fn shut_down(&mut self) {
        // The accept in flight holds the listening socket: until it is
        // cancelled, the port would accept connections after we exit.
        if self.accepting {
            self.ring.cancel_accept();
        }
        self.deliver_console_messages();
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.tell(id, Outbound::Close(Goodbye::ShuttingDown));
        }
        self.drain_until(Instant::now() + STOP_GRACE);
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.phase = Phase::Done;
            }
            self.pump(id);
        }
        self.drain_until(Instant::now() + STOP_GRACE);
        tracing::debug!(
            submitted = self.ring.submitted,
            "io-uring: operations submitted over the server's life"
        );
        for (_, conn) in self.conns.drain() {
            self.server.clients().leave(conn.session.id());
            self.ring.kernel_may_hold_buffers();
            std::mem::forget(conn); // the kernel may still write into it
        }
    }

    /// Reaps completions until every connection is gone (and the accept
    /// with them), or until `until`.
    pub(super) fn drain_until(&mut self, until: Instant) {
        while !self.conns.is_empty() || self.accepting {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.wait(Some(left)).is_err() {
                return;
            }
            self.now = Instant::now();
            let mut done = std::mem::take(&mut self.done);
            self.ring.reap(&mut done);
            for completion in done.drain(..) {
                match completion.op() {
                    Op::Accept => {
                        self.accepting = false;
                        // A client just too late is told, not dropped.
                        if let Some(mut late) = self.ring.accepted(&completion) {
                            let _ = late.set_nonblocking(true);
                            let goodbye = Goodbye::ShuttingDown.line();
                            close_gently(&mut late, goodbye.as_bytes());
                        }
                    }
                    Op::Recv(id) => self.received(id, completion),
                    Op::Send(id) => self.sent(id, completion.result()),
                    Op::Cancel(id) => self.cancelled(id),
                    Op::Wake => {} // no more console
                }
            }
            self.done = done;
        }
    }
}

impl Drop for Loop {
    /// However the loop ends — an error, a panic — each client still here
    /// is told (best effort), shut down and forgotten by the registry, so
    /// none is left hanging or holding a seat; a connection with an
    /// operation in flight is leaked, never freed under the kernel's feet.
    fn drop(&mut self) {
        // An accept may still be in flight and keep the listener open:
        // shut, it takes no client that nobody would serve.
        let _ = SockRef::from(&self.listener).shutdown(Direction::Both);
        for (_, mut conn) in self.conns.drain() {
            self.server.clients().leave(conn.session.id());
            let _ = conn.stream.set_nonblocking(true);
            if !conn.outgoing.sending() {
                let _ = conn.stream.write(Goodbye::Internal.line().as_bytes());
            }
            let _ = conn.stream.shutdown(Direction::Both);
            if conn.incoming.armed() || conn.outgoing.sending() {
                self.ring.kernel_may_hold_buffers();
                std::mem::forget(conn);
            }
        }
    }
}
