//! The operator's end of the server: the console commands, and stdout.
//!
//! | input        | effect                                        |
//! |--------------|-----------------------------------------------|
//! | `@ID text`   | `text` to client ID                           |
//! | `@all text`  | `text` to every client                        |
//! | `text`       | `text` to the client that spoke last          |
//! | `/list`      | the connected clients                         |
//! | `/kick ID`   | closes client ID (`ERR kicked by the operator`) |
//! | `/quit`      | shuts the server down                         |
//!
//! A [`Console`] carries out one line at a time ([`Console::operator`]); where
//! the lines come from is the caller's business. switchboard's binaries read
//! them from stdin on a thread of their own, since stdin cannot be polled
//! portably (not on Windows, not when it is a file).
//!
//! Stdout is written by a thread of its own, line by line, each flushed at
//! once: an operator who stops reading it (a pipe nobody drains, a terminal
//! paused with Ctrl-S) must never stall an event loop that prints a client's
//! chat line. While stdout is stuck, up to [`PENDING_LINES`] lines wait in
//! order; past that, lines are counted and dropped, and
//! `[console: N lines dropped]` is printed once stdout moves again. [`flush`] waits (briefly) for what is queued.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::clients::{Clients, Outbound};
use crate::session::{ClientId, Goodbye};
use crate::shutdown::Shutdown;

/// What a terminal operator of a chat server sees first: the commands, in
/// one line.
pub const BANNER: &str =
    "console: a plain line answers the last speaker; @ID text | @all text | /list | /kick ID | /quit";

/// The same, for the other modes, where clients are answered by the mode.
pub const COMMANDS_BANNER: &str = "console: @ID text | @all text | /list | /kick ID | /quit";

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
                (_, _) if text.is_empty() => {
                    Command::Invalid("nothing to send: use @ID text or @all text")
                }
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
                (Some("/kick"), _) => Command::Invalid("usage: /kick ID, with an ID from /list"),
                _ => Command::Invalid("commands: /list, /kick ID, /quit"),
            };
        }
        Command::Reply(line)
    }
}

/// The operator's commands over one server's clients.
#[derive(Clone)]
pub struct Console {
    clients: Arc<Clients>,
    shutdown: Shutdown,
}

impl Console {
    /// A console over `clients`, whose `/quit` fires `shutdown`. A server
    /// builds its own with [`Server::console`](crate::Server::console).
    pub fn new(clients: Arc<Clients>, shutdown: Shutdown) -> Self {
        Console { clients, shutdown }
    }

    /// Carries out one line of operator input.
    pub fn operator(&self, line: &str) {
        match Command::parse(line) {
            Command::To(id, text) => {
                self.send_to(id, Outbound::Line(text.to_owned()));
            }
            Command::All(text) => self.clients.send_all(&Outbound::Line(text.to_owned())),
            Command::Reply(text) => match self.clients.last_speaker() {
                Some(id) => {
                    self.send_to(id, Outbound::Line(text.to_owned()));
                }
                None => print(format_args!("{}", self.nobody_to_answer())),
            },
            Command::List => {
                let clients = self.clients.list();
                print(format_args!("{} client(s) connected", clients.len()));
                for (id, peer) in clients {
                    print(format_args!("[{id}] {peer}"));
                }
            }
            Command::Kick(id) => {
                if self.send_to(id, Outbound::Close(Goodbye::Kicked)) {
                    print(format_args!("kicked client {id}"));
                }
            }
            Command::Quit => self.shutdown.trigger(),
            Command::Nothing => {}
            Command::Invalid(help) => print(format_args!("{help}")),
        }
    }

    /// Whether client `id` was there to take `msg`; says so when not.
    fn send_to(&self, id: ClientId, msg: Outbound) -> bool {
        let sent = self.clients.send(id, msg);
        if !sent {
            print(format_args!("no client {id}"));
        }
        sent
    }

    /// Why a plain line has nobody to go to. A client's greeting (`Hi`) is
    /// not speaking: the session answers it, the operator never sees it.
    fn nobody_to_answer(&self) -> &'static str {
        match (self.clients.count(), self.clients.anyone_spoke()) {
            (0, _) => "no client is connected",
            (_, false) => "nobody has spoken yet: use @ID text or @all text",
            // Whoever is connected now has not spoken since, or would be
            // the last speaker.
            (_, true) => "nobody has spoken since the last speaker left: use @ID text or @all text",
        }
    }
}

