//! The checks, the one list of them with their default weights, and the runner that
//! gives each one a fresh start of the server.
//!
//! Each check is a function that drives the server through [`Conn`](crate::conn::Conn)s
//! and returns `Ok` or a [`Verdict`]: what was seen, and the usual cause. The
//! protocol of SPEC section 4 is assumed (`Hi` → `Hello`, echoed in echo mode;
//! `bye` → `bye` and close), and the mode's own behaviour (section 6): for chat,
//! the console of section 7 (`console`), for calc and reverse their answers
//! (`modes`). A check that relies on another's behaviour names it in `needs`, and
//! is skipped where that one failed.

mod clients;
mod console;
mod ctx;
mod lifecycle;
mod lines;
mod modes;

pub use ctx::Ctx;

use std::time::Duration;

use crate::cli::{Console, Grading, Mode};
use crate::outcome::{fail, Log, Outcome, Status, Verdict};
use crate::server::ServerProcess;

/// How long an answer to one line may take: generous for a busy grading machine,
/// short enough that silence is silence.
pub const REPLY: Duration = Duration::from_secs(2);
/// How long a connect may take.
pub const CONNECT: Duration = Duration::from_secs(5);

/// One check.
pub struct Check {
    /// Short name, as `--only` takes it.
    pub name: &'static str,
    /// What it proves, in a few words.
    pub title: &'static str,
    /// Default points in a Gradescope score.
    pub weight: u32,
    /// Whether a run grading this role, mode and console includes it.
    pub applies: fn(Grading) -> bool,
    /// Checks whose behaviour this one relies on: where one of them failed in the
    /// same run, this one is skipped, so one bug is charged once.
    pub needs: &'static [&'static str],
    run: fn(&mut Ctx) -> Result<(), Verdict>,
}

fn all(_: Grading) -> bool {
    true
}
fn single(g: Grading) -> bool {
    g.role.single()
}
fn multi(g: Grading) -> bool {
    !g.role.single()
}
fn echo(g: Grading) -> bool {
    g.mode == Mode::Echo
}
fn not_echo(g: Grading) -> bool {
    g.mode != Mode::Echo
}
fn chat(g: Grading) -> bool {
    g.mode == Mode::Chat
}
fn chat_multi(g: Grading) -> bool {
    chat(g) && multi(g)
}
fn full_console(g: Grading) -> bool {
    chat(g) && g.console == Console::Full
}
fn calc(g: Grading) -> bool {
    g.mode == Mode::Calc
}
fn reverse(g: Grading) -> bool {
    g.mode == Mode::Reverse
}

/// Most checks greet first: a server that cannot is charged once, by `greeting`.
const GREETED: &[&str] = &["greeting"];
/// Checks that serve a client after another has left: where a single-client server
/// never frees its seat (`next-client` failed), they are skipped. The name is only
/// in server1's runs, so for the others this is `GREETED`.
const LATER: &[&str] = &["greeting", "next-client"];
/// Checks that need two clients served at once (where the role serves many).
const TWO: &[&str] = &["greeting", "second-client"];
/// The console commands rely on lines reaching the operator and back, and on two
/// clients at once (one, for server1).
const CONSOLE: &[&str] = &["greeting", "second-client", "console-in", "console-out"];
/// `/kick` on server1 also needs the seat freed.
const KICK: &[&str] = &[
    "greeting",
    "next-client",
    "second-client",
    "console-in",
    "console-out",
];

