//! `calc`: each line is an arithmetic expression and the reply is its value —
//! the original form of this coursework, without `eval`.

use std::sync::Arc;

use super::{calc_eval::evaluate, reply, Mode, ModeEntry, Speaker};

/// `--mode calc`.
pub const ENTRY: ModeEntry = ModeEntry {
    name: "calc",
    about: "each line is an arithmetic expression; the reply is its value",
    build: || Arc::new(Calc),
    example: Some(("6*7", "42")),
};

/// Evaluates each line as arithmetic (`2+3*4` → `14`); a bad expression gets
/// `invalid expression: REASON` and the session goes on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Calc;

impl Mode for Calc {
    fn on_line(&self, _from: Speaker<'_>, line: &str, out: &mut Vec<u8>) {
        match evaluate(line) {
            Ok(value) => reply(out, &value),
            Err(e) => reply(out, &format!("invalid expression: {e}")),
        }
    }
}
