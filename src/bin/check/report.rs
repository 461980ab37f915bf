//! The readable report on stdout: one line per check, and for each failure what was
//! seen, the usual cause, the steps with their times, and the server's last output.
//! Colour only when stdout is a terminal.

use std::fmt::Write;

use crate::outcome::{Outcome, Status};

/// The totals of a run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Checks passed.
    pub passed: usize,
    /// Checks failed.
    pub failed: usize,
    /// Checks skipped.
    pub skipped: usize,
    /// Points earned: the weights of the passed checks.
    pub score: u32,
    /// Points possible: the weights of the checks not skipped.
    pub max_score: u32,
}

impl Totals {
    /// Adds up `outcomes`.
    pub fn of(outcomes: &[Outcome]) -> Totals {
        let mut totals = Totals::default();
        for o in outcomes {
            match o.status {
                Status::Pass => {
                    totals.passed += 1;
                    totals.score += o.weight;
                    totals.max_score += o.weight;
                }
                Status::Fail => {
                    totals.failed += 1;
                    totals.max_score += o.weight;
                }
                Status::Skip => totals.skipped += 1,
            }
        }
        totals
    }
}

/// The report, with ANSI colours when `colour`.
pub fn report(role: &str, command: &str, outcomes: &[Outcome], colour: bool) -> String {
    let paint = |code: &str, text: &str| match colour {
        true => format!("\x1b[{code}m{text}\x1b[0m"),
        false => text.to_string(),
    };
    let width = outcomes.iter().map(|o| o.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "check --as {role} `{command}`\n");
    for o in outcomes {
        let tag = match o.status {
            Status::Pass => paint("32", "PASS"),
            Status::Fail => paint("31;1", "FAIL"),
            Status::Skip => paint("33", "SKIP"),
        };
        let _ = writeln!(
            out,
            "  {tag}  {:width$}  {}  ({:.2}s)",
            o.name, o.title, o.seconds
        );
        match o.status {
            Status::Pass => {}
            Status::Skip => {
                let _ = writeln!(out, "        {}", o.message.as_deref().unwrap_or(""));
            }
            Status::Fail => failure(&mut out, o),
        }
    }
    let t = Totals::of(outcomes);
    let summary = format!(
        "\n{} passed, {} failed, {} skipped; score {}/{}",
        t.passed, t.failed, t.skipped, t.score, t.max_score
    );
    let _ = writeln!(
        out,
        "{}",
        paint(if t.failed == 0 { "32" } else { "31;1" }, &summary)
    );
    out
}

fn failure(out: &mut String, o: &Outcome) {
    let _ = writeln!(out, "        {}", o.message.as_deref().unwrap_or(""));
    if let Some(cause) = &o.cause {
        let _ = writeln!(out, "        usual cause: {cause}");
    }
    let _ = writeln!(out, "        steps:");
    for step in &o.steps {
        let _ = writeln!(
            out,
            "          {:>7.3}s  {:6}  {}",
            step.at, step.who, step.what
        );
    }
    if let Some(output) = o.server_output.as_deref().filter(|s| !s.trim().is_empty()) {
        let _ = writeln!(out, "        server output (last lines):");
        for line in output.lines() {
            let _ = writeln!(out, "          | {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(name: &'static str, status: Status, weight: u32) -> Outcome {
        Outcome {
            name,
            title: "a title",
            weight,
            status,
            message: (status != Status::Pass).then(|| "what was seen".into()),
            cause: (status == Status::Fail).then(|| "the usual cause".into()),
            seconds: 0.5,
            steps: Vec::new(),
            server_output: None,
        }
    }

    /// Skips count neither way; a failure shows its message and cause; no colour
    /// codes unless asked.
    #[test]
    fn totals_and_text() {
        let all = [
            outcome("greeting", Status::Pass, 10),
            outcome("bye", Status::Fail, 10),
            outcome("no-spin", Status::Skip, 10),
        ];
        let t = Totals::of(&all);
        assert_eq!(
            (t.passed, t.failed, t.skipped, t.score, t.max_score),
            (1, 1, 1, 10, 20)
        );
        let text = report("server2", "python3 s.py {port}", &all, false);
        assert!(text.contains("FAIL  bye"), "{text}");
        assert!(text.contains("usual cause: the usual cause"), "{text}");
        assert!(
            text.contains("score 10/20") && !text.contains('\x1b'),
            "{text}"
        );
        assert!(report("server2", "x", &all, true).contains("\x1b[31;1mFAIL"));
    }
}
