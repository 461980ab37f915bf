//! `check`: grades a coursework server, ours or a student's, against the contract.
//!
//! ```text
//! cargo build --release --bin check
//! target/release/check --as server2 'python3 server2.py localhost {port}'
//! target/release/check --help
//! ```
//!
//! For every check the named role must pass, `check` starts the command afresh on a
//! free loopback port (in a process group of its own), waits until the port accepts
//! connections, drives the check, and kills the group. The protocol of SPEC
//! section 4 is assumed, and the mode's behaviour (sections 6 and 7). The report goes to stdout; `--junit`, `--json` and
//! `--gradescope` write files. Exit status: 0 all passed, 1 any failed, 2 a usage
//! error or a server that never started listening.
//!
//! Layout: `cli` (options, the roles and modes), `server` (the process), `console`
//! (its stdin and stdout) and `ready` (is it listening), `conn` (a client with
//! deadlines and a step log), `outcome` (results),
//! `checks/` (the list and the runner; `lines`, `clients`, `lifecycle`), `report`
//! (stdout), `files` (JUnit, JSON, Gradescope); this file runs them in order.

mod checks;
mod cli;
mod conn;
mod console;
mod files;
mod outcome;
mod ready;
mod report;
mod server;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use cli::Cli;
use outcome::{Outcome, Status};
use server::ServerProcess;

/// Exit status for a usage error or a server that never listened.
const UNUSABLE: u8 = 2;
/// How long past `--timeout` the watchdog waits for the check in progress to end.
const OVERRUN: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let cli = Cli::parse();
    ::cli::init_logging(&cli.verbosity);
    install_interrupt_handler();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("check: {e}");
            ExitCode::from(UNUSABLE)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    let grading = cli.grading();
    let chosen: Vec<&checks::Check> = checks::for_grading(grading)
        .filter(|c| cli.only.is_empty() || cli.only.iter().any(|n| n == c.name))
        .collect();
    if let Some(unknown) = cli
        .only
        .iter()
        .find(|n| !checks::for_grading(grading).any(|c| c.name == *n))
    {
        let names: Vec<&str> = checks::for_grading(grading).map(|c| c.name).collect();
        return Err(format!(
            "--only: {} has no check `{unknown}`; its checks are {}",
            grading.describe(),
            names.join(", "),
        ));
    }

    // One start up front: a server that never listens is a usage problem (exit 2),
    // shown with its output, rather than a failure of every check. The report files
    // are written all the same (every check failed, score 0, the output in each), so
    // an autograder shows a score and the reason rather than an error.
    if let Err(e) = ServerProcess::start(&cli.command, cli.start_timeout) {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "check: {}", e.message);
        let _ = writeln!(out, "server output:\n{}", indent(&e.output));
        let outcomes: Vec<Outcome> = chosen
            .iter()
            .map(|check| {
                let mut o = checks::not_run(
                    check,
                    Status::Fail,
                    format!("not run: {}", e.message),
                    Some(NEVER_STARTED.into()),
                );
                o.server_output = Some(e.output.clone());
                o
            })
            .collect();
        write_files(cli, grading, &outcomes)?;
        return Ok(ExitCode::from(UNUSABLE));
    }

    let deadline = Instant::now() + cli.timeout;
    watchdog(cli.timeout + OVERRUN);
    let mut outcomes: Vec<Outcome> = Vec::new();
    for check in chosen {
        if Instant::now() >= deadline {
            outcomes.push(timed_out(check, cli.timeout));
            continue;
        }
        if let Some(need) = checks::failed_need(check, grading, &outcomes) {
            let why = format!(
                "skipped: it relies on `{}` ({}), which failed",
                need.name, need.title
            );
            outcomes.push(checks::not_run(check, Status::Skip, why, None));
            continue;
        }
        tracing::debug!(check = check.name, "running");
        outcomes.push(checks::run(check, grading, &cli.command, cli.start_timeout));
    }

    let colour = std::io::stdout().is_terminal();
    let text = report::report(&grading.describe(), &cli.command, &outcomes, colour);
    let mut out = std::io::stdout();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    write_files(cli, grading, &outcomes)?;
    let failed = outcomes.iter().any(|o| o.status == Status::Fail);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The cause given for every check when the server never started.
const NEVER_STARTED: &str = "the server never started listening, so no check could run: \
     run the command yourself and read its output (a syntax error, a crash at start, a \
     hard-coded port instead of the one given)";

/// Writes the `--junit`, `--json` and `--gradescope` files asked for.
fn write_files(cli: &Cli, grading: cli::Grading, outcomes: &[Outcome]) -> Result<(), String> {
    let name = grading.describe();
    if let Some(path) = &cli.junit {
        files::write_junit(path, &name, outcomes)?;
    }
    if let Some(path) = &cli.json {
        files::write_json(path, &name, &cli.command, outcomes)?;
    }
    if let Some(path) = &cli.gradescope {
        files::write_gradescope(path, &name, outcomes)?;
    }
    Ok(())
}

/// A check not started because the whole run's `--timeout` had passed.
fn timed_out(check: &checks::Check, timeout: Duration) -> Outcome {
    Outcome {
        name: check.name,
        title: check.title,
        weight: check.weight,
        status: Status::Fail,
        message: Some(format!(
            "not run: the whole run's --timeout ({timeout:?}) had passed"
        )),
        cause: Some("the checks before it took too long; raise --timeout".into()),
        seconds: 0.0,
        steps: Vec::new(),
        server_output: None,
    }
}

/// Every wait in a check has its own deadline; this is the backstop behind them all.
fn watchdog(limit: Duration) {
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            std::thread::sleep(limit);
            server::kill_all();
            eprintln!("check: still running {limit:?} after starting; giving up");
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::warn!("no watchdog: {e}");
    }
}

/// A server runs in a process group of its own, which the terminal's Ctrl-C does not
/// reach: kill them all on the way out.
fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        server::kill_all();
        eprintln!("\ncheck: interrupted");
        std::process::exit(130);
    });
}

fn indent(text: &str) -> String {
    match text.trim().is_empty() {
        true => "  (nothing)".into(),
        false => text.lines().map(|l| format!("  | {l}\n")).collect(),
    }
}