/// `text` with its control characters shown as escapes (`\r`, `\u{1b}`), so
/// that a client's `\r[2] I am client two` or a terminal escape sequence is
/// shown to the operator, not obeyed by the terminal. Tabs stay tabs.
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| c.is_control() && c != '\t';
    if !text.contains(hidden) {
        return text.into();
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match hidden(c) {
            true => shown.extend(c.escape_default()),
            false => shown.push(c),
        }
    }
    shown.into()
}

/// Lines waiting for a stdout that is not being read, before more are dropped.
pub const PENDING_LINES: usize = 10_000;

/// A message for the stdout writer.
enum ToStdout {
    Line(String),
    /// This many lines were dropped here, while the queue was full.
    Dropped(u64),
    /// Acknowledge on this channel once everything before it is written.
    Flush(mpsc::Sender<()>),
}

/// The stdout writer's queue, started with the first line.
fn writer() -> Option<&'static SyncSender<ToStdout>> {
    static WRITER: OnceLock<Option<SyncSender<ToStdout>>> = OnceLock::new();
    WRITER
        .get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel(PENDING_LINES);
            let started = std::thread::Builder::new()
                .name("stdout".into())
                .spawn(move || write_lines(rx));
            started.ok().map(|_| tx)
        })
        .as_ref()
}

/// Lines dropped while stdout was stuck, not yet reported.
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn write_lines(lines: Receiver<ToStdout>) {
    for message in lines {
        let mut stdout = io::stdout().lock();
        match message {
            // A closed stdout is not the clients' problem: ignored, not a panic.
            ToStdout::Line(line) => {
                let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
            }
            ToStdout::Dropped(n) => {
                let _ = writeln!(stdout, "[console: {n} lines dropped]");
            }
            ToStdout::Flush(done) => {
                let _ = stdout.flush();
                let _ = done.send(());
            }
        }
    }
}

/// One line on the operator's stdout, written by the stdout thread: this
/// never waits for stdout, whoever calls it.
pub fn print(line: std::fmt::Arguments<'_>) {
    let line = line.to_string();
    let Some(writer) = writer() else {
        // No thread for stdout: write it here rather than lose it.
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
        return;
    };
    // Lines dropped before this one are reported where they were dropped:
    // first, once the queue takes messages again.
    let dropped = DROPPED.load(Ordering::Relaxed);
    if dropped > 0 && writer.try_send(ToStdout::Dropped(dropped)).is_ok() {
        DROPPED.fetch_sub(dropped, Ordering::Relaxed);
    }
    let queued = match DROPPED.load(Ordering::Relaxed) {
        0 => writer.try_send(ToStdout::Line(line)),
        _ => Err(TrySendError::Full(ToStdout::Line(line))), // keep the order
    };
    if let Err(TrySendError::Full(_)) = queued {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Waits until every line printed so far is written, or `within` passes
/// (stdout may be stuck): for a process about to exit.
pub fn flush(within: Duration) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(writer) = writer() else {
        return;
    };
    let deadline = std::time::Instant::now() + within;
    let (done, written) = mpsc::channel();
    let mut flush = ToStdout::Flush(done);
    // The queue may be full of lines still being written: wait for room.
    loop {
        match writer.try_send(flush) {
            Ok(()) => break,
            Err(TrySendError::Full(again)) if std::time::Instant::now() < deadline => {
                flush = again;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    let _ = written.recv_timeout(left);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::tests::{peer, Recorder};

    /// Control characters are shown, not passed to the terminal.
    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(visible("plain\ttext"), "plain\ttext");
        assert_eq!(visible("innocent\r[2] x"), "innocent\\r[2] x");
        assert_eq!(visible("\u{1b}[2J"), "\\u{1b}[2J");
    }

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
        let kick = Command::parse("/kick abc");
        assert_eq!(
            kick,
            Command::Invalid("usage: /kick ID, with an ID from /list")
        );
        assert!(
            matches!(Command::parse("@1"), Command::Invalid(h) if h.starts_with("nothing to send"))
        );
        assert!(
            matches!(Command::parse("@all "), Command::Invalid(h) if h.starts_with("nothing to send"))
        );
    }

    /// A plain line goes to whoever spoke last; `@all` reaches everyone;
    /// `/kick` closes; `/quit` fires the shutdown.
    #[test]
    fn routing() {
        let clients = Arc::new(Clients::new());
        let console = Console::new(Arc::clone(&clients), Shutdown::new());
        let rec = Arc::new(Recorder::default());
        let a = clients.admit(peer(), rec.clone(), 10).unwrap();
        let b = clients.admit(peer(), rec.clone(), 10).unwrap();
        clients.spoke(b);
        console.operator("hi b");
        console.operator("@all everyone");
        console.operator(&format!("/kick {a}"));
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
        console.operator("/quit");
        assert!(console.shutdown.is_triggered());
    }
}
