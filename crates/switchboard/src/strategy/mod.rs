//! How connections are served: the [`ConnectionStrategy`] trait, one file per
//! concurrency model, and [`MODELS`], the one list of them.
//!
//! A model only moves bytes between sockets and a [`Session`]; what the bytes
//! mean is decided by the session and the server's [`Mode`]. The binaries,
//! `compare` and the tests all read [`MODELS`], so a new model is one file
//! here, with its `MODEL` entry, and one more item in that list.
//!
//! [`Session`]: crate::session::Session
//! [`Mode`]: crate::Mode

mod accept;
pub mod async_tasks;
pub mod event_loop;
pub mod event_loop_workers;
pub mod io_uring;
pub mod multi_reactor;
pub mod single_client;
pub mod thread_per_client;
pub mod thread_pool;

use std::net::TcpListener;

use crate::error::Error;
use crate::protocol::{ClientId, Goodbye, Outbound};
use crate::server::Server;
use crate::session::OUTPUT_LIMIT;

pub use async_tasks::AsyncTasks;
pub use event_loop::EventLoop;
pub use event_loop_workers::EventLoopWorkers;
pub use io_uring::IoUring;
pub use multi_reactor::MultiReactor;
pub use single_client::SingleClient;
pub use thread_per_client::ThreadPerClient;
pub use thread_pool::ThreadPool;

/// A concurrency model: serves every connection arriving on a listener until
/// the server's [`Shutdown`](crate::Shutdown) fires, then tells each client
/// `ERR server shutting down` and returns.
pub trait ConnectionStrategy: Send + Sync {
    /// Serves `listener` until `server.shutdown` fires. Call it through
    /// [`serve`](crate::serve()).
    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error>;