/// Every check, in the order they run; the weights are the documented defaults.
pub const CHECKS: &[Check] = &[
    check("greeting", "Hi is answered", 10, all, &[], lines::greeting),
    check(
        "next-client",
        "the next client is served once the first leaves",
        10,
        single,
        GREETED,
        clients::next_client,
    ),
    check(
        "second-client",
        "a second client is turned away at once",
        15,
        single,
        GREETED,
        clients::turned_away,
    ),
    check(
        "second-client",
        "a second client is served while the first sits silent",
        15,
        multi,
        GREETED,
        clients::served_meanwhile,
    ),
    check(
        "bye",
        "bye is answered, then the connection closed",
        10,
        all,
        LATER,
        lines::bye,
    ),
    check(
        "split-line",
        "a line split over two packets is one line",
        10,
        all,
        GREETED,
        lines::split,
    ),
    check(
        "several-lines",
        "several lines in one packet are several lines",
        10,
        all,
        GREETED,
        lines::several,
    ),
    check(
        "dribble",
        "a line sent a byte at a time is one line",
        5,
        all,
        GREETED,
        lines::dribble,
    ),
    check(
        "echo-exact",
        "echo is byte-exact: binary, long lines, pipelined",
        15,
        echo,
        GREETED,
        lines::echo_exact,
    ),
    check(
        "console-in",
        "a client's line shows on the server's stdout",
        10,
        chat,
        GREETED,
        console::line_in,
    ),
    check(
        "console-out",
        "a line typed at the console reaches the client",
        10,
        chat,
        &["greeting", "console-in"],
        console::line_out,
    ),
    check(
        "console-non-reader",
        "operator lines to a client that never reads block nobody",
        10,
        chat_multi,
        CONSOLE,
        console::non_reader,
    ),
    check(
        "console-at-id",
        "@ID text reaches that client alone",
        5,
        full_console,
        CONSOLE,
        console::at_id,
    ),
    check(
        "console-all",
        "@all text reaches every client",
        5,
        full_console,
        CONSOLE,
        console::at_all,
    ),
    check(
        "console-list",
        "/list shows the clients",
        5,
        full_console,
        CONSOLE,
        console::list,
    ),
    check(
        "console-kick",
        "/kick ID closes that client alone",
        5,
        full_console,
        KICK,
        console::kick,
    ),
    check(
        "console-quit",
        "/quit tells the clients and ends the server",
        5,
        full_console,
        CONSOLE,
        console::quit,
    ),
    check(
        "calc",
        "expressions get Python's answers",
        15,
        calc,
        GREETED,
        modes::calc,
    ),
    check(
        "calc-no-eval",
        "input is never run as code",
        10,
        calc,
        GREETED,
        modes::calc_no_eval,
    ),
    check(
        "reverse",
        "lines come back reversed by grapheme",
        15,
        reverse,
        GREETED,
        modes::reverse,
    ),
    check(
        "many-clients",
        "100 clients at once are all served",
        10,
        multi,
        TWO,
        clients::many,
    ),
    check(
        "reset",
        "a client resetting mid-line harms nobody else",
        10,
        all,
        &["greeting", "next-client", "second-client"],
        clients::reset,
    ),
    check(
        "slow-reader",
        "a client that never reads stalls nobody else",
        10,
        multi,
        TWO,
        clients::slow_reader,
    ),
    check(
        "not-utf8",
        "bytes that are not UTF-8 never lead to silence",
        10,
        not_echo,
        LATER,
        clients::not_utf8,
    ),
    check(
        "descriptors",
        "sockets of clients that leave are closed",
        10,
        all,
        LATER,
        lifecycle::descriptors,
    ),
    check(
        "no-spin",
        "no CPU spin once clients have left",
        10,
        all,
        LATER,
        lifecycle::no_spin,
    ),
    check(
        "sigterm",
        "SIGTERM ends it within 2 s",
        5,
        all,
        GREETED,
        lifecycle::sigterm,
    ),
    check(
        "sigint",
        "SIGINT (Ctrl-C) ends it within 2 s",
        5,
        all,
        GREETED,
        lifecycle::sigint,
    ),
    check(
        "restart",
        "restarted on the same port at once, it listens",
        5,
        all,
        &["greeting", "sigterm"],
        lifecycle::restart,
    ),
    check(
        "still-serving",
        "still serving after clients leave without bye",
        5,
        all,
        LATER,
        lifecycle::still_serving,
    ),
];

const fn check(
    name: &'static str,
    title: &'static str,
    weight: u32,
    applies: fn(Grading) -> bool,
    needs: &'static [&'static str],
    run: fn(&mut Ctx) -> Result<(), Verdict>,
) -> Check {
    Check {
        name,
        title,
        weight,
        applies,
        needs,
        run,
    }
}

/// The checks a run grading `grading` includes.
pub fn for_grading(grading: Grading) -> impl Iterator<Item = &'static Check> {
    CHECKS.iter().filter(move |c| (c.applies)(grading))
}

