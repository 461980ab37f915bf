//! `chat`: clients talk with the operator at the server's console.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Mode, ModeEntry, Speaker};
use crate::protocol::ClientId;

/// `--mode chat`.
pub const ENTRY: ModeEntry = ModeEntry {
    name: "chat",
    about: "the operator at the server's console talks with the clients",
    build: || Arc::new(Chat::default()),
    example: None,
};

/// Shows each line to the operator and makes its sender the one a plain
/// operator line answers; the operator's answers travel back through the
/// server's clients, so a line here needs no reply.
#[derive(Debug, Default)]
pub struct Chat {
    conversation: Conversation,
}

impl Mode for Chat {
    fn on_line(&self, from: Speaker<'_>, line: &str, _out: &mut Vec<u8>) {
        self.conversation.spoke(from.id);
        from.operator.show(from.id, line);
    }

    fn conversation(&self) -> Option<&Conversation> {
        Some(&self.conversation)
    }
}

/// Who the operator is talking with: the client who spoke last, or that
/// nobody has spoken yet. Only chat has one.
#[derive(Debug, Default)]
pub struct Conversation {
    /// The id of the client who spoke last; 0 while nobody has.
    last: AtomicU64,
}

impl Conversation {
    /// Remembers `id` as the client who spoke last.
    pub fn spoke(&self, id: ClientId) {
        self.last.store(id.0, Ordering::Relaxed);
    }

    /// The client who spoke last (it may have left since), or `None` while
    /// nobody has spoken.
    pub fn last_speaker(&self) -> Option<ClientId> {
        match self.last.load(Ordering::Relaxed) {
            0 => None,
            id => Some(ClientId(id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::Operator;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Screen(Mutex<Vec<(ClientId, String)>>);

    impl Operator for Screen {
        fn show(&self, from: ClientId, line: &str) {
            self.0.lock().unwrap().push((from, line.to_owned()));
        }
    }

    /// A line is shown to the operator, unanswered, and its sender is the
    /// one the operator answers next.
    #[test]
    fn a_line_goes_to_the_operator() {
        let chat = Chat::default();
        let screen = Screen::default();
        assert_eq!(chat.conversation().unwrap().last_speaker(), None);
        let mut out = Vec::new();
        for id in [2, 1] {
            let from = Speaker {
                id: ClientId(id),
                operator: &screen,
            };
            chat.on_line(from, "hello", &mut out);
        }
        assert!(out.is_empty());
        assert_eq!(
            *screen.0.lock().unwrap(),
            [(ClientId(2), "hello".into()), (ClientId(1), "hello".into())]
        );
        assert_eq!(
            chat.conversation().unwrap().last_speaker(),
            Some(ClientId(1))
        );
    }
}
