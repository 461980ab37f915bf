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
//! What the operator sees goes to a [`Screen`]. The one switchboard's
//! binaries start ([`Screen::start`]) writes stdout on a thread of its own,
//! line by line, each flushed at once: an operator who stops reading it (a
//! pipe nobody drains, a terminal paused with Ctrl-S) must never stall an
//! event loop that shows a client's chat line. While stdout is stuck, up to
//! [`PENDING_LINES`] lines and [`PENDING_BYTES`] wait in order; past that,
//! lines are counted and dropped, and `[console: N lines dropped]` is
//! printed once stdout moves again. [`Screen::flush`] waits (briefly) for
//! what is queued. The library itself starts no thread: a [`Server`] made
//! without one writes stdout directly ([`Screen::direct`]).
//!
//! [`Server`]: crate::Server

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::clients::Clients;
use crate::mode::{Conversation, Mode, Operator};
use crate::protocol::{ClientId, Goodbye, Outbound};
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
    screen: Screen,
    /// For a plain line's addressee: the client who spoke last, in chat.
    mode: Arc<dyn Mode>,
}

impl Console {
    /// A console over `clients`, whose `/quit` fires `shutdown`, answering
    /// on `screen`. A server builds its own with
    /// [`Server::console`](crate::Server::console).
    pub fn new(
        clients: Arc<Clients>,
        shutdown: Shutdown,
        screen: Screen,
        mode: Arc<dyn Mode>,
    ) -> Self {
        Console {
            clients,
            shutdown,
            screen,
            mode,
        }
    }

    /// Carries out one line of operator input.
    pub fn operator(&self, line: &str) {
        let screen = &self.screen;
        match Command::parse(line) {
            Command::To(id, text) => {
                self.send_to(id, Outbound::Line(text.to_owned()));
            }
            Command::All(text) => self.clients.send_all(&Outbound::Line(text.to_owned())),
            Command::Reply(text) => {
                let last = self
                    .mode
                    .conversation()
                    .and_then(Conversation::last_speaker);
                let line = || Outbound::Line(text.to_owned());
                if !last.is_some_and(|id| self.clients.send(id, line())) {
                    screen.print(format_args!("{}", self.nobody_to_answer(last)));
                }
            }
            Command::List => {
                let clients = self.clients.list();
                screen.print(format_args!("{} client(s) connected", clients.len()));
                for (id, peer) in clients {
                    screen.print(format_args!("[{id}] {peer}"));
                }
            }
            Command::Kick(id) => {
                if self.send_to(id, Outbound::Close(Goodbye::Kicked)) {
                    screen.print(format_args!("kicked client {id}"));
                }
            }
            Command::Quit => self.shutdown.trigger(),
            Command::Nothing => {}
            Command::Invalid(help) => screen.print(format_args!("{help}")),
        }
    }

