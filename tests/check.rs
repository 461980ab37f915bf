//! The `check` binary end to end: it grades correctly. Deliberately faulty Python
//! servers (`tests/check/*.py`, one bug each) must fail the right check with the right
//! explanation, and nothing else; correct ones, and our own server1–server4, must
//! pass every check. Needs `python3` for the Python servers (those tests say so and
//! pass without it); every run is killed and fails the test past its time limit.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::{bin, in_parallel, run};
use serde_json::Value;

/// A whole `check` run: about 15 checks, each a few seconds at worst.
const LIMIT: Duration = Duration::from_secs(120);

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
    let mut args = vec!["--as", role, command, "--json", &json_arg];
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
fn assert_all_pass(role: &str, command: &str) {
    let (out, json) = grade(role, command, &[]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{command} as {role}:\n{report}");
    assert!(with_status(&json, "fail").is_empty(), "{report}");
    if cfg!(target_os = "linux") {
        assert!(with_status(&json, "skip").is_empty(), "{report}");
    }
    assert!(with_status(&json, "pass").len() >= 12, "{report}");
}

/// One fixture with one bug: the role it is graded as, the check it must fail, words
/// from that check's explanation, and every check it may fail (the bug's knock-on
/// effects); every other check must pass.
struct Faulty {
    script: &'static str,
    role: &'static str,
    check: &'static str,
    cause: &'static str,
    may_fail: &'static [&'static str],
}

impl std::fmt::Debug for Faulty {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}", self.script)
    }
}

const FAULTY: &[Faulty] = &[
    Faulty {
        script: "recv_framing.py",
        role: "server2",
        check: "several-lines",
        cause: "frames by recv() size",
        may_fail: &["split-line", "several-lines", "dribble"],
    },
    Faulty {
        script: "serial_threads.py",
        role: "server2",
        check: "second-client",
        cause: "serves one client at a time",
        may_fail: &["second-client", "many-clients", "reset", "slow-reader"],
    },
    Faulty {
        script: "single_hang.py",
        role: "server1",
        check: "second-client",
        cause: "left hanging in the listen backlog",
        may_fail: &["second-client"],
    },
    Faulty {
        script: "select_chat.py spin",
        role: "server3",
        check: "no-spin",
        cause: "keeps a closed socket",
        may_fail: &["no-spin"],
    },
    Faulty {
        script: "select_chat.py die-on-reset",
        role: "server3",
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
        ],
    },
    Faulty {
        script: "blocking_echo.py",
        role: "server4",
        check: "slow-reader",
        cause: "blocks in send()/sendall()",
        may_fail: &["slow-reader"],
    },
    Faulty {
        script: "bye_left_open.py",
        role: "server2",
        check: "bye",
        cause: "connection was left open",
        may_fail: &["bye", "several-lines", "no-spin"],
    },
    Faulty {
        script: "lossy_echo.py",
        role: "server4",
        check: "echo-exact",
        cause: "the echo changed the bytes",
        may_fail: &["echo-exact"],
    },
    Faulty {
        script: "sigterm_ignored.py",
        role: "server2",
        check: "sigterm",
        cause: "ignores or catches SIGTERM",
        may_fail: &["sigterm"],
    },
    Faulty {
        script: "sigterm_ignored.py int",
        role: "server2",
        check: "sigint",
        cause: "Ctrl-C did not end the server",
        may_fail: &["sigint"],
    },
    Faulty {
        script: "good_single.py stuck",
        role: "server1",
        check: "next-client",
        cause: "the next one was not served",
        // Every check that needs a second session after the first meets it.
        may_fail: &["next-client", "bye", "reset", "no-spin", "still-serving"],
    },
];

/// Each faulty server fails the check its bug breaks, with the explanation of that
/// bug, and passes every check its bug does not touch; the run exits 1.
#[test]
fn faulty_servers_fail_the_right_check() {
    if !python("faulty_servers_fail_the_right_check") {
        return;
    }
    in_parallel(FAULTY, |f| {
        if matches!(f.check, "sigterm" | "sigint") && !cfg!(unix) {
            return;
        }
        if f.check == "no-spin" && !cfg!(target_os = "linux") {
            return;
        }
        let (out, json) = grade(f.role, &fixture(f.script), &[]);
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

/// Correct Python servers, one per role, pass every check.
#[test]
fn correct_servers_pass_every_check() {
    if !python("correct_servers_pass_every_check") {
        return;
    }
    let cases = [
        ("server1", "good_single.py"),
        ("server2", "good_threaded.py"),
        ("server3", "select_chat.py"),
        ("server4", "good_echo.py"),
    ];
    in_parallel(&cases, |(role, script)| {
        assert_all_pass(role, &fixture(script))
    });
}

/// Our own server1–server4 pass every check of their role.
#[test]
fn our_servers_pass_every_check() {
    in_parallel(&common::COURSEWORK, |name| {
        assert_all_pass(name, &ours(name))
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