    /// Whether the model can run here at all, asked before anything is
    /// bound: a model that needs what the system lacks says so at once.
    fn check(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// One entry of [`MODELS`]: a model as `--model NAME` finds it.
pub struct Model {
    /// The name after `--model`.
    pub name: &'static str,
    /// One line for `--model list` and help texts.
    pub about: &'static str,
    /// The model itself.
    pub strategy: &'static dyn ConnectionStrategy,
}

/// Every model, in the order a student meets them. A new model is one file
/// in this folder with its `MODEL`, and one more item here.
pub const MODELS: &[Model] = &[
    single_client::MODEL,
    thread_per_client::MODEL,
    thread_pool::MODEL,
    event_loop::MODEL,
    event_loop_workers::MODEL,
    multi_reactor::MODEL,
    async_tasks::MODEL,
    io_uring::MODEL,
];

/// A connection that is closing (after `bye`, an `ERR` line, end of input)
/// gets this long to take its last replies; a client that never reads them
/// is then closed anyway.
pub(crate) const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// How often a loop looks for idle clients: often enough that one is closed
/// within a quarter of its timeout after it expires.
pub(crate) fn idle_sweep_interval(limit: std::time::Duration) -> std::time::Duration {
    use std::time::Duration;
    (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// How long a loop may wait for events: until the first of `deadlines`
/// (its timers', each `None` when not set), from `now`; without limit if
/// none is set.
pub(crate) fn until_first(
    now: std::time::Instant,
    deadlines: impl IntoIterator<Item = Option<std::time::Instant>>,
) -> Option<std::time::Duration> {
    (deadlines.into_iter().flatten().min()).map(|at| at.saturating_duration_since(now))
}

/// A loop's clock for `--idle-timeout`: when it next looks for clients
/// silent too long, every [`idle_sweep_interval`] of the limit, so that no
/// connection needs a timer of its own.
pub(crate) struct IdleSweep {
    limit: Option<std::time::Duration>,
    next: std::time::Instant,
}

impl IdleSweep {
    /// A sweep for `limit` (none without `--idle-timeout`), first due now.
    pub(crate) fn new(limit: Option<std::time::Duration>, now: std::time::Instant) -> Self {
        IdleSweep { limit, next: now }
    }

    /// When the next sweep is due, for the loop's wait; `None` without a limit.
    pub(crate) fn next(&self) -> Option<std::time::Instant> {
        self.limit.map(|_| self.next)
    }

    /// The limit, if a sweep is due at `now`; the next one is then set.
    pub(crate) fn due(&mut self, now: std::time::Instant) -> Option<std::time::Duration> {
        let limit = self.limit.filter(|_| now >= self.next)?;
        self.next = now + idle_sweep_interval(limit);
        Some(limit)
    }
}

/// A loop's closing connections, in the order their [`CLOSE_GRACE`] runs
/// out: each gets the same grace from the moment it starts closing, so
/// arrival order is deadline order, and the loop waits for the first alone.
pub(crate) struct Closing<K>(std::collections::VecDeque<(std::time::Instant, K)>);

impl<K: Copy> Closing<K> {
    /// `key` started closing at `now`.
    pub(crate) fn push(&mut self, key: K, now: std::time::Instant) {
        self.0.push_back((now + CLOSE_GRACE, key));
    }

    /// When the first grace runs out, for the loop's wait.
    pub(crate) fn next(&self) -> Option<std::time::Instant> {
        self.0.front().map(|(by, _)| *by)
    }

    /// The next connection whose grace has run out at `now` (one already
    /// closed meanwhile is named too: closing it again must do nothing).
    pub(crate) fn expired(&mut self, now: std::time::Instant) -> Option<K> {
        match self.0.front() {
            Some((by, _)) if *by <= now => self.0.pop_front().map(|(_, key)| key),
            _ => None,
        }
    }
}

impl<K> Default for Closing<K> {
    fn default() -> Self {
        Closing(std::collections::VecDeque::new())
    }
}

/// Whether `more` bytes from outside a client's session — an operator's
/// line, a relay from another client — would take what waits for it from
/// outside past [`OUTPUT_LIMIT`], the one output bound. Then the client is
/// closed instead: the line is not queued, and this logs why, once.
///
/// `outside` counts what already waits from outside. Where a model keeps
/// a client's own replies in the same buffer, pass [`beyond_replies`] of
/// that buffer: a session's own replies never close a client, as they stop
/// its reading at [`OUTPUT_LIMIT`] instead; a client that reads, only more
/// slowly than it sends, has its own replies waiting at that point, and an
/// operator's line must still reach it.
pub(crate) fn past_output_bound(id: ClientId, outside: usize, more: usize) -> bool {
    let past = outside.saturating_add(more) > OUTPUT_LIMIT;
    if past {
        tracing::warn!(
            client = %id,
            outside,
            "client is not taking its output (over {} KiB waiting); closed",
            OUTPUT_LIMIT / 1024
        );
    }
    past
}

/// What [`add_from_outside`] did with a message.
pub(crate) enum Told {
    /// Its line was added to the output.
    Queued,
    /// A goodbye was added: the connection closes once it is sent.
    Closing,
    /// The output is past its bound: the connection must close now, its
    /// output dropped (no goodbye would get through).
    Dropped,
}

/// Adds `msg`, from outside client `id`'s session (an operator's line, a
/// relay, a goodbye), to its output through `add`, where `unsent` bytes of
/// its own replies and earlier lines already wait: a line only within the
/// one output bound. What a loop does with each outcome is its own.
pub(crate) fn add_from_outside(
    id: ClientId,
    msg: &Outbound,
    unsent: usize,
    mut add: impl FnMut(&[u8]),
) -> Told {
    match msg {
        Outbound::Line(text) => {
            if past_output_bound(id, beyond_replies(unsent), text.len() + 1) {
                return Told::Dropped;
            }
            add(text.as_bytes());
            add(b"\n");
            Told::Queued
        }
        // Its output is past the bound: no goodbye would get through.
        Outbound::Close(Goodbye::Overflow) => Told::Dropped,
        Outbound::Close(why) => {
            add(why.line().as_bytes());
            Told::Closing
        }
    }
}

/// Of a buffer holding a client's own replies and lines from outside, what
/// lies beyond the replies' allowance ([`OUTPUT_LIMIT`], where they stop the
/// client's reading): at most what came from outside.
pub(crate) fn beyond_replies(unsent: usize) -> usize {
    unsent.saturating_sub(OUTPUT_LIMIT)
}

/// The lines on their way to a loop's clients through its channel, counted
/// per client: the console's thread can outrun a loop that is short of CPU,
/// and a channel that grew for a client that never reads would be memory
/// without bound. A client with more than [`OUTPUT_LIMIT`] on its way is
/// closed instead. Only clients with lines in flight have an entry, so an
/// idle connection costs nothing here.
#[derive(Default)]
pub(crate) struct InFlight(std::sync::Mutex<std::collections::HashMap<ClientId, usize>>);

impl InFlight {
    /// What to queue for `to` in place of `msg`, counting a line on its way:
    /// the message itself; the overflow goodbye once the client has passed
    /// its bound (`usize::MAX` marks it until the loop takes that goodbye);
    /// nothing while that goodbye is on its way.
    pub(crate) fn admit(&self, to: ClientId, msg: Outbound) -> Option<Outbound> {
        let Outbound::Line(text) = &msg else {
            return Some(msg);
        };
        let len = text.len() + 1;
        let mut counts = self.counts();
        let queued = counts.entry(to).or_insert(0);
        if *queued == usize::MAX {
            return None;
        }
        if past_output_bound(to, *queued, len) {
            *queued = usize::MAX;
            return Some(Outbound::Close(Goodbye::Overflow));
        }
        *queued += len;
        Some(msg)
    }

    /// The loop has taken `msg` for `to` off its channel.
    pub(crate) fn took(&self, to: ClientId, msg: &Outbound) {
        let len = match msg {
            Outbound::Line(text) => text.len() + 1,
            Outbound::Close(_) => 0,
        };
        self.taken(to, len);
    }

    /// The loop has taken a line of `len` bytes for `to` (or the goodbye
    /// that closed it, with `len` 0).
    fn taken(&self, to: ClientId, len: usize) {
        let mut counts = self.counts();
        if let Some(queued) = counts.get_mut(&to) {
            *queued = match *queued {
                usize::MAX if len == 0 => 0,
                usize::MAX => usize::MAX,
                n => n.saturating_sub(len),
            };
            if *queued == 0 {
                counts.remove(&to);
            }
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<ClientId, usize>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How the console's thread wakes a loop that has mail: a `mio::Waker`,
/// a byte on a socket the loop always listens to, ...
pub(crate) trait Wake: Send + Sync + 'static {
    /// Makes the loop look at its [`Inbox`] soon; never blocks.
    fn wake(&self);
}

impl<T: Wake + ?Sized> Wake for std::sync::Arc<T> {
    fn wake(&self) {
        T::wake(self)
    }
}

/// The console's way into a loop: the message is queued in a channel and
/// the loop woken; lines on their way are counted, so that a client that
/// does not read is closed rather than queued for without bound
/// ([`InFlight`]). Handed to the registry for every client of the loop.
pub(crate) struct Mailbox<W> {
    tx: std::sync::mpsc::Sender<(ClientId, Outbound)>,
    waker: W,
    in_flight: InFlight,
}

impl<W: Wake> crate::clients::Outbox for Mailbox<W> {
    fn send(&self, to: ClientId, msg: Outbound) {
        let Some(msg) = self.in_flight.admit(to, msg) else {
            return;
        };
        if self.tx.send((to, msg)).is_ok() {
            self.waker.wake();
        }
    }
}

/// The loop's end of its [`Mailbox`]: what the console queued, taken when
/// the loop is woken.
pub(crate) struct Inbox<W> {
    rx: std::sync::mpsc::Receiver<(ClientId, Outbound)>,
    mailbox: std::sync::Arc<Mailbox<W>>,
}

impl<W: Wake> Inbox<W> {
    /// A mailbox that wakes its loop through `waker`, and the loop's end.
    pub(crate) fn new(waker: W) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let in_flight = InFlight::default();
        let mailbox = std::sync::Arc::new(Mailbox {
            tx,
            waker,
            in_flight,
        });
        Inbox { rx, mailbox }
    }

    /// The mailbox, for the registry to hand each client's messages to.
    pub(crate) fn mailbox(&self) -> std::sync::Arc<Mailbox<W>> {
        std::sync::Arc::clone(&self.mailbox)
    }

    /// The next message queued, if any.
    pub(crate) fn next(&self) -> Option<(ClientId, Outbound)> {
        let (to, msg) = self.rx.try_recv().ok()?;
        self.mailbox.in_flight.took(to, &msg);
        Some((to, msg))
    }
}

/// The model called `name` in [`MODELS`].
pub fn find(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.name == name)
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("name", &self.name).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Without a limit no sweep is ever due; with one, the first is due at
    /// once and the next a sweep interval later.
    #[test]
    fn idle_sweeps_come_at_their_interval() {
        let start = Instant::now();
        let mut off = IdleSweep::new(None, start);
        assert_eq!(
            (off.next(), off.due(start + Duration::from_secs(60))),
            (None, None)
        );
        let limit = Duration::from_secs(2);
        let mut sweep = IdleSweep::new(Some(limit), start);
        assert_eq!(sweep.due(start), Some(limit));
        let next = start + idle_sweep_interval(limit);
        assert_eq!(sweep.next(), Some(next));
        assert_eq!(sweep.due(next - Duration::from_millis(1)), None);
        assert_eq!(sweep.due(next), Some(limit));
    }

    /// A line from outside is added within the bound and refused past it;
    /// a goodbye is added and closes; the overflow goodbye adds nothing.
    #[test]
    fn messages_from_outside_meet_the_one_bound() {
        let mut out = Vec::new();
        let line = Outbound::Line("hello".into());
        let told = add_from_outside(ClientId(1), &line, 0, |b| out.extend_from_slice(b));
        assert!(matches!(told, Told::Queued));
        assert_eq!(out, b"hello\n");
        let full = 2 * OUTPUT_LIMIT;
        let told = add_from_outside(ClientId(1), &line, full, |b| out.extend_from_slice(b));
        assert!(matches!(told, Told::Dropped));
        let bye = Outbound::Close(Goodbye::ShuttingDown);
        let told = add_from_outside(ClientId(1), &bye, 0, |b| out.extend_from_slice(b));
        assert!(matches!(told, Told::Closing));
        assert!(out.ends_with(Goodbye::ShuttingDown.line().as_bytes()));
        let overflow = Outbound::Close(Goodbye::Overflow);
        let before = out.len();
        let told = add_from_outside(ClientId(1), &overflow, 0, |b| out.extend_from_slice(b));
        assert!(matches!(told, Told::Dropped) && out.len() == before);
    }

    /// Connections come out of `Closing` in the order they started closing,
    /// each once its grace has run out, and not before.
    #[test]
    fn closing_connections_expire_in_order_after_their_grace() {
        let start = Instant::now();
        let mut closing = Closing::default();
        closing.push(1, start);
        closing.push(2, start + Duration::from_secs(1));
        assert_eq!(closing.next(), Some(start + CLOSE_GRACE));
        assert_eq!(
            closing.expired(start + CLOSE_GRACE - Duration::from_millis(1)),
            None
        );
        let late = start + CLOSE_GRACE + Duration::from_secs(1);
        assert_eq!(closing.expired(late), Some(1));
        assert_eq!(closing.expired(late), Some(2));
        assert_eq!((closing.expired(late), closing.next()), (None, None));
    }
}
