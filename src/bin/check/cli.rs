//! Command-line options of `check`, and the four coursework roles it grades against.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use clap_verbosity_flag::{InfoLevel, Verbosity};

/// Grades a coursework server (yours or a student's, in any language) against the
/// switchboard contract: starts it on a free loopback port, runs every check the named
/// server must pass, each against a fresh start, and reports pass, fail or skip.
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
  check --as server4 './server4 127.0.0.1 {port}' --junit report.xml
  check --as server1 'java Server1 {port}' --gradescope /autograder/results/results.json";

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

    /// Echoes every line, `Hi` included, byte for byte.
    pub fn echo(self) -> bool {
        self == Role::Server4
    }

    /// The answer to `Hi`.
    pub fn greeting(self) -> &'static [u8] {
        if self.echo() {
            b"Hi"
        } else {
            b"Hello"
        }
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
        assert!(Cli::try_parse_from(["check", "python3 s.py {port}"]).is_err());
        assert!(Cli::try_parse_from(["check", "--as", "server2", "python3 s.py 5000"]).is_err());
        assert!(Cli::try_parse_from(["check", "--as", "server9", "x {port}"]).is_err());
        assert!(
            Cli::try_parse_from(["check", "--as", "server1", "x {port}", "--timeout", "0"])
                .is_err()
        );
    }
}
