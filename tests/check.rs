//! The `check` binary end to end: it grades correctly. Deliberately faulty Python
//! servers (`tests/check/*.py`, one bug each, most chosen by an argument) must fail
//! the right check with the right explanation, and nothing else; correct ones (chat
//! servers with a console, an echo server, a calculator), our own server1–server4,
//! and every model of the library as its family must pass every check. Needs
//! `python3` for the Python servers (those tests say so and pass without it); every
//! run is killed and fails the test past its time limit.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::{bin, in_parallel, run};
use serde_json::Value;

/// A whole `check` run: about 25 checks, each a few seconds at worst, on a machine
/// that may be running many at once.
const LIMIT: Duration = Duration::from_secs(240);

/// Whether `python3` runs here; if not, says so once per test.
fn python(test: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("{test}: skipped: python3 is not installed, and the fixtures are Python");
    }
    ok
}

/// `python3 tests/check/SCRIPT 127.0.0.1 {port} ARGS`.
fn fixture(script: &str) -> String {
    let (file, args) = script.split_once(' ').unwrap_or((script, ""));
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/check")
        .join(file);
    format!("python3 '{}' 127.0.0.1 {{port}} {args}", path.display())
}

/// Our own binary `name` as a command.
fn ours(name: &str) -> String {
    format!("'{}' 127.0.0.1 {{port}} -q", bin(name))
}

/// A scratch file path unique to this test process.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("switchboard-check-{}-{name}", std::process::id()))
}

/// Runs `check --as ROLE COMMAND EXTRA... --json FILE`; the output and the JSON.
fn grade(role: &str, command: &str, extra: &[&str]) -> (Output, Value) {
    let json = scratch(&format!(
        "{role}-{:x}.json",
        fxhash(command) ^ fxhash(&extra.join(" "))
    ));
    let json_arg = json.to_string_lossy().into_owned();
    // A crowded test machine can take seconds to start a Python server: a slow
    // start is not what these tests grade.
    let mut args = vec![
        "--as",
        role,
        command,
        "--json",
        &json_arg,
        "--start-timeout",
        "30",
    ];
    args.extend_from_slice(extra);
    let out = run("check", &args, LIMIT);
    let text = std::fs::read_to_string(&json).unwrap_or_default();
    let _ = std::fs::remove_file(&json);
    (out, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names of the checks with `status`.
fn with_status<'a>(json: &'a Value, status: &str) -> Vec<&'a str> {
    json["checks"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .filter(|c| c["status"] == status)
                .filter_map(|c| c["name"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts a run passed every check (none skipped on Linux) and exited 0.
fn assert_all_pass(role: &str, command: &str, extra: &[&str]) {
    let (out, json) = grade(role, command, extra);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{command} as {role}:\n{report}");
    assert!(with_status(&json, "fail").is_empty(), "{report}");
    if cfg!(target_os = "linux") {
        assert!(with_status(&json, "skip").is_empty(), "{report}");
    }
    assert!(with_status(&json, "pass").len() >= 14, "{report}");
}

/// How many `check` runs go at once: each starts a server per check, and the
/// checks have deadlines of a few seconds, which a crowded machine must still meet.
const AT_ONCE: usize = 8;

/// Runs `case` for every item, [`AT_ONCE`] at a time.
fn in_batches<T: Sync + std::fmt::Debug>(items: &[T], case: impl Fn(&T) + Sync) {
    for batch in items.chunks(AT_ONCE) {
        in_parallel(batch, &case);
    }
}

/// One fixture with one bug: the role it is graded as (and the mode or console it
/// claims), the check it must fail, words from that check's explanation, and every
/// check it may fail (the bug's knock-on effects); every other check must pass or,
/// where it relies on the failed one, be skipped.
struct Faulty {
    script: &'static str,
    role: &'static str,
    extra: &'static [&'static str],
    check: &'static str,
    cause: &'static str,
    may_fail: &'static [&'static str],
}

impl std::fmt::Debug for Faulty {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}", self.script)
    }
}

