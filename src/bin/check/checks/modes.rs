//! What the modes other than chat and echo answer (SPEC section 6): calc's values, as
//! Python computes them, with no line ever run as code; reverse, by grapheme.

use super::{Ctx, REPLY};
use crate::conn::{describe, Reply};
use crate::outcome::{fail, quote, Verdict};

const NO_GREETING: &str = "the server did not answer `Hi` with the greeting";

/// An expression, the answers Python accepts for it (the first is Python's own
/// `repr`, others print the same number), and the rule a wrong answer breaks.
struct Sum {
    line: &'static str,
    answers: &'static [&'static str],
    rule: &'static str,
}

/// A reply that starts so is the answer to a bad expression.
const INVALID: &str = "invalid expression";

const SUMS: &[Sum] = &[
    Sum {
        line: "2+3*4",
        answers: &["14"],
        rule: "`*` binds tighter than `+`",
    },
    Sum {
        line: "(2+3)*4",
        answers: &["20"],
        rule: "parentheses group first",
    },
    Sum {
        line: "2**3**2",
        answers: &["512"],
        rule: "`**` is right-associative: 2**(3**2)",
    },
    Sum {
        line: "-2**2",
        answers: &["-4"],
        rule: "`**` binds tighter than unary minus: -(2**2)",
    },
    Sum {
        line: "7/2",
        answers: &["3.5"],
        rule: "`/` is true division",
    },
    Sum {
        line: "8/2",
        answers: &["4", "4.0"],
        rule: "`/` is true division",
    },
    Sum {
        line: "-7//2",
        answers: &["-4"],
        rule: "`//` rounds toward minus infinity, as Python's does",
    },
    Sum {
        line: "7%-3",
        answers: &["-2"],
        rule: "`%` takes the sign of the divisor, as Python's does",
    },
    Sum {
        line: "2**100",
        answers: &["1267650600228229401496703205376"],
        rule: "integers are exact: use Python's int, never a float or a 64-bit integer",
    },
    Sum {
        line: "1/0",
        answers: &[INVALID],
        rule: "division by zero is answered `invalid expression: REASON`, and the session \
               goes on",
    },
    Sum {
        line: "2+",
        answers: &[INVALID],
        rule: "a bad expression is answered `invalid expression: REASON`, and the session \
               goes on",
    },
    Sum {
        line: "1+1",
        answers: &["2"],
        rule: "after a bad expression the session goes on",
    },
];

/// Each expression of the table, one line at a time, gets Python's answer.
pub fn calc(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.greeted("A", NO_GREETING)?;
    for sum in SUMS {
        a.send(format!("{}\n", sum.line).as_bytes())?;
        let reply = a.next(REPLY);
        let right = match &reply {
            Reply::Line(line) => {
                let text = String::from_utf8_lossy(line);
                let text = text.trim_end();
                sum.answers
                    .iter()
                    .any(|want| text == *want || (*want == INVALID && text.starts_with(INVALID)))
            }
            _ => false,
        };
        if !right {
            return Err(fail(
                format!(
                    "A sent {:?} and {}; Python answers {}",
                    sum.line,
                    describe(&reply, REPLY),
                    quote(sum.answers[0].as_bytes())
                ),
                format!("the calculator is wrong here: {}", sum.rule),
            ));
        }
    }
    Ok(())
}

/// Lines only an `eval`-based server would answer with a value: harmless ones.
const CODE: &[&str] = &["__import__('os').getpid()", "len('four')"];

/// No line is answered with a value that only running it as code gives.
pub fn calc_no_eval(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.greeted("A", NO_GREETING)?;
    for line in CODE {
        a.send(format!("{line}\n").as_bytes())?;
        match a.next(REPLY) {
            Reply::Line(reply) if is_number(&reply) => {
                return Err(fail(
                    format!("A sent {line:?} and got {}, its value", quote(&reply)),
                    "the server runs its clients' input as code (eval): anyone who connects \
                     can run any program on the server's machine; parse the arithmetic \
                     yourself (a small recursive-descent parser, or ast.parse with only \
                     number and operator nodes allowed)",
                ));
            }
            Reply::Line(_) | Reply::Silent(_) => {}
            // A server that hangs up on code has not run it.
            Reply::Closed(_) | Reply::Reset => return Ok(()),
        }
    }
    Ok(())
}

/// Whether `reply` is a number (what a value would print as).
fn is_number(reply: &[u8]) -> bool {
    let text = String::from_utf8_lossy(reply);
    let text = text.trim();
    !text.is_empty() && text.parse::<f64>().is_ok()
}

/// Lines and their reversals by grapheme: ASCII, accents (one code point and
/// combining), an emoji with a skin tone, flags, a family joined with ZWJ.
const REVERSED: &[(&str, &str)] = &[
    ("hello world", "dlrow olleh"),
    ("caf\u{e9} au lait", "tial ua \u{e9}fac"),
    ("cafe\u{301}!", "!e\u{301}fac"),
    ("ok \u{1f44d}\u{1f3fd} go", "og \u{1f44d}\u{1f3fd} ko"),
    (
        "\u{1f1eb}\u{1f1f7} et \u{1f1e9}\u{1f1ea}",
        "\u{1f1e9}\u{1f1ea} te \u{1f1eb}\u{1f1f7}",
    ),
    (
        "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467} x",
        "x \u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}",
    ),
];

/// Each line comes back reversed by grapheme.
pub fn reverse(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.greeted("A", NO_GREETING)?;
    for (line, reversed) in REVERSED {
        a.send(format!("{line}\n").as_bytes())?;
        a.expect(
            reversed.as_bytes(),
            REPLY,
            false,
            "the line came back reversed by code point or byte, not as a person sees it: \
             an accent or a skin tone must stay on its character and a flag's two letters \
             together; reverse grapheme clusters (Python: regex's `\\X`)",
        )?;
    }
    Ok(())
}
