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
//! Stdout is written directly, line by line, and flushed at once. In chat mode
//! the thread serving a client prints its lines, so an operator who stops
//! reading stdout (a pipe nobody drains, a terminal paused with Ctrl-S) makes
//! chat wait for them.

use std::io::{self, Write};
use std::sync::Arc;

use crate::clients::{Clients, Outbound};
use crate::session::{ClientId, Goodbye};
use crate::shutdown::Shutdown;

/// What a terminal operator sees first: the commands, in one line.
pub const BANNER: &str =
    "console: a plain line answers the last speaker; @ID text | @all text | /list | /kick ID | /quit";

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
            Command::To(id, text) => self.send_to(id, Outbound::Line(text.to_owned())),
            Command::All(text) => self.clients.send_all(&Outbound::Line(text.to_owned())),
            Command::Reply(text) => match self.clients.last_speaker() {
                Some(id) => self.send_to(id, Outbound::Line(text.to_owned())),
                None => print(format_args!(
                    "nobody has spoken yet: use @ID text or @all text"
                )),
            },
            Command::List => {
                let clients = self.clients.list();
                print(format_args!("{} client(s) connected", clients.len()));
                for (id, peer) in clients {
                    print(format_args!("[{id}] {peer}"));
                }
            }
            Command::Kick(id) => self.send_to(id, Outbound::Close(Goodbye::Kicked)),
            Command::Quit => self.shutdown.trigger(),
            Command::Nothing => {}
            Command::Invalid(help) => print(format_args!("{help}")),
        }
    }

    fn send_to(&self, id: ClientId, msg: Outbound) {
        if !self.clients.send(id, msg) {
            print(format_args!("no client {id}"));
        }
    }
}

/// One line on the operator's stdout, flushed at once (scripts wait for
/// lines such as `listening on`). A closed stdout is not the clients' problem,
/// so write errors are ignored rather than panicking like `println!`.
pub fn print(line: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::tests::{peer, Recorder};

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