/// A chat server graded with every console command: the correct servers, and the
/// faulty ones whose bug is in the console (the others are graded as plain
/// consoles, which keeps the suite shorter).
const FULL: &[&str] = &["--console", "full"];

const FAULTY: &[Faulty] = &[
    Faulty {
        script: "threads_chat.py recv-framing",
        role: "server2",
        extra: &[],
        check: "several-lines",
        cause: "frames by recv() size",
        may_fail: &["split-line", "several-lines", "dribble"],
    },
    Faulty {
        script: "threads_chat.py serial",
        role: "server2",
        extra: &[],
        check: "second-client",
        cause: "serves one client at a time",
        may_fail: &["second-client"],
    },
    Faulty {
        script: "single_chat.py hang",
        role: "server1",
        extra: &[],
        check: "second-client",
        cause: "left hanging in the listen backlog",
        may_fail: &["second-client"],
    },
    Faulty {
        script: "select_chat.py spin",
        role: "server3",
        extra: &[],
        check: "no-spin",
        cause: "keeps a closed socket",
        // A socket kept in the read set is never closed either.
        may_fail: &["no-spin", "descriptors"],
    },
    Faulty {
        script: "select_chat.py die-on-reset",
        role: "server3",
        extra: &[],
        check: "reset",
        cause: "ConnectionResetError",
        // The server dies at the first reset, whichever check's client sends it:
        // one that gives up on a busy machine (a timeout, then a close with data
        // unread) can kill it too.
        may_fail: &[
            "reset",
            "no-spin",
            "second-client",
            "many-clients",
            "slow-reader",
            "still-serving",
            "descriptors",
            "console-non-reader",
        ],
    },
    Faulty {
        script: "select_chat.py echo",
        role: "server3",
        extra: FULL,
        check: "console-in",
        cause: "sent the client's line back to the client",
        may_fail: &["console-in"],
    },
    Faulty {
        script: "select_chat.py blocking-operator",
        role: "server3",
        extra: FULL,
        check: "console-non-reader",
        cause: "sendall()s them from its one loop",
        may_fail: &["console-non-reader"],
    },
    Faulty {
        script: "blocking_echo.py",
        role: "server4",
        extra: &[],
        check: "slow-reader",
        cause: "blocks in send()/sendall()",
        may_fail: &["slow-reader"],
    },
    Faulty {
        script: "threads_chat.py bye-left-open",
        role: "server2",
        extra: &[],
        check: "bye",
        cause: "connection was left open",
        may_fail: &["bye"],
    },
    Faulty {
        script: "lossy_echo.py",
        role: "server4",
        extra: &[],
        check: "echo-exact",
        cause: "the echo changed the bytes",
        may_fail: &["echo-exact"],
    },
    Faulty {
        script: "threads_chat.py sigterm-ignored",
        role: "server2",
        extra: &[],
        check: "sigterm",
        cause: "ignores or catches SIGTERM",
        may_fail: &["sigterm"],
    },
    Faulty {
        script: "threads_chat.py sigint-ignored",
        role: "server2",
        extra: &[],
        check: "sigint",
        cause: "Ctrl-C did not end the server",
        may_fail: &["sigint"],
    },
    Faulty {
        script: "single_chat.py stuck",
        role: "server1",
        extra: &[],
        check: "next-client",
        cause: "the next one was not served",
        may_fail: &["next-client"],
    },
    Faulty {
        script: "threads_chat.py strict-decode",
        role: "server2",
        extra: &[],
        check: "not-utf8",
        cause: "UnicodeDecodeError",
        may_fail: &["not-utf8"],
    },
    Faulty {
        script: "threads_chat.py leak",
        role: "server2",
        extra: &[],
        check: "descriptors",
        cause: "are never closed",
        may_fail: &["descriptors"],
    },
    Faulty {
        script: "threads_chat.py no-reuseaddr",
        role: "server2",
        extra: &[],
        check: "restart",
        cause: "set SO_REUSEADDR",
        may_fail: &["restart"],
    },
    Faulty {
        script: "threads_chat.py no-newline",
        role: "server2",
        extra: &[],
        check: "greeting",
        cause: "the reply has no line end",
        may_fail: &["greeting"],
    },
    Faulty {
        script: "threads_chat.py deaf",
        role: "server2",
        extra: FULL,
        check: "console-out",
        cause: "never reads its stdin",
        may_fail: &["console-out"],
    },
    Faulty {
        script: "threads_chat.py blocking-console",
        role: "server2",
        extra: FULL,
        check: "console-non-reader",
        cause: "the console stopped at a client that does not read",
        may_fail: &["console-non-reader"],
    },
    Faulty {
        script: "calc_server.py eval",
        role: "server2",
        extra: &["--mode", "calc"],
        check: "calc-no-eval",
        cause: "runs its clients' input as code (eval)",
        may_fail: &["calc-no-eval"],
    },
    Faulty {
        script: "reverse_codepoints.py",
        role: "server2",
        extra: &["--mode", "reverse"],
        check: "reverse",
        cause: "reverse grapheme clusters",
        may_fail: &["reverse"],
    },
];

