//! The two recipes for grading a class (`docs/recipes/`), run as a teacher would
//! run them: Gradescope's `run_autograder` against submissions laid out the way
//! Gradescope lays them out, its `results.json` held to Gradescope's documented
//! fields; and the GitHub Actions workflow parsed, its command lines run here. Both
//! need `python3` (the submissions are Python) and skip, saying so, without it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{bin, wait_exit};
use serde_json::Value;

/// A recipe's run: a few checks against a fresh server each.
const LIMIT: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `python3` runs here (with `module` importable, if given); if not, says so.
fn python(test: &str, module: Option<&str>) -> bool {
    let mut command = Command::new("python3");
    match module {
        Some(m) => command.args(["-c", &format!("import {m}")]),
        None => command.arg("--version"),
    };
    let ok = command.output().is_ok_and(|o| o.status.success());
    if !ok {
        let what = module.map_or("python3".to_string(), |m| format!("python3 with {m}"));
        eprintln!("{test}: skipped: {what} is not installed here");
    }
    ok
}

/// A scratch directory of its own for this test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("switchboard-recipe-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Runs `command` to its end (stdout and stderr into files in `dir`), failing the
/// test past [`LIMIT`]; the status and what it printed.
fn finish(mut command: Command, dir: &Path) -> (ExitStatus, String) {
    let log = dir.join("run.log");
    let file = std::fs::File::create(&log).expect("log file");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .expect("starts");
    let status = wait_exit(&mut child, Instant::now() + LIMIT).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("{command:?} still running after {LIMIT:?}");
    });
    (status, std::fs::read_to_string(log).unwrap_or_default())
}

/// A submission directory holding `files` (name, text).
fn submission(root: &Path, files: &[(&str, String)]) {
    let dir = root.join("submission");
    std::fs::create_dir_all(&dir).expect("submission directory");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("submission file");
    }
}

/// A fixture of `tests/check/`, as text.
fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("tests/check").join(name)).expect("fixture")
}

/// Runs `run_autograder` with Gradescope's layout under `root`; results.json.
fn autograde(root: &Path, only: &str) -> (Value, String) {
    let mut command = Command::new("bash");
    command
        .arg(repo().join("docs/recipes/gradescope/run_autograder"))
        .env("AUTOGRADER_ROOT", root)
        .env("CHECK", bin("check"))
        .env("CHECK_EXTRA", format!("--console full --only {only}"));
    let (status, printed) = finish(command, root);
    assert!(
        status.success(),
        "run_autograder failed ({status}):\n{printed}"
    );
    let text = std::fs::read_to_string(root.join("results/results.json"))
        .unwrap_or_else(|e| panic!("no results.json ({e}):\n{printed}"));
    let results = serde_json::from_str(&text).expect("results.json is JSON");
    (results, printed)
}

/// Holds `results` to the fields Gradescope documents for `results.json`: a numeric
/// `score`, and `tests`, each with a `name`, numeric `score` and `max_score`, an
/// `output`, and a `status` of `passed` or `failed` where there is one; `visibility`
/// one of Gradescope's four. The top-level score is the tests' sum.
fn assert_gradescope_format(results: &Value) {
    let visibility = ["hidden", "after_due_date", "after_published", "visible"];
    assert!(results["score"].is_number(), "{results}");
    if let Some(v) = results.get("visibility") {
        assert!(visibility.contains(&v.as_str().unwrap_or("")), "{results}");
    }
    let tests = results["tests"].as_array().expect("tests is a list");
    let mut sum = 0.0;
    for test in tests {
        assert!(test["name"].is_string(), "{test}");
        assert!(test["output"].is_string(), "{test}");
        let (score, max) = (test["score"].as_f64(), test["max_score"].as_f64());
        let (Some(score), Some(max)) = (score, max) else {
            panic!("score and max_score are numbers: {test}");
        };
        assert!((0.0..=max).contains(&score), "{test}");
        sum += score;
        if let Some(status) = test.get("status") {
            assert!(status == "passed" || status == "failed", "{test}");
        }
        if let Some(v) = test.get("visibility") {
            assert!(visibility.contains(&v.as_str().unwrap_or("")), "{test}");
        }
    }
    assert_eq!(results["score"].as_f64(), Some(sum), "{results}");
}

