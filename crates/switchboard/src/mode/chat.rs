//! `chat`: clients talk with the operator at the server's console.

use std::sync::Arc;

use super::{Mode, ModeEntry, Speaker};
use crate::console::{print, visible};

/// `--mode chat`.
pub const ENTRY: ModeEntry = ModeEntry {
    name: "chat",
    about: "the operator at the server's console talks with the clients",
    build: || Arc::new(Chat),
    load_line: None,
    example: None,
};

/// Shows each line to the operator as `[ID] text` and makes its sender the
/// one a plain operator line answers; the operator's answers travel back
/// through the server's [`Clients`](crate::clients::Clients), so a line here
/// needs no reply.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chat;

impl Mode for Chat {
    fn on_line(&self, from: Speaker<'_>, line: &str, _out: &mut Vec<u8>) {
        from.clients.spoke(from.id);
        print(format_args!("[{}] {}", from.id, visible(line)));
    }

    fn talks_with_operator(&self) -> bool {
        true
    }
}
