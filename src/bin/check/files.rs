//! The machine-readable reports: JUnit XML for CI, JSON with everything, and
//! Gradescope's `results.json` (a score per check from its weight).

use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;
use serde_json::json;

use crate::outcome::{Outcome, Status};
use crate::report::Totals;

/// One `testcase` per check, in one suite named after the role; a failure carries the
/// message, the cause and the steps.
pub fn write_junit(path: &Path, role: &str, outcomes: &[Outcome]) -> Result<(), String> {
    let mut suite = TestSuite::new(format!("check --as {role}"));
    for o in outcomes {
        let status = match o.status {
            Status::Pass => TestCaseStatus::success(),
            Status::Skip => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(o.message.clone().unwrap_or_default());
                s
            }
            Status::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(failure_message(o));
                s.set_description(details(o));
                s
            }
        };
        let mut case = TestCase::new(o.name, status);
        case.set_classname(format!("check.{role}"))
            .set_time(std::time::Duration::from_secs_f64(o.seconds));
        suite.add_test_case(case);
    }
    let mut report = Report::new("check");
    report.add_test_suite(suite);
    let xml = report
        .to_string()
        .map_err(|e| format!("cannot write JUnit XML: {e}"))?;
    write(path, &xml)
}

/// Every outcome, with the role, the command and the totals.
pub fn write_json(
    path: &Path,
    role: &str,
    command: &str,
    outcomes: &[Outcome],
) -> Result<(), String> {
    #[derive(Serialize)]
    struct Run<'a> {
        role: &'a str,
        command: &'a str,
        passed: usize,
        failed: usize,
        skipped: usize,
        score: u32,
        max_score: u32,
        checks: &'a [Outcome],
    }
    let t = Totals::of(outcomes);
    let run = Run {
        role,
        command,
        passed: t.passed,
        failed: t.failed,
        skipped: t.skipped,
        score: t.score,
        max_score: t.max_score,
        checks: outcomes,
    };
    let text = serde_json::to_string_pretty(&run).map_err(|e| format!("cannot write JSON: {e}"))?;
    write(path, &text)
}

/// Gradescope's `results.json`: each check a test worth its weight, all or nothing; a
/// skipped check is listed, worth 0 of 0.
pub fn write_gradescope(path: &Path, role: &str, outcomes: &[Outcome]) -> Result<(), String> {
    let tests: Vec<_> = outcomes
        .iter()
        .map(|o| {
            let (score, max, status, output) = match o.status {
                Status::Pass => (o.weight, o.weight, "passed", "passed".to_string()),
                Status::Fail => (
                    0,
                    o.weight,
                    "failed",
                    format!("{}\n\n{}", failure_message(o), details(o)),
                ),
                Status::Skip => (
                    0,
                    0,
                    "skipped",
                    format!("skipped: {}", o.message.as_deref().unwrap_or("")),
                ),
            };
            let mut test = json!({
                "name": format!("{}: {}", o.name, o.title),
                "score": score,
                "max_score": max,
                "output": output,
                "visibility": "visible",
            });
            // Gradescope knows only `passed` and `failed`; a skip shows neither.
            if status != "skipped" {
                test["status"] = status.into();
            }
            test
        })
        .collect();
    let t = Totals::of(outcomes);
    let results = json!({
        "score": t.score,
        "output": format!("check --as {role}: {} passed, {} failed, {} skipped", t.passed, t.failed, t.skipped),
        "visibility": "visible",
        "tests": tests,
    });
    let text =
        serde_json::to_string_pretty(&results).map_err(|e| format!("cannot write JSON: {e}"))?;
    write(path, &text)
}

/// What was seen and the usual cause, in two sentences.
fn failure_message(o: &Outcome) -> String {
    format!(
        "{}. Usual cause: {}",
        o.message.as_deref().unwrap_or("failed"),
        o.cause.as_deref().unwrap_or("unknown")
    )
}

/// The steps and the server's last output, as text.
fn details(o: &Outcome) -> String {
    let mut text: String = o
        .steps
        .iter()
        .map(|s| format!("{:>7.3}s  {:6}  {}\n", s.at, s.who, s.what))
        .collect();
    if let Some(output) = o.server_output.as_deref().filter(|s| !s.trim().is_empty()) {
        text.push_str("server output (last lines):\n");
        text.push_str(output);
        text.push('\n');
    }
    text
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