/// Each faulty server fails the check its bug breaks, with the explanation of that
/// bug, and fails no check its bug does not touch; the run exits 1.
#[test]
fn faulty_servers_fail_the_right_check() {
    if !python("faulty_servers_fail_the_right_check") {
        return;
    }
    in_batches(FAULTY, |f| {
        if matches!(f.check, "sigterm" | "sigint" | "restart") && !cfg!(unix) {
            return;
        }
        if matches!(f.check, "no-spin" | "descriptors") && !cfg!(target_os = "linux") {
            return;
        }
        let (out, json) = grade(f.role, &fixture(f.script), f.extra);
        let report = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{}:\n{report}", f.script);
        let failed = with_status(&json, "fail");
        assert!(
            failed.contains(&f.check),
            "{} should fail {}:\n{report}",
            f.script,
            f.check
        );
        let unexpected: Vec<_> = failed.iter().filter(|c| !f.may_fail.contains(c)).collect();
        assert!(
            unexpected.is_empty(),
            "{} failed {unexpected:?} too:\n{report}",
            f.script
        );
        let check = json["checks"]
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|c| c["name"] == f.check && c["status"] == "fail")
            })
            .expect("the failed check is in the JSON");
        let cause = check["cause"].as_str().unwrap_or("");
        assert!(cause.contains(f.cause), "{}: cause {cause:?}", f.script);
        assert!(
            check["steps"].as_array().is_some_and(|s| s.len() > 2),
            "{check}"
        );
        assert!(
            report.contains(&format!("usual cause: {cause}")),
            "{report}"
        );
    });
}

/// A skipped check says which failed check it relies on: a server whose greeting
/// has no line end fails `greeting` alone, and `several-lines` does not blame
/// framing.
#[test]
fn one_bug_is_charged_once() {
    if !python("one_bug_is_charged_once") {
        return;
    }
    let command = fixture("threads_chat.py no-newline");
    let (out, json) = grade("server2", &command, &["--only", "greeting,several-lines"]);
    let report = stdout(&out);
    assert_eq!(with_status(&json, "fail"), ["greeting"], "{report}");
    assert_eq!(with_status(&json, "skip"), ["several-lines"], "{report}");
    assert!(report.contains("relies on `greeting`"), "{report}");
    let (_, json) = grade("server2", &command, &["--only", "several-lines"]);
    let cause = json["checks"][0]["cause"].as_str().unwrap_or("");
    assert!(cause.contains("no line end"), "{json}");
}

/// Correct Python servers pass every check: chat servers with a full console for
/// server1-3, an echo server, a calculator.
#[test]
fn correct_servers_pass_every_check() {
    if !python("correct_servers_pass_every_check") {
        return;
    }
    let cases: [(&str, &str, &[&str]); 5] = [
        ("server1", "single_chat.py", FULL),
        ("server2", "threads_chat.py", FULL),
        ("server3", "select_chat.py", FULL),
        ("server4", "good_echo.py", &[]),
        ("server2", "calc_server.py", &["--mode", "calc"]),
    ];
    in_parallel(&cases, |(role, script, extra)| {
        assert_all_pass(role, &fixture(script), extra)
    });
}

