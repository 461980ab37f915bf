//! `reverse`: every line comes back reversed, as a person reads it.

use std::sync::Arc;

use unicode_segmentation::UnicodeSegmentation;

use super::{Mode, ModeEntry, Speaker};

/// `--mode reverse`.
pub const ENTRY: ModeEntry = ModeEntry {
    name: "reverse",
    about: "every line comes back reversed, as a person reads it",
    build: || Arc::new(Reverse),
    example: Some(("abc", "cba")),
};

/// Every line comes back reversed by grapheme clusters — the characters a
/// person sees — so `👍🏽`, `🇫🇷` and an accent on its letter stay whole
/// (reversing bytes breaks UTF-8; reversing code points breaks these).
#[derive(Debug, Clone, Copy, Default)]
pub struct Reverse;

impl Mode for Reverse {
    fn on_line(&self, _from: Speaker<'_>, line: &str, out: &mut Vec<u8>) {
        out.reserve(line.len() + 1);
        for grapheme in line.graphemes(true).rev() {
            out.extend_from_slice(grapheme.as_bytes());
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::NoOperator;
    use crate::protocol::ClientId;

    fn reversed(line: &str) -> String {
        let from = Speaker {
            id: ClientId(1),
            operator: &NoOperator,
        };
        let mut out = Vec::new();
        Reverse.on_line(from, line, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// Multi-byte text stays valid UTF-8, reversed character by character.
    #[test]
    fn reverse_by_characters() {
        assert_eq!(reversed("héllo→"), "→olléh\n");
    }

    /// Skin tones, flags and combining accents stay on what they belong to.
    #[test]
    fn graphemes_stay_whole() {
        assert_eq!(reversed("a👍🏽b🇫🇷c"), "c🇫🇷b👍🏽a\n");
        assert_eq!(reversed("e\u{301}x"), "xe\u{301}\n");
    }
}
