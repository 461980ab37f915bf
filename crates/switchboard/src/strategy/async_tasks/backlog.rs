//! How the console reaches a task: the client's mailbox, and its output
//! held to the one output bound.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::clients::Outbox;
use crate::protocol::{ClientId, Goodbye, Outbound};
use crate::session::Flow;
use crate::strategy::{beyond_replies, past_output_bound};

/// A client's output that waits: lines from outside queued for its task,
/// and replies its socket has not taken. Together they are held to the one
/// output bound. It is the console's way to the task (its [`Outbox`]): a
/// queue and the task's waker rather than an mpsc channel, because a
/// channel allocates a block of slots per client up front, idle or not,
/// where an empty queue holds nothing, and a waiting task holds no more
/// than a reference to it (a `Notify` would have it hold a waiter of its
/// own). That is one of the places this file reads less plainly than a
/// tokio server usually does.
#[derive(Default)]
pub(super) struct Backlog {
    mail: Mutex<Mail>,
    /// Bytes the task is waiting to write (0 when writes go through at once).
    pub(super) unsent: AtomicUsize,
}

/// Lines and goodbyes from outside, in the order sent, and who to wake.
#[derive(Default)]
struct Mail {
    queue: VecDeque<Outbound>,
    /// Bytes of the lines in the queue; `usize::MAX` once the client passed
    /// its bound, for good: the task is closing it, and a write that waits
    /// watches for it (`poll_overflowed`). As
    /// [`InFlight`](crate::strategy::InFlight) marks it for the loops.
    told: usize,
    /// The task, once it has waited for mail (or, while a write waits,
    /// for its overflow).
    waker: Option<Waker>,
}

impl Backlog {
    fn lock(&self) -> MutexGuard<'_, Mail> {
        self.mail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ready when there is mail; else the task is woken when some comes.
    pub(super) fn poll_mail(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_until(cx, |mail| !mail.queue.is_empty())
    }

    /// Ready once the client has passed its output bound; else the task is
    /// woken by the next line sent to it (it then polls again).
    pub(super) fn poll_overflowed(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_until(cx, |mail| mail.told == usize::MAX)
    }

    fn poll_until(&self, cx: &mut Context<'_>, ready: impl Fn(&Mail) -> bool) -> Poll<()> {
        let mut mail = self.lock();
        if ready(&mail) {
            return Poll::Ready(());
        }
        if !matches!(&mail.waker, Some(waker) if waker.will_wake(cx.waker())) {
            mail.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Takes the mail into `out`, up to a goodbye.
    pub(super) fn deliver(&self, out: &mut Vec<u8>) -> Flow {
        let mut mail = self.lock();
        // Taken whole: an idle client keeps no queue.
        for msg in std::mem::take(&mut mail.queue) {
            if let (Outbound::Line(text), false) = (&msg, mail.told == usize::MAX) {
                mail.told -= text.len() + 1;
            }
            if tell(msg, out) == Flow::Close {
                return Flow::Close;
            }
        }
        Flow::Continue
    }
}

impl Outbox for Backlog {
    /// Queues `msg`, so the console never waits, counting what waits, so a
    /// client that does not read cannot make it grow without bound.
    fn send(&self, to: ClientId, msg: Outbound) {
        let waker = {
            let mut mail = self.lock();
            if mail.told == usize::MAX {
                return; // its overflow goodbye is on its way
            }
            let msg = match &msg {
                Outbound::Line(text) => {
                    let waiting = mail.told + beyond_replies(self.unsent.load(Ordering::Relaxed));
                    if past_output_bound(to, waiting, text.len() + 1) {
                        // The task is told to close (woken below, even if
                        // it is stuck in a write: see `poll_overflowed`).
                        mail.told = usize::MAX;
                        Outbound::Close(Goodbye::Overflow)
                    } else {
                        mail.told += text.len() + 1;
                        msg
                    }
                }
                Outbound::Close(_) => msg,
            };
            mail.queue.push_back(msg);
            mail.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A message from outside the session: an operator's line, or a goodbye.
pub(super) fn tell(msg: Outbound, out: &mut Vec<u8>) -> Flow {
    match msg {
        Outbound::Line(text) => {
            out.extend_from_slice(text.as_bytes());
            out.push(b'\n');
            Flow::Continue
        }
        Outbound::Close(why) => {
            out.extend_from_slice(why.line().as_bytes());
            Flow::Close
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::OUTPUT_LIMIT;

    /// A client that never reads is sent one overflow goodbye, however much
    /// more the console sends it, and the queue stops growing there.
    #[test]
    fn a_client_past_its_bound_gets_one_goodbye() {
        let backlog = Backlog::default();
        let line = "x".repeat(1023);
        for _ in 0..(OUTPUT_LIMIT / 1024) * 3 {
            backlog.send(ClientId(1), Outbound::Line(line.clone()));
        }
        let mail = backlog.lock();
        let goodbyes = (mail.queue.iter())
            .filter(|m| matches!(m, Outbound::Close(Goodbye::Overflow)))
            .count();
        assert_eq!(goodbyes, 1);
        assert_eq!(mail.queue.len(), OUTPUT_LIMIT / 1024 + 1);
    }
}
