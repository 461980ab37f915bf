//! The registry of connected clients: who is connected, how to reach each
//! one, and whether there is room for one more.
//!
//! Every model admits its clients here and only here, so `--max-clients` is
//! counted in one place, whatever the model. A client is registered with an
//! [`Outbox`]: the model's own way of getting a line to it (a writer shared
//! with a blocked thread, a channel plus a `mio::Waker` for an event loop).
//! The operator's [`Console`](crate::console::Console), a [`Mode`](crate::Mode)
//! and an application then reach any client through [`Clients::send`],
//! without knowing how it is served.
//!
//! Code that needs to know when clients come and go (to greet them, seat
//! them, notice they left) registers a hook with [`Clients::on_presence`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::protocol::{ClientId, Outbound};

/// A model's way of delivering [`Outbound`] messages to its clients.
pub trait Outbox: Send + Sync {
    /// Delivers `msg` to client `to`. It must not block for long: the
    /// operator's console and other clients' threads call it.
    fn send(&self, to: ClientId, msg: Outbound);
}

/// A client arriving or going, as reported to [`Clients::on_presence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The client is registered: lines can be sent to it from now on.
    Joined(ClientId),
    /// The client is gone: it said `bye`/`exit`, was closed, or dropped the
    /// connection. Its last reply may still be on its way out.
    Left(ClientId),
}

/// Every seat is taken: the client must be turned away with `ERR busy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

type PresenceHook = Arc<dyn Fn(Presence) + Send + Sync>;

/// The connected clients of one server.
#[derive(Default)]
pub struct Clients {
    state: Mutex<State>,
    next_id: AtomicU64,
    /// Copied out before the hooks run, so a hook may call [`Clients::send`]
    /// or register another hook without deadlocking.
    presence_hooks: Mutex<Vec<PresenceHook>>,
}

#[derive(Default)]
struct State {
    /// A hash table, not a B-tree: ids only grow, so a B-tree's nodes are
    /// split at their end and stay about half full, nearly twice the memory
    /// per seat (docs/measurements/figures-behind-the-code.md). `/list` and
    /// `@all` want them in order, and sort; a table left mostly empty by a crowd that has gone
    /// is shrunk (see [`Clients::leave`]).
    seated: HashMap<ClientId, Seat>,
}

struct Seat {
    peer: SocketAddr,
    outbox: Arc<dyn Outbox>,
}

impl Clients {
    /// An empty registry.
    pub fn new() -> Self {
        Clients::default()
    }

    /// Registers a new client reachable through `outbox`, if fewer than
    /// `seats` are connected; returns its id. The count and the insertion
    /// happen under one lock, so two threads admitting at once cannot both
    /// take the last seat.
    pub fn admit(
        &self,
        peer: SocketAddr,
        outbox: Arc<dyn Outbox>,
        seats: usize,
    ) -> Result<ClientId, Full> {
        let (id, active) = {
            let mut state = self.state();
            if state.seated.len() >= seats {
                return Err(Full);
            }
            let id = ClientId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
            state.seated.insert(id, Seat { peer, outbox });
            (id, state.seated.len())
        };
        tracing::info!(%peer, client = %id, active, "connected");
        self.announce(Presence::Joined(id));
        Ok(id)
    }

    /// Forgets a client that has gone (once; later calls do nothing).
    pub fn leave(&self, id: ClientId) {
        let (seat, active) = {
            let mut state = self.state();
            let seat = state.seated.remove(&id);
            // Unlike a B-tree's nodes, a hash table's buckets stay when its
            // entries go: after a peak of 10,000 clients, 0.9 MB would stay
            // for the rest of the run. Halving it when three quarters are
            // empty costs, over many leaves, a constant per leave.
            let (len, capacity) = (state.seated.len(), state.seated.capacity());
            if capacity > 64 && len < capacity / 4 {
                state.seated.shrink_to(capacity / 2);
            }
            (seat, state.seated.len())
        };
        if let Some(seat) = seat {
            tracing::info!(peer = %seat.peer, client = %id, active, "disconnected");
            self.announce(Presence::Left(id));
        }
    }

    /// How many clients are connected.
    pub fn count(&self) -> usize {
        self.state().seated.len()
    }

    /// The connected clients and their addresses, by id.
    pub fn list(&self) -> Vec<(ClientId, SocketAddr)> {
        self.seats_by_id(|seat| seat.peer)
    }

    /// Sends `msg` to client `id`; false if no such client is connected.
    pub fn send(&self, id: ClientId, msg: Outbound) -> bool {
        let outbox = self.state().seated.get(&id).map(|s| Arc::clone(&s.outbox));
        outbox.map(|outbox| outbox.send(id, msg)).is_some()
    }

    /// Sends `msg` to every connected client (`@all`, and the goodbye at
    /// shutdown).
    pub fn send_all(&self, msg: &Outbound) {
        // A snapshot, so no outbox is called with the registry locked; in the
        // order the clients came, as `/list` shows them.
        for (id, outbox) in self.seats_by_id(|seat| Arc::clone(&seat.outbox)) {
            outbox.send(id, msg.clone());
        }
    }

