//! Properties of the protocol without I/O, over generated input: framing is
//! by line, never by read size, for every mode; and calc answers anything.

use proptest::prelude::*;
use switchboard::mode::{evaluate, NoOperator, MODES};
use switchboard::session::{Context, Flow};
use switchboard::{ClientId, Limits, Session};

/// Feeds `input` to a fresh session of `mode` in the pieces `cuts` make,
/// then ends the input; returns every byte the session answered. With
/// `through`, each piece first goes by [`Session::passes_through`], as the
/// event loop and thread-per-client feed it.
fn replies(mode: &str, input: &[u8], cuts: &[usize], through: bool) -> Vec<u8> {
    let entry = switchboard::mode::find(mode).expect("a listed mode");
    let mode = (entry.build)();
    let limits = Limits {
        max_line: 64,
        ..Limits::default()
    };
    let context = Context::new(&*mode, &limits, &NoOperator);
    let mut session = Session::new(ClientId(1));
    let mut out = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut start = 0;
    for end in cuts.into_iter().chain([input.len()]) {
        let piece = &input[start..end.max(start)];
        let echoed = match through {
            true => session.passes_through(&context, piece),
            false => 0,
        };
        out.extend_from_slice(&piece[..echoed]);
        if session.on_bytes(&context, &piece[echoed..], &mut out) == Flow::Close {
            return out;
        }
        while session.has_backlog() {
            if session.resume(&context, &mut out) == Flow::Close {
                return out;
            }
        }
        start = end.max(start);
    }
    session.on_eof(&context, &mut out);
    out
}

/// Lines of a few words, sometimes `\r\n`, sometimes not UTF-8, sometimes
/// too long, sometimes `bye`.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "[a-z0-9+*/ ()-]{0,12}".prop_map(String::into_bytes),
        Just(b"Hi".to_vec()),
        Just(b"bye".to_vec()),
        Just(vec![0xff, 0xfe]),
        Just(vec![b'x'; 70]),
        "[\\PC]{0,6}".prop_map(String::into_bytes),
    ];
    let ending = prop_oneof![Just(b"\n".to_vec()), Just(b"\r\n".to_vec())];
    prop::collection::vec((line, ending), 0..12).prop_map(|lines| {
        lines
            .into_iter()
            .flat_map(|(l, e)| [l, e].concat())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any byte stream, cut anywhere into any number of reads, gets exactly
    /// the replies it gets in one piece, in every mode but chat (whose
    /// replies come from the operator) — whether whole lines pass straight
    /// through (echo) or not.
    #[test]
    fn replies_do_not_depend_on_how_input_is_cut(
        input in stream(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        for mode in MODES.iter().filter(|m| m.name != "chat") {
            let whole = replies(mode.name, &input, &[], false);
            let cut = replies(mode.name, &input, &cuts, true);
            prop_assert_eq!(&whole, &cut, "mode {} cut at {:?}", mode.name, cuts);
        }
    }

    /// calc never panics, and answers every line with a value or a reason.
    #[test]
    fn calc_answers_anything(line in "[0-9+*/%().e -]{0,40}") {
        match evaluate(&line) {
            Ok(value) => prop_assert!(!value.is_empty()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Nor on lines as long as the default `--max-line` allows (64 KiB):
    /// a pattern repeated, as a hostile client would send one.
    #[test]
    fn calc_answers_lines_up_to_max_line(
        piece in "[0-9+*/%().e -]{1,16}",
        times in 1usize..8192,
    ) {
        let mut line = piece.repeat(times);
        line.truncate(65536);
        match evaluate(&line) {
            Ok(value) => prop_assert!(!value.is_empty()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
