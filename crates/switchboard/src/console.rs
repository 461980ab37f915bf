//! The operator console: who is connected, and the operator's commands.
//!
//! Strategies register each client with an [`Outbox`] — their own way of
//! getting a line to that client (a locked socket for the blocking strategies,
//! a channel plus a `mio::Waker` for the poll loop). The console then routes the
//! operator's input without knowing how connections are served:
//!
//! | input        | effect                                        |
//! |--------------|-----------------------------------------------|
//! | `@ID text`   | `text` to client ID                           |
//! | `@all text`  | `text` to every client                        |
//! | `text`       | `text` to the client that spoke last          |
//! | `/list`      | the connected clients                         |
//! | `/kick ID`   | closes client ID                              |
//! | `/quit`      | shuts the server down                         |
//!
//! Code that needs to know when clients come and go — to greet them, seat
//! them, or notice they left — registers a hook with [`Console::on_presence`].
//!
//! Stdin cannot be polled portably (not on Windows, not when it is a file), so
//! [`Console::spawn_stdin`] reads it on a thread of its own. End of input just
//! ends that thread: the server keeps serving.
//!
//! Stdout is written directly, line by line. In chat mode the thread serving a
//! client prints its lines, so an operator who stops reading stdout (a pipe
//! nobody drains, a terminal paused with Ctrl-S) makes chat wait for them; a
//! printer thread would avoid that, but SPEC section 5 allows the event loop no
//! thread beyond the console reader and the signal handler. Shutdown still ends
//! the process within a second: [`run`](crate::run()) enforces a deadline.

use std::collections::BTreeMap;
use std::io::{self, BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::session::{ClientId, Goodbye};
use crate::shutdown::Shutdown;

/// Something the console (or the server) needs delivered to one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// One line of text from the operator (sent with a `\n` added).
    Line(String),
    /// Send the `ERR` line for this reason, then close the connection.
    Close(Goodbye),
}

/// A strategy's way of delivering [`Outbound`] messages to its clients.
pub trait Outbox: Send + Sync {
    /// Delivers `msg` to client `to`. It must not block for long: the console
    /// thread calls it.
    fn send(&self, to: ClientId, msg: Outbound);
}