/// The check's outcome when it is not run: `why` says what it waited on.
pub fn not_run(check: &Check, status: Status, why: String, cause: Option<String>) -> Outcome {
    Outcome {
        name: check.name,
        title: check.title,
        weight: check.weight,
        status,
        message: Some(why),
        cause,
        seconds: 0.0,
        steps: Vec::new(),
        server_output: None,
    }
}

/// The first of `check`'s needs that failed among `done`, if any. server1's
/// `second-client` (turned away) is another behaviour than the others' (served at
/// once): nothing of server1 relies on it.
pub fn failed_need<'o>(
    check: &Check,
    grading: Grading,
    done: &'o [Outcome],
) -> Option<&'o Outcome> {
    let relied_on = |name: &str| {
        check.needs.contains(&name) && !(name == "second-client" && grading.role.single())
    };
    done.iter()
        .find(|o| o.status == Status::Fail && relied_on(o.name))
}

/// Runs `check` against a fresh start of `command`. A server that does not start
/// this time fails the check.
pub fn run(check: &Check, grading: Grading, command: &str, start_timeout: Duration) -> Outcome {
    let log = Log::new();
    let mut outcome = Outcome {
        name: check.name,
        title: check.title,
        weight: check.weight,
        status: Status::Pass,
        message: None,
        cause: None,
        seconds: 0.0,
        steps: Vec::new(),
        server_output: None,
    };
    let verdict = match ServerProcess::start(command, start_timeout) {
        Err(e) => {
            outcome.server_output = Some(e.output);
            Err(fail(
                e.message,
                "the server did not start again for this check",
            ))
        }
        Ok(mut server) => {
            log.note(
                "server",
                format!("started `{}`, listening on {}", server.line, server.addr),
            );
            let addr = server.addr;
            let mut ctx = Ctx {
                role: grading.role,
                grading,
                command,
                start_timeout,
                server: &mut server,
                addr,
                log: &log,
            };
            let verdict = (check.run)(&mut ctx);
            server.stop();
            if verdict.is_err() {
                outcome.server_output = Some(server.output_tail(20));
            }
            verdict
        }
    };
    match verdict {
        Ok(()) => {}
        Err(Verdict::Fail { message, cause }) => {
            outcome.status = Status::Fail;
            outcome.message = Some(message);
            outcome.cause = Some(cause);
        }
        Err(Verdict::Skip(why)) => {
            outcome.status = Status::Skip;
            outcome.message = Some(why);
            outcome.server_output = None;
        }
    }
    outcome.seconds = log.elapsed().as_secs_f64();
    outcome.steps = log.steps();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Role;

    /// Each role and mode has its checks, no name twice; echo-exact only in echo
    /// mode, the console checks only in chat mode, the commands only when claimed.
    #[test]
    fn every_grading_has_distinct_checks() {
        for role in [Role::Server1, Role::Server2, Role::Server3, Role::Server4] {
            for mode in [Mode::Chat, Mode::Calc, Mode::Echo, Mode::Reverse] {
                for console in [Console::Plain, Console::Full] {
                    let grading = Grading {
                        role,
                        mode,
                        console,
                    };
                    let names: Vec<&str> = for_grading(grading).map(|c| c.name).collect();
                    let mut unique = names.clone();
                    unique.sort();
                    unique.dedup();
                    assert_eq!(unique.len(), names.len(), "{grading:?}: {names:?}");
                    assert!(names.contains(&"greeting") && names.contains(&"second-client"));
                    assert_eq!(names.contains(&"echo-exact"), mode == Mode::Echo);
                    assert_eq!(names.contains(&"console-in"), mode == Mode::Chat);
                    let full = mode == Mode::Chat && console == Console::Full;
                    assert_eq!(names.contains(&"console-kick"), full);
                    assert_eq!(names.contains(&"next-client"), role == Role::Server1);
                }
            }
        }
    }

    /// A check needs only checks that run before it, so a failure is known in time.
    #[test]
    fn needs_come_first() {
        for (i, check) in CHECKS.iter().enumerate() {
            for need in check.needs {
                assert!(
                    CHECKS[..i].iter().any(|c| c.name == *need),
                    "{} needs {need}, which does not run before it",
                    check.name
                );
            }
        }
    }
}
