//! `chat`: clients talk with the operator at the server's console.

use std::sync::Arc;

use super::Mode;
use crate::console::Console;
use crate::session::ClientId;

/// Shows each line to the operator as `[ID] text`; the operator's answers
/// travel back through the [`Console`], so a line here needs no reply.
#[derive(Clone)]
pub struct Chat {
    console: Arc<Console>,
}

impl Chat {
    /// Chat mode talking through `console`.
    pub fn new(console: Arc<Console>) -> Self {
        Chat { console }
    }
}

impl Mode for Chat {
    fn on_line(&self, from: ClientId, line: &str, _out: &mut Vec<u8>) {
        self.console.client_said(from, line);
    }
}
