//! calc against a reference: Python itself, the language whose arithmetic
//! calc promises (SPEC 6). Thousands of random expressions are evaluated by
//! both; every answer must agree, within the differences the calculator
//! documents:
//!
//! - a float with an integral value prints without `.0` (`8/2` → `4`);
//! - integers stop at 4096 bits (`result too large`), where Python goes on;
//! - errors are reasons, not exceptions: `ZeroDivisionError` is
//!   `division by zero`, `OverflowError` is `result too large`, and a
//!   complex result is `complex result`.
//!
//! Skipped, saying so, where no `python3` (or `python`) is on the PATH.

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use switchboard::mode::evaluate;

/// How many expressions one run checks.
const EXPRESSIONS: usize = 3000;

/// Python's answer to each line of stdin, printed as calc prints it.
const REFERENCE: &str = r#"
import sys
for line in sys.stdin:
    try:
        v = eval(line, {"__builtins__": {}})
        if isinstance(v, complex):
            print("ERR complex result")
        elif isinstance(v, float):
            r = repr(v)
            print(r[:-2] if r.endswith(".0") else r)
        else:
            print(v)
    except ZeroDivisionError:
        print("ERR division by zero")
    except OverflowError:
        print("ERR result too large")
"#;

/// Expressions of integers and decimals with every operator calc has,
/// unary minus and parentheses; powers keep to small exponents, as the
/// interesting part is their sign and type, not their size.
fn expression() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        4 => (0u32..1000).prop_map(|n| n.to_string()),
        1 => (0u64..u64::MAX).prop_map(|n| n.to_string()),
        2 => (0u32..1000, 0u32..100).prop_map(|(a, b)| format!("{a}.{b}")),
    ];
    number.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["+", "-", "*", "/", "//", "%"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a}{op}{b}")),
            (inner.clone(), -3i32..8).prop_map(|(a, e)| format!("({a})**{e}")),
            inner.clone().prop_map(|a| format!("-{a}")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

fn python() -> Option<&'static str> {
    ["python3", "python"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import sys; assert sys.version_info >= (3, 6)"])
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[test]
fn calc_agrees_with_python() {
    let Some(python) = python() else {
        eprintln!("calc_agrees_with_python: skipped, no python3 on the PATH");
        return;
    };
    let mut runner = TestRunner::deterministic();
    let strategy = expression();
    let lines: Vec<String> = (0..EXPRESSIONS)
        .map(|_| strategy.new_tree(&mut runner).expect("a case").current())
        .collect();
    let mut child = Command::new(python)
        .args(["-c", REFERENCE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = lines.join("\n") + "\n";
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("python's answers");
    feeder
        .join()
        .expect("feeder")
        .expect("python took the input");
    let answers = String::from_utf8(output.stdout).expect("UTF-8 answers");
    let answers: Vec<&str> = answers.lines().collect();
    assert_eq!(answers.len(), lines.len(), "python answered every line");

    let mut disagreements = Vec::new();
    for (line, want) in lines.iter().zip(answers) {
        let got = match evaluate(line) {
            Ok(value) => value,
            Err(e) => format!("ERR {e}"),
        };
        let capped = got == "ERR result too large" && !want.starts_with("ERR");
        if got != want && !capped {
            disagreements.push(format!("{line}\n  calc:   {got}\n  python: {want}"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {EXPRESSIONS} disagree; the first:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(8)].join("\n")
    );
}
