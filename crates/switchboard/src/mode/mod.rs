//! What a line means: the per-line behaviour, apart from how connections are served.
//!
//! A [`Mode`] gets one line and appends its reply lines to the connection's
//! output buffer. It never sees sockets, so any strategy can run any mode, and
//! a library user adds a mode by implementing this one trait.

mod calc;
mod calc_eval;
mod chat;

use crate::session::ClientId;

pub use calc::Calc;
pub use calc_eval::{evaluate, CalcError};
pub use chat::Chat;

/// Per-line behaviour shared by every connection of a server.
///
/// The session has already handled framing, the greeting, `bye`/`exit` and the
/// limits; a mode only answers ordinary lines.
pub trait Mode: Send + Sync {
    /// Answers one line of text (valid UTF-8, without its `\n` or `\r\n`),
    /// appending reply lines, each ending in `\n`, to `out`.
    fn on_line(&self, from: ClientId, line: &str, out: &mut Vec<u8>);

    /// Whether this mode wants each line's exact bytes: no UTF-8 check, the
    /// `\r` kept, and `Hi` not treated as a greeting. Such modes override
    /// [`Mode::on_raw_line`].
    fn is_raw(&self) -> bool {
        false
    }

    /// Answers one line as raw bytes (without its `\n`); only called when
    /// [`Mode::is_raw`] is true. `ended` says whether a `\n` ended the line:
    /// it is false only for a last line that the end of input cut short.
    fn on_raw_line(&self, from: ClientId, line: &[u8], ended: bool, out: &mut Vec<u8>) {
        let _ = ended;
        self.on_line(from, &String::from_utf8_lossy(line), out);
    }
}

/// Appends `text` and a `\n` to `out`: one reply line.
pub fn reply(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

/// Every line comes back unchanged, byte for byte — a last line that came
/// without `\n` goes back without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl Mode for Echo {
    fn on_line(&self, _from: ClientId, line: &str, out: &mut Vec<u8>) {
        reply(out, line);
    }

    fn is_raw(&self) -> bool {
        true
    }

    fn on_raw_line(&self, _from: ClientId, line: &[u8], ended: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(line);
        if ended {
            out.push(b'\n');
        }
    }
}

/// Every line comes back reversed by characters (not bytes).
#[derive(Debug, Clone, Copy, Default)]
pub struct Reverse;

impl Mode for Reverse {
    fn on_line(&self, _from: ClientId, line: &str, out: &mut Vec<u8>) {
        out.reserve(line.len() + 1);
        for c in line.chars().rev() {
            let mut utf8 = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reverse works on characters, so multi-byte text stays valid UTF-8.
    #[test]
    fn reverse_by_characters() {
        let mut out = Vec::new();
        Reverse.on_line(ClientId(1), "héllo→", &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "→olléh\n");
    }
}