    /// Runs `hook` each time a client joins or leaves, on the model's thread
    /// and outside every registry lock: it may [`send`](Clients::send), but
    /// must not block for long, nor admit or remove clients itself.
    pub fn on_presence(&self, hook: impl Fn(Presence) + Send + Sync + 'static) {
        self.hooks().push(Arc::new(hook));
    }

    fn announce(&self, change: Presence) {
        let hooks = self.hooks().clone();
        for hook in hooks {
            hook(change);
        }
    }

    fn hooks(&self) -> MutexGuard<'_, Vec<PresenceHook>> {
        self.presence_hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// What `of` takes from each seat, copied out of the lock, in the order
    /// the clients came (ids only grow; the table keeps no order).
    fn seats_by_id<T>(&self, of: impl Fn(&Seat) -> T) -> Vec<(ClientId, T)> {
        let mut seats: Vec<_> = {
            let state = self.state();
            state
                .seated
                .iter()
                .map(|(id, seat)| (*id, of(seat)))
                .collect()
        };
        seats.sort_unstable_by_key(|&(id, _)| id);
        seats
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An outbox that records what it was asked to deliver.
    #[derive(Default)]
    pub(crate) struct Recorder(pub(crate) Mutex<Vec<(ClientId, Outbound)>>);

    impl Outbox for Recorder {
        fn send(&self, to: ClientId, msg: Outbound) {
            self.0.lock().unwrap().push((to, msg));
        }
    }

    pub(crate) fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    /// `count` clients admitted one after another, under a limit of `seats`.
    fn crowd(clients: &Clients, count: usize, seats: usize) -> Vec<ClientId> {
        let rec = Arc::new(Recorder::default());
        (0..count)
            .map(|_| clients.admit(peer(), rec.clone(), seats).unwrap())
            .collect()
    }

    /// A crowd that has gone does not pin its table: with most seats empty
    /// again, the table shrinks.
    #[test]
    fn a_crowd_that_left_frees_its_table() {
        let clients = Clients::new();
        let ids = crowd(&clients, 2_000, 5_000);
        let peak = clients.state().seated.capacity();
        for &id in &ids[10..] {
            clients.leave(id);
        }
        let after = clients.state().seated.capacity();
        assert!(
            after * 8 <= peak,
            "{peak} buckets at the peak, {after} after"
        );
        assert_eq!(clients.count(), 10);
    }

    /// `/list` names the clients in the order they came, whoever left between.
    #[test]
    fn list_is_in_order_of_arrival() {
        let clients = Clients::new();
        let ids = crowd(&clients, 50, 100);
        clients.leave(ids[7]);
        let listed: Vec<ClientId> = clients.list().into_iter().map(|(id, _)| id).collect();
        let expected: Vec<ClientId> = ids.into_iter().filter(|&id| id != ClientId(8)).collect();
        assert_eq!(listed, expected);
    }

    /// Seats are counted once: the one past the limit is refused, and a seat
    /// freed by a leaving client is taken again.
    #[test]
    fn admission_counts_seats() {
        let clients = Clients::new();
        let rec = Arc::new(Recorder::default());
        let a = clients.admit(peer(), rec.clone(), 2).unwrap();
        clients.admit(peer(), rec.clone(), 2).unwrap();
        assert_eq!(clients.admit(peer(), rec.clone(), 2), Err(Full));
        clients.leave(a);
        assert!(clients.admit(peer(), rec, 2).is_ok());
        assert_eq!(clients.count(), 2);
    }

    /// Presence hooks hear every join and every leave of a registered client,
    /// and may send to the client from inside the hook.
    #[test]
    fn presence_hooks() {
        let clients = Arc::new(Clients::new());
        let rec = Arc::new(Recorder::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, greeter) = (Arc::clone(&seen), Arc::clone(&clients));
        clients.on_presence(move |change| {
            log.lock().unwrap().push(change);
            if let Presence::Joined(id) = change {
                greeter.send(id, Outbound::Line("welcome".into()));
            }
        });
        let a = clients.admit(peer(), rec.clone(), 10).unwrap();
        clients.leave(a);
        clients.leave(a); // already gone: not reported twice
        assert_eq!(
            *seen.lock().unwrap(),
            vec![Presence::Joined(a), Presence::Left(a)]
        );
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![(a, Outbound::Line("welcome".into()))]
        );
    }

    /// Hooks run with no registry lock held: one may even add another hook.
    #[test]
    fn presence_hook_may_add_a_hook() {
        let clients = Arc::new(Clients::new());
        let inner = Arc::clone(&clients);
        clients.on_presence(move |_| inner.on_presence(|_| {}));
        clients
            .admit(peer(), Arc::new(Recorder::default()), 10)
            .unwrap();
        assert_eq!(clients.hooks().len(), 2);
    }
}