/// Our own server1-server4 pass every check of their role, the chat ones with
/// every console command.
#[test]
fn our_servers_pass_every_check() {
    in_parallel(&common::COURSEWORK, |name| {
        let extra: &[&str] = if *name == "server4" { &[] } else { FULL };
        assert_all_pass(name, &ours(name), extra)
    });
}

/// Model and check pairs known to fail, with what comes back: none today. A pair
/// listed here must still fail (so the list is kept honest), and nothing else may.
const KNOWN_FAILURES: &[(&str, &str, &str)] = &[];

/// Every model of the library's list passes `check` as its family: the blocking ones
/// as server1 or server2 (the thread pool with more workers than the 100 clients
/// `many-clients` opens at once), the loop-based ones as server3 with every console
/// command; server4 as echo; one model in calc and one in reverse mode.
#[test]
fn every_model_passes_as_its_family() {
    let mut runs: Vec<(String, &str, Vec<&str>)> = Vec::new();
    for model in common::models() {
        let role = match model {
            "single-client" => "server1",
            "thread-per-client" | "thread-pool" => "server2",
            _ => "server3",
        };
        let workers = if model == "thread-pool" { "128" } else { "4" };
        // io-uring's fallback path is io-uring held to it by the environment.
        let (env, model) = match model {
            common::IO_URING_SINGLE_SHOT => (
                format!("{}=1 ", switchboard::strategy::io_uring::SINGLE_SHOT_ENV),
                "io-uring",
            ),
            model => (String::new(), model),
        };
        let command = format!(
            "{env}'{}' --model {model} --workers {workers} 127.0.0.1 {{port}} -q",
            bin("server")
        );
        runs.push((command, role, FULL.to_vec()));
    }
    let server = bin("server");
    runs.push((ours("server4"), "server4", Vec::new()));
    for (model, mode) in [("event-loop-workers", "calc"), ("async", "reverse")] {
        runs.push((
            format!("'{server}' --model {model} --mode {mode} 127.0.0.1 {{port}} -q"),
            "server3",
            vec!["--mode", mode],
        ));
    }
    in_batches(&runs, |(command, role, extra)| {
        let (out, json) = grade(role, command, extra);
        let report = stdout(&out);
        if out.status.code() == Some(2) && report.contains("io_uring") {
            eprintln!("skipped here: {command}: io_uring is not available");
            return;
        }
        let failed = with_status(&json, "fail");
        let known: Vec<&str> = KNOWN_FAILURES
            .iter()
            .filter(|(m, _, _)| command.contains(&format!("--model {m} ")))
            .map(|(_, check, _)| *check)
            .collect();
        let unexpected: Vec<_> = failed.iter().filter(|c| !known.contains(c)).collect();
        assert!(unexpected.is_empty(), "{command} as {role}:\n{report}");
        for check in &known {
            assert!(
                failed.contains(check),
                "{command} now passes {check}: take it off KNOWN_FAILURES"
            );
        }
        assert!(with_status(&json, "pass").len() >= 14, "{report}");
    });
}

/// `--junit` has one testcase per check and a failure element with the message;
/// `--gradescope` scores each check by its weight; the report says what failed.
#[test]
fn junit_and_gradescope_files() {
    let junit = scratch("report.xml");
    let gradescope = scratch("results.json");
    let (junit_arg, gs_arg) = (junit.to_string_lossy(), gradescope.to_string_lossy());
    // server2 serves a second client at once: right for server2, wrong for server1.
    let args = [
        "--only",
        "greeting,second-client",
        "--junit",
        &junit_arg,
        "--gradescope",
        &gs_arg,
    ];
    let (out, _) = grade("server1", &ours("server2"), &args);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("PASS  greeting") && report.contains("FAIL  second-client"),
        "{report}"
    );
    assert!(
        !report.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );

    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    assert!(
        xml.contains("name=\"second-client\"") && xml.contains("Usual cause"),
        "{xml}"
    );

    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(&gradescope).expect("written")).unwrap();
    assert_eq!(results["score"], 10, "{results}");
    let tests = results["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 2);
    assert_eq!(
        (&tests[1]["score"], &tests[1]["max_score"]),
        (&Value::from(0), &Value::from(15))
    );
    assert_eq!(tests[1]["status"], "failed");
    let _ = (
        std::fs::remove_file(junit),
        std::fs::remove_file(gradescope),
    );
}

