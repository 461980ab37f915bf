//! What a line means: the per-line behaviour, apart from how connections are
//! served.
//!
//! A [`Mode`] gets one line and appends its reply lines to the connection's
//! output buffer. It never sees sockets, so any model can run any mode.
//! [`MODES`] is the one list of modes: `--mode`, the tests and `compare` all
//! read it, so a new mode is one file here and one line in that list.

pub mod calc;
mod calc_eval;
pub mod chat;
pub mod echo;
pub mod reverse;

use std::sync::Arc;

use crate::protocol::ClientId;

pub use calc::Calc;
pub use calc_eval::{evaluate, CalcError};
pub use chat::{Chat, Conversation};
pub use echo::Echo;
pub use reverse::Reverse;

/// Per-line behaviour shared by every connection of a server.
///
/// The session has already handled framing, the greeting, `bye`/`exit` and the
/// limits; a mode only answers ordinary lines.
pub trait Mode: Send + Sync {
    /// Answers one line of text (valid UTF-8, without its `\n` or `\r\n`),
    /// appending reply lines, each ending in `\n`, to `out`.
    fn on_line(&self, from: Speaker<'_>, line: &str, out: &mut Vec<u8>);

    /// Whether this mode wants each line's exact bytes: no UTF-8 check, the
    /// `\r` kept, and `Hi` not treated as a greeting. Such modes override
    /// [`Mode::on_raw_line`].
    fn is_raw(&self) -> bool {
        false
    }

    /// Answers one line as raw bytes (without its `\n`); only called when
    /// [`Mode::is_raw`] is true. `ended` says whether a `\n` ended the line:
    /// it is false only for a last line that the end of input cut short.
    fn on_raw_line(&self, from: Speaker<'_>, line: &[u8], ended: bool, out: &mut Vec<u8>) {
        let _ = ended;
        self.on_line(from, &String::from_utf8_lossy(line), out);
    }

    /// Whether every line's answer is the line itself, byte for byte, `\n`
    /// included (echo). The session may then hand whole lines straight
    /// back, without the mode seeing them one by one
    /// ([`Session::passes_through`](crate::Session::passes_through)).
    fn echoes_lines(&self) -> bool {
        false
    }

    /// The conversation with the operator, in a mode where the operator
    /// talks with the clients (chat): a plain console line then answers the
    /// client who spoke last, which the conversation remembers.
    fn conversation(&self) -> Option<&Conversation> {
        None
    }
}

/// Who sent a line, and the one way a mode reaches beyond its reply: the
/// operator. Everything else of the server stays out of a mode's sight.
#[derive(Clone, Copy)]
pub struct Speaker<'a> {
    /// The client that sent the line.
    pub id: ClientId,
    /// The operator's screen, where a chat line is shown.
    pub operator: &'a dyn Operator,
}

/// The operator's end, as a mode sees it: somewhere to show a client's line.
/// The server's console provides it; a mode never writes to stdout itself.
pub trait Operator: Send + Sync {
    /// Shows `line`, sent by client `from`, to the operator. It must not
    /// wait on the operator: an event loop calls it.
    fn show(&self, from: ClientId, line: &str);
}

/// An operator nobody watches: what a line is shown to where there is no
/// console (a mode asked for its answer alone, a test).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOperator;

impl Operator for NoOperator {
    fn show(&self, _: ClientId, _: &str) {}
}

/// One entry of [`MODES`]: a mode as `--mode NAME` finds it.
pub struct ModeEntry {
    /// The name after `--mode`.
    pub name: &'static str,
    /// One line for help texts.
    pub about: &'static str,
    /// A fresh instance.
    pub build: fn() -> Arc<dyn Mode>,
    /// A line and its reply, as a person would check the mode by hand.
    pub example: Option<(&'static str, &'static str)>,
}

/// Every mode, in the order help texts list them. A new mode is one file in
/// this folder with its `ENTRY`, and one more item here.
pub const MODES: &[ModeEntry] = &[chat::ENTRY, calc::ENTRY, echo::ENTRY, reverse::ENTRY];

impl ModeEntry {
    /// What this mode answers to `line` (a text line, without its `\n`),
    /// from a client alone on a fresh server.
    pub fn answer(&self, line: &str) -> Vec<u8> {
        let from = Speaker {
            id: ClientId(1),
            operator: &NoOperator,
        };
        let mut reply = Vec::new();
        (self.build)().on_line(from, line, &mut reply);
        reply
    }
}

/// The mode called `name` in [`MODES`].
pub fn find(name: &str) -> Option<&'static ModeEntry> {
    MODES.iter().find(|m| m.name == name)
}

/// Appends `text` and a `\n` to `out`: one reply line.
pub fn reply(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

impl std::fmt::Debug for ModeEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModeEntry")
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each mode answers a line by itself, as a load generator checks it;
    /// chat answers nothing without an operator.
    #[test]
    fn answers() {
        let answer = |name, line| String::from_utf8(find(name).unwrap().answer(line)).unwrap();
        assert_eq!(answer("echo", "abc"), "abc\n");
        assert_eq!(answer("reverse", "abc"), "cba\n");
        assert_eq!(answer("calc", "1+1+1"), "3\n");
        assert_eq!(answer("chat", "hello"), "");
    }
}
