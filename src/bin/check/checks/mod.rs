//! The checks, the one list of them with their default weights, and the runner that
//! gives each one a fresh start of the server.
//!
//! Each check is a function that drives the server through [`Conn`](crate::conn::Conn)s and returns `Ok`
//! or a [`Verdict`]: what was seen, and the usual cause. Only SPEC section 4 is
//! assumed: `Hi` → `Hello` (echoed by server4), `bye` → `bye` and close, and for
//! server4 every line echoed.

mod clients;
mod ctx;
mod lifecycle;
mod lines;

pub use ctx::Ctx;

use std::time::Duration;

use crate::cli::Role;
use crate::outcome::{fail, Log, Outcome, Status, Verdict};
use crate::server::ServerProcess;

/// How long an answer to one line may take: generous for a busy grading machine,
/// short enough that silence is silence.
pub const REPLY: Duration = Duration::from_secs(2);
/// How long a connect may take.
pub const CONNECT: Duration = Duration::from_secs(5);

/// Which roles a check applies to.
#[derive(Clone, Copy, Debug)]
pub enum Applies {
    /// Every coursework server.
    All,
    /// `server1` only.
    Single,
    /// `server2`–`server4`, which serve many clients at once.
    Multi,
    /// `server4` only.
    Echo,
}

/// One check.
pub struct Check {
    /// Short name, as `--only` takes it.
    pub name: &'static str,
    /// What it proves, in a few words.
    pub title: &'static str,
    /// Default points in a Gradescope score.
    pub weight: u32,
    /// The roles it is run for.
    pub applies: Applies,
    run: fn(&mut Ctx) -> Result<(), Verdict>,
}

/// Every check, in the order they run; the weights are the documented defaults.
pub const CHECKS: &[Check] = &[
    check(
        "greeting",
        "Hi is answered",
        10,
        Applies::All,
        lines::greeting,
    ),
    check(
        "bye",
        "bye is answered, then the connection closed",
        10,
        Applies::All,
        lines::bye,
    ),
    check(
        "split-line",
        "a line split over two packets is one line",
        10,
        Applies::All,
        lines::split,
    ),
    check(
        "several-lines",
        "several lines in one packet are several lines",
        10,
        Applies::All,
        lines::several,
    ),
    check(
        "dribble",
        "a line sent a byte at a time is one line",
        5,
        Applies::All,
        lines::dribble,
    ),
    check(
        "echo-exact",
        "echo is byte-exact: binary, long lines, pipelined",
        15,
        Applies::Echo,
        lines::echo_exact,
    ),
    check(
        "second-client",
        "a second client is turned away at once",
        15,
        Applies::Single,
        clients::turned_away,
    ),
    check(
        "next-client",
        "the next client is served once the first leaves",
        10,
        Applies::Single,
        clients::next_client,
    ),
    check(
        "second-client",
        "a second client is served while the first sits silent",
        15,
        Applies::Multi,
        clients::served_meanwhile,
    ),
    check(
        "many-clients",
        "100 clients at once are all served",
        10,
        Applies::Multi,
        clients::many,
    ),
    check(
        "reset",
        "a client resetting mid-line harms nobody else",
        10,
        Applies::All,
        clients::reset,
    ),
    check(
        "slow-reader",
        "a client that never reads stalls nobody else",
        10,
        Applies::Multi,
        clients::slow_reader,
    ),
    check(
        "no-spin",
        "no CPU spin once clients have left",
        10,
        Applies::All,
        lifecycle::no_spin,
    ),
    check(
        "sigterm",
        "SIGTERM ends it within 2 s",
        5,
        Applies::All,
        lifecycle::sigterm,
    ),
    check(
        "sigint",
        "SIGINT (Ctrl-C) ends it within 2 s",
        5,
        Applies::All,
        lifecycle::sigint,
    ),
    check(
        "still-serving",
        "still serving after clients leave without bye",
        5,
        Applies::All,
        lifecycle::still_serving,
    ),
];

const fn check(
    name: &'static str,
    title: &'static str,
    weight: u32,
    applies: Applies,
    run: fn(&mut Ctx) -> Result<(), Verdict>,
) -> Check {
    Check {
        name,
        title,
        weight,
        applies,
        run,
    }
}

impl Check {
    /// Whether `role` must pass this check.
    pub fn applies_to(&self, role: Role) -> bool {
        match self.applies {
            Applies::All => true,
            Applies::Single => role.single(),
            Applies::Multi => !role.single(),
            Applies::Echo => role.echo(),
        }
    }
}

/// The checks `role` must pass.
pub fn for_role(role: Role) -> impl Iterator<Item = &'static Check> {
    CHECKS.iter().filter(move |c| c.applies_to(role))
}

/// Runs `check` against a fresh start of `command`. A server that does not start
/// this time fails the check.
pub fn run(check: &Check, role: Role, command: &str, start_timeout: Duration) -> Outcome {
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
                role,
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

    /// Each role has its checks, no name twice, and echo-exact only for server4.
    #[test]
    fn every_role_has_distinct_checks() {
        for role in [Role::Server1, Role::Server2, Role::Server3, Role::Server4] {
            let names: Vec<&str> = for_role(role).map(|c| c.name).collect();
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{role:?}: {names:?}");
            assert!(names.contains(&"greeting") && names.contains(&"second-client"));
            assert_eq!(names.contains(&"echo-exact"), role == Role::Server4);
            assert_eq!(names.contains(&"next-client"), role == Role::Server1);
        }
    }
}
