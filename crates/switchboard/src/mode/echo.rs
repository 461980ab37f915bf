//! `echo`: every line comes back unchanged, byte for byte.

use std::sync::Arc;

use super::{Mode, ModeEntry, Speaker};

/// `--mode echo`.
pub const ENTRY: ModeEntry = ModeEntry {
    name: "echo",
    about: "every line comes back unchanged, byte for byte",
    build: || Arc::new(Echo),
    example: Some(("ping", "ping")),
};

/// Every line comes back unchanged, byte for byte — no UTF-8 check, `\r`
/// kept, and a last line that came without `\n` goes back without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl Mode for Echo {
    fn on_line(&self, from: Speaker<'_>, line: &str, out: &mut Vec<u8>) {
        self.on_raw_line(from, line.as_bytes(), true, out);
    }

    fn is_raw(&self) -> bool {
        true
    }

    fn echoes_lines(&self) -> bool {
        true
    }

    fn on_raw_line(&self, _from: Speaker<'_>, line: &[u8], ended: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(line);
        if ended {
            out.push(b'\n');
        }
    }
}