/// One operator command, parsed from a console line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `@ID text`
    To(ClientId, &'a str),
    /// `@all text`
    All(&'a str),
    /// A plain line: to whoever spoke last.
    Reply(&'a str),
    /// `/list`
    List,
    /// `/kick ID`
    Kick(ClientId),
    /// `/quit`
    Quit,
    /// Blank input.
    Nothing,
    /// Anything else starting with `@` or `/`: the help text says why.
    Invalid(&'a str),
}

impl<'a> Command<'a> {
    /// Parses one line typed by the operator.
    pub fn parse(line: &'a str) -> Self {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return Command::Nothing;
        }
        if let Some(rest) = line.strip_prefix('@') {
            let (target, text) = rest.split_once(' ').unwrap_or((rest, ""));
            return match (target, target.parse()) {
                ("all", _) => Command::All(text),
                (_, Ok(id)) => Command::To(ClientId(id), text),
                _ => Command::Invalid("use @ID text or @all text"),
            };
        }
        if line.starts_with('/') {
            let mut words = line.split_whitespace();
            return match (words.next(), words.next().map(str::parse)) {
                (Some("/list"), None) => Command::List,
                (Some("/quit"), None) => Command::Quit,
                (Some("/kick"), Some(Ok(id))) => Command::Kick(ClientId(id)),
                _ => Command::Invalid("commands: /list, /kick ID, /quit"),
            };
        }
        Command::Reply(line)
    }
}

/// A client arriving or going, as reported to [`Console::on_presence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The client is registered: lines can be sent to it from now on.
    Joined(ClientId),
    /// The client is gone: it said `bye`/`exit`, was closed, or dropped the
    /// connection. Its last reply may still be on its way out.
    Left(ClientId),
}

type PresenceHook = Arc<dyn Fn(Presence) + Send + Sync>;

/// The registry of connected clients and the operator's end of the chat.
#[derive(Default)]
pub struct Console {
    state: Mutex<State>,
    next_id: AtomicU64,
    /// Copied out before the hooks run, so a hook may call [`Console::send`]
    /// or register another hook without deadlocking.
    presence_hooks: Mutex<Vec<PresenceHook>>,
}

#[derive(Default)]
struct State {
    clients: BTreeMap<ClientId, Client>,
    last_speaker: Option<ClientId>,
}

struct Client {
    peer: SocketAddr,
    outbox: Arc<dyn Outbox>,
}

impl Console {
    /// An empty console.
    pub fn new() -> Arc<Self> {
        Arc::new(Console::default())
    }

    /// Registers a new client reachable through `outbox`; returns its id.
    pub fn join(&self, peer: SocketAddr, outbox: Arc<dyn Outbox>) -> ClientId {
        let id = ClientId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let active = {
            let mut state = self.state();
            state.clients.insert(id, Client { peer, outbox });
            state.clients.len()
        };
        tracing::info!(%peer, client = %id, active, "connected");
        self.announce(Presence::Joined(id));
        id
    }

    /// Forgets a client that has gone.
    pub fn leave(&self, id: ClientId) {
        let (peer, active) = {
            let mut state = self.state();
            let client = state.clients.remove(&id);
            if state.last_speaker == Some(id) {
                state.last_speaker = None;
            }
            (client.map(|c| c.peer), state.clients.len())
        };
        if let Some(peer) = peer {
            tracing::info!(%peer, client = %id, active, "disconnected");
            self.announce(Presence::Left(id));
        }
    }

    /// Runs `hook` each time a client joins or leaves, on the strategy's
    /// thread and outside every console lock: it may [`send`](Console::send),
    /// but must not block for long, nor join or leave clients itself.
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

    /// How many clients are connected.
    pub fn active(&self) -> usize {
        self.state().clients.len()
    }

    /// A client's line in chat mode: shown as `[ID] text`, and that client
    /// becomes the one a plain operator line answers.
    pub fn client_said(&self, from: ClientId, text: &str) {
        self.state().last_speaker = Some(from);
        print(format_args!("[{from}] {text}"));
    }

    /// Sends `msg` to every connected client (`@all`, and the goodbye at shutdown).
    pub fn send_all(&self, msg: &Outbound) {
        for (id, outbox) in self.outboxes() {
            outbox.send(id, msg.clone());
        }
    }

    /// Carries out one line of operator input.
    pub fn operator(&self, line: &str, shutdown: &Shutdown) {
        match Command::parse(line) {
            Command::To(id, text) => self.send_to(id, Outbound::Line(text.to_owned())),
            Command::All(text) => self.send_all(&Outbound::Line(text.to_owned())),
            Command::Reply(text) => {
                let last_speaker = self.state().last_speaker;
                match last_speaker {
                    Some(id) => self.send_to(id, Outbound::Line(text.to_owned())),
                    None => print(format_args!(
                        "nobody has spoken yet: use @ID text or @all text"
                    )),
                }
            }
            Command::List => self.list(),
            Command::Kick(id) => self.send_to(id, Outbound::Close(Goodbye::Kicked)),
            Command::Quit => shutdown.trigger(),
            Command::Nothing => {}
            Command::Invalid(help) => print(format_args!("{help}")),
        }
    }

    /// Reads operator input from stdin on a thread of its own until it ends.
    pub fn spawn_stdin(self: &Arc<Self>, shutdown: Shutdown) {
        if io::stdin().is_terminal() {
            print(format_args!(
                "console: a plain line answers the last speaker; @ID text | @all text | /list | /kick ID | /quit"
            ));
        }
        let console = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("console".into())
            .spawn(move || {
                for line in io::stdin().lock().lines() {
                    match line {
                        Ok(line) => console.operator(&line, &shutdown),
                        Err(e) => {
                            tracing::warn!("console input: {e}");
                            break;
                        }
                    }
                    if shutdown.is_triggered() {
                        break;
                    }
                }
                tracing::debug!("console input ended; still serving");
            });
        if let Err(e) = spawned {
            tracing::warn!("no operator console: {e}");
        }
    }

    /// Sends `msg` to client `id`; false if no such client is connected.
    pub fn send(&self, id: ClientId, msg: Outbound) -> bool {
        let outbox = self.state().clients.get(&id).map(|c| Arc::clone(&c.outbox));
        outbox.map(|outbox| outbox.send(id, msg)).is_some()
    }

    fn send_to(&self, id: ClientId, msg: Outbound) {
        if !self.send(id, msg) {
            print(format_args!("no client {id}"));
        }
    }

    fn list(&self) {
        let lines: Vec<String> = {
            let state = self.state();
            state
                .clients
                .iter()
                .map(|(id, c)| format!("[{id}] {}", c.peer))
                .collect()
        };
        print(format_args!("{} client(s) connected", lines.len()));
        for line in lines {
            print(format_args!("{line}"));
        }
    }

    /// A snapshot, so no outbox is called with the registry locked.
    fn outboxes(&self) -> Vec<(ClientId, Arc<dyn Outbox>)> {
        let state = self.state();
        state
            .clients
            .iter()
            .map(|(id, c)| (*id, Arc::clone(&c.outbox)))
            .collect()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One line on the operator's stdout, flushed at once (scripts wait for
/// lines such as `listening on`). A closed stdout is not the clients' problem,
/// so write errors are ignored rather than panicking like `println!`.
pub(crate) fn print(line: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each operator form parses to its command; bad ones get help, not a guess.
    #[test]
    fn parse_commands() {
        assert_eq!(
            Command::parse("@2 hi there"),
            Command::To(ClientId(2), "hi there")
        );
        assert_eq!(Command::parse("@all hello"), Command::All("hello"));
        assert_eq!(Command::parse("just text\r"), Command::Reply("just text"));
        assert_eq!(Command::parse("/list"), Command::List);
        assert_eq!(Command::parse("/kick 7"), Command::Kick(ClientId(7)));
        assert_eq!(Command::parse("/quit"), Command::Quit);
        assert_eq!(Command::parse("   "), Command::Nothing);
        assert!(matches!(Command::parse("@bob hi"), Command::Invalid(_)));
        assert!(matches!(Command::parse("/kick x"), Command::Invalid(_)));
        assert!(matches!(Command::parse("/nope"), Command::Invalid(_)));
    }

    struct Recorder(Mutex<Vec<(ClientId, Outbound)>>);

    impl Outbox for Recorder {
        fn send(&self, to: ClientId, msg: Outbound) {
            self.0.lock().unwrap().push((to, msg));
        }
    }

    /// A plain line goes to whoever spoke last; `@all` reaches everyone; `/kick` closes.
    #[test]
    fn routing() {
        let console = Console::new();
        let rec = Arc::new(Recorder(Mutex::new(Vec::new())));
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let a = console.join(peer, rec.clone());
        let b = console.join(peer, rec.clone());
        let stop = Shutdown::new();
        console.client_said(b, "hello");
        console.operator("hi b", &stop);
        console.operator("@all everyone", &stop);
        console.operator(&format!("/kick {a}"), &stop);
        let line = |s: &str| Outbound::Line(s.into());
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![
                (b, line("hi b")),
                (a, line("everyone")),
                (b, line("everyone")),
                (a, Outbound::Close(Goodbye::Kicked)),
            ]
        );
        console.operator("/quit", &stop);
        assert!(stop.is_triggered());
    }

    /// Presence hooks hear every join and every leave of a registered client,
    /// and may send to the client from inside the hook.
    #[test]
    fn presence_hooks() {
        let console = Console::new();
        let rec = Arc::new(Recorder(Mutex::new(Vec::new())));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, greeter) = (Arc::clone(&seen), Arc::clone(&console));
        console.on_presence(move |change| {
            log.lock().unwrap().push(change);
            if let Presence::Joined(id) = change {
                greeter.send(id, Outbound::Line("welcome".into()));
            }
        });
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let a = console.join(peer, rec.clone());
        console.leave(a);
        console.leave(a); // already gone: not reported twice
        assert_eq!(
            *seen.lock().unwrap(),
            vec![Presence::Joined(a), Presence::Left(a)]
        );
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![(a, Outbound::Line("welcome".into()))]
        );
    }

    /// Hooks run with no console lock held: one may even add another hook.
    #[test]
    fn presence_hook_may_add_a_hook() {
        let console = Console::new();
        let inner = Arc::clone(&console);
        console.on_presence(move |_| inner.on_presence(|_| {}));
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        console.join(peer, Arc::new(Recorder(Mutex::new(Vec::new()))));
        assert_eq!(console.hooks().len(), 2);
    }
}
