//! Command-line options of `check`, and the four coursework roles it grades against.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use clap_verbosity_flag::{InfoLevel, Verbosity};

/// Grades a coursework server (yours or a student's, in any language) against the
/// switchboard contract: starts it on a free loopback port, runs every check the named
/// server and its mode must pass (for chat, at its console), each against a fresh
/// start, and reports pass, fail or skip.
///
/// Exit status: 0 when every check passed (or was skipped), 1 when any failed, 2 on a
/// usage error or a server that never started listening.
#[derive(Debug, Parser)]
#[command(name = "check", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Which coursework server the command must behave as.
    #[arg(long = "as", value_name = "SERVER", value_enum)]
    pub role: Role,

    /// The shell command that starts the server, with `{port}` where the port goes.
    #[arg(value_name = "CMD", value_parser = parse_command)]
    pub command: String,

    /// What the server does with lines other than `Hi` and `bye` (default: chat for
    /// server1-server3, echo for server4); that mode's checks run.
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<Mode>,

    /// The console commands the server claims: `plain` (a plain line goes to the client
    /// who spoke last) or `full` (also `@ID`, `@all`, `/list`, `/kick`, `/quit`).
    #[arg(long, value_enum, default_value = "plain", value_name = "KIND")]
    pub console: Console,

    /// Seconds the server may take to accept connections after each start.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = seconds)]
    pub start_timeout: Duration,

    /// Seconds the whole run may take; checks not started by then fail.
    #[arg(long, default_value = "300", value_name = "SECS", value_parser = seconds)]
    pub timeout: Duration,

    /// Run only these checks (comma-separated names, as the report shows them).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub only: Vec<String>,

    /// Write a JUnit XML report (one testcase per check) for CI.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write every check, its steps and the server's output as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write Gradescope's `results.json` (a score per check, from its weight).
    #[arg(long, value_name = "FILE")]
    pub gradescope: Option<PathBuf>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub verbosity: Verbosity<InfoLevel>,
}

const EXAMPLES: &str = "\
Examples:
  check --as server2 'python3 server2.py localhost {port}'
  check --as server3 --console full 'python3 server3.py localhost {port}'
  check --as server2 --mode calc 'python3 calc.py localhost {port}'
  check --as server4 './server4 127.0.0.1 {port}' --junit report.xml
  check --as server1 'java Server1 {port}' --gradescope /autograder/results/results.json";

impl Cli {
    /// What is graded: the role, the mode it defaults to, the console claimed.
    pub fn grading(&self) -> Grading {
        Grading {
            role: self.role,
            mode: self.mode.unwrap_or(match self.role.echo() {
                true => Mode::Echo,
                false => Mode::Chat,
            }),
            console: self.console,
        }
    }
}

/// The server's per-line behaviour (SPEC section 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Lines go to the operator at the server's console, and back.
    Chat,
    /// Each line is an arithmetic expression, answered with its value.
    Calc,
    /// Each line comes back byte for byte.
    Echo,
    /// Each line comes back reversed by grapheme.
    Reverse,
}

/// How much of the operator console (SPEC section 7) the server claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Console {
    /// A plain line goes to the client who spoke last.
    Plain,
    /// Also `@ID text`, `@all text`, `/list`, `/kick ID` and `/quit`.
    Full,
}

/// What a run grades: the role, the mode and the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grading {
    /// The coursework server.
    pub role: Role,
    /// Its mode.
    pub mode: Mode,
    /// Its console.
    pub console: Console,
}

impl Grading {
    /// Lines come back byte for byte, `Hi` included.
    pub fn echo(self) -> bool {
        self.mode == Mode::Echo
    }

    /// The answer to `Hi`: `Hello`, echoed in echo mode.
    pub fn greeting(self) -> &'static [u8] {
        match self.echo() {
            true => b"Hi",
            false => b"Hello",
        }
    }

    /// How the run is named in the reports: `server3`, `server2 --mode calc`.
    pub fn describe(self) -> String {
        let mut text = self.role.name().to_string();
        let default = match self.role.echo() {
            true => Mode::Echo,
            false => Mode::Chat,
        };
        if self.mode != default {
            text.push_str(&format!(" --mode {}", self.mode.name()));
        }
        if self.console == Console::Full && self.mode == Mode::Chat {
            text.push_str(" --console full");
        }
        text
    }
}

impl Mode {
    /// The mode's name, as `--mode` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Chat => "chat",
            Mode::Calc => "calc",
            Mode::Echo => "echo",
            Mode::Reverse => "reverse",
        }
    }
}

/// The coursework server a command is graded as (SPEC section 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Single-client: one session at a time, the others turned away at once.
    Server1,
    /// Thread-per-client chat server.
    Server2,
    /// Select-style chat server.
    Server3,
    /// Select-style echo server.
    Server4,
}

impl Role {
    /// The role's name, as `--as` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Server1 => "server1",
            Role::Server2 => "server2",
            Role::Server3 => "server3",
            Role::Server4 => "server4",
        }
    }

    /// Serves one client at a time and turns the others away.
    pub fn single(self) -> bool {
        self == Role::Server1
    }

    /// The echo server, whose default mode is echo.
    pub fn echo(self) -> bool {
        self == Role::Server4
    }
}

fn parse_command(text: &str) -> Result<String, String> {
    let text = text.trim();
    if !text.contains("{port}") {
        return Err("the command must contain {port}, where the port number goes".into());
    }
    Ok(text.to_string())
}

fn seconds(text: &str) -> Result<Duration, String> {
    cli::seconds_between(text, 0.1, 3600.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// clap's own consistency checks on the option definitions.
    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    /// `--as` and a command with `{port}` are required; the timeouts have defaults.
    #[test]
    fn required_and_defaults() {
        let cli = Cli::try_parse_from(["check", "--as", "server2", "python3 s.py {port}"]).unwrap();
        assert_eq!(cli.role, Role::Server2);
        assert_eq!(cli.start_timeout, Duration::from_secs(10));
        assert_eq!(cli.grading().mode, Mode::Chat);
        assert_eq!(cli.grading().console, Console::Plain);
        let cli = Cli::try_parse_from(["check", "--as", "server4", "x {port}"]).unwrap();
        assert_eq!(cli.grading().mode, Mode::Echo);
        let args = ["check", "--as", "server3", "--mode", "calc", "x {port}"];
        let cli = Cli::try_parse_from(args).unwrap();
        assert_eq!(cli.grading().describe(), "server3 --mode calc");
        assert!(Cli::try_parse_from(["check", "python3 s.py {port}"]).is_err());
        assert!(Cli::try_parse_from(["check", "--as", "server2", "python3 s.py 5000"]).is_err());
        assert!(Cli::try_parse_from(["check", "--as", "server9", "x {port}"]).is_err());
        assert!(
            Cli::try_parse_from(["check", "--as", "server1", "x {port}", "--timeout", "0"])
                .is_err()
        );
    }
}