/// `run_autograder` grades a correct submission in full, a faulty one with its
/// failure explained, and one that never starts with a score of 0 and its output:
/// each time a results.json in Gradescope's format, and exit 0.
#[test]
fn gradescope_autograder_writes_results() {
    if !python("gradescope_autograder_writes_results", None) {
        return;
    }
    let only = "greeting,bye,console-in,console-out,restart";

    let good = scratch("gradescope-good");
    let chat = [
        ("server2.py", fixture("threads_chat.py")),
        ("chatroom.py", fixture("chatroom.py")),
    ];
    submission(&good, &chat);
    let (results, printed) = autograde(&good, only);
    assert_gradescope_format(&results);
    let tests = results["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 5, "{results}");
    assert!(tests.iter().all(|t| t["status"] == "passed"), "{printed}");
    assert_eq!(results["score"], 45, "{results}");

    // The same server without SO_REUSEADDR: `restart` fails, with its cause.
    let faulty = scratch("gradescope-faulty");
    let no_reuse = fixture("threads_chat.py").replace(
        "bug = sys.argv[3] if len(sys.argv) > 3 else \"\"",
        "bug = \"no-reuseaddr\"",
    );
    submission(&faulty, &[("server2.py", no_reuse), chat[1].clone()]);
    let (results, _) = autograde(&faulty, only);
    assert_gradescope_format(&results);
    assert_eq!(results["score"], 40, "{results}");
    let restart = &results["tests"][4];
    assert_eq!(restart["status"], "failed", "{results}");
    assert!(
        restart["output"]
            .as_str()
            .is_some_and(|o| o.contains("SO_REUSEADDR")),
        "{restart}"
    );

    let broken = scratch("gradescope-broken");
    submission(&broken, &[("server2.py", "def oops(:\n".to_string())]);
    let (results, printed) = autograde(&broken, only);
    assert_gradescope_format(&results);
    assert_eq!(results["score"], 0, "{results}");
    let tests = results["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 5, "{printed}");
    assert!(
        tests[0]["output"]
            .as_str()
            .is_some_and(|o| o.contains("SyntaxError")),
        "the server's output is shown: {results}"
    );
    for dir in [good, faulty, broken] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The workflow parses, asks only for read access and a time limit, publishes the
/// JUnit file its Grade step writes even when a check failed; and its command lines,
/// run here against a student repository, pass a correct server and fail (non-zero)
/// a faulty one.
#[test]
fn github_workflow_runs_its_commands() {
    if !python("github_workflow_runs_its_commands", Some("yaml")) {
        return;
    }
    let file = repo().join("docs/recipes/github-actions/check.yml");
    let parse = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))";
    let out = Command::new("python3")
        .args(["-c", parse])
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let workflow: Value = serde_json::from_slice(&out.stdout).expect("YAML as JSON");
    assert_eq!(workflow["permissions"]["contents"], "read", "{workflow}");
    let job = &workflow["jobs"]["grade"];
    assert!(job["timeout-minutes"].is_number(), "{job}");
    let steps = job["steps"].as_array().expect("steps");
    let report = steps
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.contains("junit")))
        .expect("a JUnit report step");
    assert_eq!(report["if"], "always()", "{report}");
    let junit = report["with"]["report_paths"]
        .as_str()
        .expect("report_paths");
    let commands: Vec<&str> = steps
        .iter()
        .filter(|s| s["name"] != "Install check")
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert!(
        commands
            .iter()
            .any(|c| c.contains(&format!("--junit {junit}"))),
        "{commands:?}"
    );

    // A student repository whose server2.py is (a stand-in for) a correct server,
    // and one whose server serves one client at a time.
    let check_dir = Path::new(bin("check")).parent().expect("bin directory");
    let path = format!(
        "{}:{}",
        check_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (name, model, passes) in [
        ("actions-good", "thread-per-client", true),
        ("actions-faulty", "single-client", false),
    ] {
        let repo_dir = scratch(name);
        let server = format!(
            "import os, sys\nexe = {:?}\nos.execv(exe, [exe, '--model', {model:?}] + sys.argv[1:])\n",
            bin("server")
        );
        std::fs::write(repo_dir.join("server2.py"), server).expect("server2.py");
        let mut status_all = true;
        for command in &commands {
            let mut shell = Command::new("bash");
            shell
                .args(["-e", "-c", command])
                .current_dir(&repo_dir)
                .env("PATH", &path);
            let (status, printed) = finish(shell, &repo_dir);
            status_all &= status.success();
            if passes {
                assert!(status.success(), "{command}:\n{printed}");
            }
        }
        assert_eq!(status_all, passes, "{name}: a failing check fails the job");
        let xml = std::fs::read_to_string(repo_dir.join(junit)).expect("JUnit written");
        assert!(xml.matches("<testcase ").count() >= 14, "{xml}");
        assert_eq!(xml.contains("<failure"), !passes, "{xml}");
        let _ = std::fs::remove_dir_all(repo_dir);
    }
}