/// A command that never listens exits 2 with its output shown, within the start
/// timeout; so does a usage error.
#[test]
fn never_listening_and_usage_errors_exit_2() {
    let quits = "echo starting on {port}; echo 'no socket here' >&2; exit 3";
    let out = run("check", &["--as", "server2", quits], LIMIT);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(
        text.contains("exited") && text.contains("no socket here"),
        "{text}"
    );

    never_started_still_reports(quits);
    let hangs = "echo idle on {port}; sleep 30";
    let out = run(
        "check",
        &["--as", "server2", "--start-timeout", "0.5", hangs],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("did not accept connections"),
        "{}",
        stdout(&out)
    );

    for args in [
        &["python3 s.py {port}"][..],
        &["--as", "server2", "python3 s.py 5000"],
        &["--as", "server2", "x {port}", "--only", "no-such-check"],
    ] {
        let out = run("check", args, LIMIT);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

/// A server that never starts still gets every report file: each check failed with
/// the server's output, a score of 0, the same exit status 2.
fn never_started_still_reports(command: &str) {
    let (junit, gradescope, json) = (
        scratch("never.xml"),
        scratch("never-results.json"),
        scratch("never.json"),
    );
    let paths = [&junit, &gradescope, &json].map(|p| p.to_string_lossy().into_owned());
    let args = [
        "--as",
        "server2",
        command,
        "--junit",
        &paths[0],
        "--gradescope",
        &paths[1],
        "--json",
        &paths[2],
    ];
    let out = run("check", &args, LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        xml.contains("<failure") && xml.contains("no socket here"),
        "{xml}"
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(&gradescope).expect("written")).unwrap();
    assert_eq!(results["score"], 0, "{results}");
    let tests = results["tests"].as_array().expect("tests");
    assert!(tests.len() >= 14, "{results}");
    assert!(tests.iter().all(|t| t["status"] == "failed"), "{results}");
    assert!(
        tests[0]["output"]
            .as_str()
            .is_some_and(|o| o.contains("no socket here")),
        "{results}"
    );
    let all: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("written")).unwrap();
    assert_eq!(all["score"], 0, "{all}");
    for path in [junit, gradescope, json] {
        let _ = std::fs::remove_file(path);
    }
}

/// Everything the command starts (here a background `sleep`) is ended with it.
#[cfg(unix)]
#[test]
fn forked_processes_are_ended() {
    let pids = scratch("pids");
    let command = format!(
        "sleep 300 & echo $! >> '{}'; exec {}",
        pids.display(),
        ours("server2")
    );
    let (out, _) = grade("server2", &command, &["--only", "greeting"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let started = std::fs::read_to_string(&pids).expect("the command ran");
    let _ = std::fs::remove_file(&pids);
    assert!(
        started.lines().count() >= 2,
        "one start up front, one for the check"
    );
    for pid in started.lines().map(str::trim) {
        // Killed processes are gone at once, but whoever inherits them may reap them a
        // little later: a zombie is not running.
        let gone = common::retry(Duration::from_secs(2), || (!running(pid)).then_some(()));
        assert!(gone.is_some(), "process {pid} outlived check");
    }
}

/// Whether process `pid` runs (a zombie does not), from `/proc` or else `kill -0`.
#[cfg(unix)]
fn running(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) if std::path::Path::new("/proc/self").exists() => false,
        Err(_) => std::process::Command::new("kill")
            .args(["-0", pid])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}