    /// Why a plain line has nobody to go to, given the client who spoke
    /// last (in chat). A client's greeting (`Hi`) is not speaking: the
    /// session answers it, and the operator never sees it.
    fn nobody_to_answer(&self, last: Option<ClientId>) -> &'static str {
        match (self.clients.count(), last) {
            (0, _) => "no client is connected",
            (_, None) => "nobody has spoken yet: use @ID text or @all text",
            (_, Some(_)) => {
                "nobody has spoken since the last speaker left: use @ID text or @all text"
            }
        }
    }

    /// Sends `msg` to client `id`; says so on the screen if there is none.
    fn send_to(&self, id: ClientId, msg: Outbound) -> bool {
        let sent = self.clients.send(id, msg);
        if !sent {
            self.screen.print(format_args!("no client {id}"));
        }
        sent
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

/// Bytes waiting for a stdout that is not being read, before more lines are
/// dropped: a count of lines alone would let long lines (a client's 64 KiB
/// of control characters, each shown as a 5-byte escape) pin gigabytes.
pub const PENDING_BYTES: usize = 1 << 20;

/// A message for the stdout writer.
enum ToStdout {
    Line(String),
    /// This many lines were dropped here, while the queue was full.
    Dropped(u64),
    /// Acknowledge on this channel once everything before it is written.
    Flush(mpsc::Sender<()>),
}

/// The operator's screen: where the console's answers and the chat lines
/// of clients go. Cheap to clone; every clone is the same screen.
#[derive(Clone)]
pub struct Screen(Arc<ScreenState>);

struct ScreenState {
    /// The stdout thread's queue; `None` for a screen written directly.
    writer: Option<SyncSender<ToStdout>>,
    /// Lines dropped while stdout was stuck, not yet reported.
    dropped: AtomicU64,
    /// Bytes of the lines queued for the stdout thread, not yet written.
    queued: Arc<Room>,
    /// One flush at a time.
    flushing: Mutex<()>,
}

impl Screen {
    /// Stdout, written by a thread started here: a line never waits for
    /// stdout, whoever shows it. switchboard's binaries start one and hand
    /// it to their server. If no thread can be started, it writes directly.
    pub fn start() -> Screen {
        let (tx, rx) = mpsc::sync_channel(PENDING_LINES);
        let screen = Screen::with_writer(Some(tx));
        let queued = Arc::clone(&screen.0.queued);
        let started = std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || write_lines(rx, &queued));
        match started {
            Ok(_) => screen,
            Err(_) => Screen::direct(),
        }
    }

    /// Stdout, written by whoever shows a line, waiting for it: no thread.
    /// A server made by the library alone has this one; a stdout that
    /// nobody reads then stalls whoever prints, an event loop included.
    pub fn direct() -> Screen {
        Screen::with_writer(None)
    }

    fn with_writer(writer: Option<SyncSender<ToStdout>>) -> Screen {
        Screen(Arc::new(ScreenState {
            writer,
            dropped: AtomicU64::new(0),
            queued: Arc::new(Room(AtomicUsize::new(0))),
            flushing: Mutex::new(()),
        }))
    }

    /// One line on the operator's screen.
    pub fn print(&self, line: std::fmt::Arguments<'_>) {
        let line = line.to_string();
        let state = &*self.0;
        let Some(writer) = &state.writer else {
            let mut stdout = io::stdout().lock();
            let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
            return;
        };
        // Lines dropped before this one are reported where they were
        // dropped: first, once the queue takes messages again.
        let dropped = state.dropped.load(Ordering::Relaxed);
        if dropped > 0 && writer.try_send(ToStdout::Dropped(dropped)).is_ok() {
            state.dropped.fetch_sub(dropped, Ordering::Relaxed);
        }
        let len = line.len();
        let room = state.dropped.load(Ordering::Relaxed) == 0 && state.queued.take(len);
        let queued = match room {
            true => writer.try_send(ToStdout::Line(line)).inspect_err(|_| {
                state.queued.give_back(len);
            }),
            // Keep the order: nothing overtakes lines already dropped.
            false => Err(TrySendError::Full(ToStdout::Line(line))),
        };
        if let Err(TrySendError::Full(_)) = queued {
            state.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every line shown so far is written, or `within` passes
    /// (stdout may be stuck): for a process about to exit.
    pub fn flush(&self, within: Duration) {
        let state = &*self.0;
        let _one = state
            .flushing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(writer) = &state.writer else {
            let _ = io::stdout().lock().flush();
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
}

impl Default for Screen {
    fn default() -> Self {
        Screen::direct()
    }
}

impl Operator for Screen {
    /// A client's chat line, as `[ID] text`, its control characters shown.
    fn show(&self, from: ClientId, line: &str) {
        self.print(format_args!("[{from}] {}", visible(line)));
    }
}

/// Room for queued bytes, up to [`PENDING_BYTES`].
struct Room(AtomicUsize);

impl Room {
    /// Takes room for `len` bytes; false if they do not fit.
    fn take(&self, len: usize) -> bool {
        let taken = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |queued| {
                (queued + len <= PENDING_BYTES).then_some(queued + len)
            });
        taken.is_ok()
    }

    /// Gives back the room of `len` bytes, written or not queued after all.
    fn give_back(&self, len: usize) {
        self.0.fetch_sub(len, Ordering::Relaxed);
    }
}

fn write_lines(lines: Receiver<ToStdout>, queued: &Room) {
    for message in lines {
        let mut stdout = io::stdout().lock();
        match message {
            // A closed stdout is not the clients' problem: ignored, not a panic.
            ToStdout::Line(line) => {
                let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
                queued.give_back(line.len());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::tests::{peer, Recorder};

    /// The stdout queue is bounded in bytes, not only in lines: long lines
    /// fill it long before ten thousand of them do, and the room comes back
    /// as lines are written.
    #[test]
    fn the_stdout_queue_is_bounded_in_bytes() {
        let room = Room(AtomicUsize::new(0));
        let line = 64 * 1024 * 5; // a 64 KiB line of control characters, shown
        let fit = (0..PENDING_LINES).take_while(|_| room.take(line)).count();
        assert_eq!(fit, PENDING_BYTES / line);
        assert!(!room.take(line));
        room.give_back(line);
        assert!(room.take(line));
        assert!(room.take(PENDING_BYTES - fit * line));
        assert!(!room.take(1));
    }

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
        let chat = Arc::new(crate::mode::Chat::default());
        let console = Console::new(
            Arc::clone(&clients),
            Shutdown::new(),
            Screen::direct(),
            chat.clone(),
        );
        let rec = Arc::new(Recorder::default());
        let a = clients.admit(peer(), rec.clone(), 10).unwrap();
        let b = clients.admit(peer(), rec.clone(), 10).unwrap();
        chat.conversation().unwrap().spoke(b);
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
