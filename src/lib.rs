//! What the binaries share: the server command line, logging, and running a
//! model as a process ([`run`]). Each `serverN` binary is [`server_main`]
//! with its model and default mode fixed; `server` picks them from the
//! library's lists.

mod address;
pub mod process;
mod run;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{ArgMatches, Args, Command, FromArgMatches};
use clap_verbosity_flag::{InfoLevel, Verbosity};
use switchboard::access::Net;
use switchboard::mode::{self, ModeEntry, MODES};
use switchboard::strategy::Model;
use switchboard::{Limits, Server};

pub use address::{check_host, parse as parse_address, Address, AddressArgs, Refusal};
pub use run::run;

/// The command line every server accepts.
#[derive(Debug, Args)]
pub struct ServerArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub address: AddressArgs,
    /// What each line means.
    #[arg(long, value_name = "MODE", value_parser = mode_parser())]
    pub mode: &'static ModeEntry,
    /// Connections served at once; one more gets `ERR busy` and is closed.
    #[arg(long, default_value_t = 1024, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_clients: u32,
    /// Close a client silent for this many seconds (fractions allowed) with `ERR idle timeout`.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, allow_hyphen_values = true)]
    pub idle_timeout: Option<Duration>,
    /// Longest line accepted, in bytes, not counting `\n` or `\r\n`.
    #[arg(long, default_value_t = 65536, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_line: u32,
    /// Serve only peers in this network (`10.0.0.0/8`, `::1`); repeatable.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<Net>,
    /// Never serve peers in this network (wins over --allow); repeatable.
    /// Refused peers get `ERR forbidden`.
    #[arg(long, value_name = "CIDR")]
    pub deny: Vec<Net>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub verbosity: Verbosity<InfoLevel>,
}

impl ServerArgs {
    /// The server these options describe.
    pub fn server(&self) -> Server {
        let mut server = Server::with_mode((self.mode.build)());
        server.limits = Limits {
            max_clients: self.max_clients as usize,
            idle_timeout: self.idle_timeout,
            max_line: self.max_line as usize,
        };
        self.allow.iter().for_each(|&net| server.access.allow(net));
        self.deny.iter().for_each(|&net| server.access.deny(net));
        // The operator's stdout gets a thread of its own, so that a stalled
        // terminal or pipe never stalls the server (the library starts none).
        server.screen = switchboard::console::Screen::start();
        server
    }
}

/// `--mode NAME`, from the library's one list of modes.
fn mode_parser() -> impl TypedValueParser<Value = &'static ModeEntry> {
    let names = MODES
        .iter()
        .map(|m| PossibleValue::new(m.name).help(m.about));
    PossibleValuesParser::new(names).try_map(|name| mode::find(&name).ok_or("no such mode"))
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{text}`: give a positive number of seconds"))
}

/// A number of seconds between `min` and `max`, as `compare` and `check`
/// take their windows and timeouts.
pub fn seconds_between(text: &str, min: f64, max: f64) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|e: std::num::ParseFloatError| e.to_string())?;
    if !(min..=max).contains(&secs) {
        return Err(format!("must be between {min} and {max} seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses the command line `A` for binary `name`; clap prints help and
/// version, and exits with status 2 on a usage error.
pub fn parse_args<A: Args + FromArgMatches>(
    name: &'static str,
    about: &'static str,
    adjust: impl FnOnce(Command) -> Command,
) -> A {
    let command = A::augment_args(Command::new(name))
        .about(about)
        // HOST and PORT are optional, and clap's own usage line in an
        // error shows the ones given as if they were required.
        .override_usage(format!("{name} [HOST] [PORT] [OPTIONS]"))
        .version(env!("CARGO_PKG_VERSION"));
    let matches: ArgMatches = adjust(command).get_matches();
    A::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The whole life of a coursework binary (`server1`–`server4`): `model`
/// and the default mode are fixed, the rest is [`ServerArgs`].
pub fn server_main(
    name: &'static str,
    about: &'static str,
    model: &'static Model,
    default_mode: &'static ModeEntry,
) -> ExitCode {
    let args: ServerArgs = parse_args(name, about, |command| {
        with_default_mode(command, default_mode)
    });
    let address = args.address.or_exit(name);
    init_logging(&args.verbosity);
    exit_code(name, run(model, &address, args.server()))
}

/// Makes `--mode` optional, defaulting to `mode`.
pub fn with_default_mode(command: Command, mode: &'static ModeEntry) -> Command {
    command.mut_arg("mode", |arg| arg.default_value(mode.name).required(false))
}

/// Status 0, or 1 after one line on stderr saying why.
pub fn exit_code(name: &str, result: Result<(), switchboard::Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `RUST_LOG`, when set, wins over `-v` / `-q`.
///
/// Without either, a process whose stderr is a terminal logs warnings and
/// errors only: there the logs share the screen with the operator's console
/// (or the client's conversation), and a line per connection drowns it. Each
/// `-v` is one step more (`-v` info, `-vv` debug; `RUST_LOG=trace` for all)
/// and each `-q` one step less. Into a pipe or a file (CI, tests, `2>log`)
/// nothing changes: info, `-v` debug, `-vv` trace.
pub fn init_logging(verbosity: &Verbosity<InfoLevel>) {
    use tracing_subscriber::EnvFilter;
    let on_terminal = std::io::stderr().is_terminal();
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = log_filter(verbosity, on_terminal, rust_log.as_deref());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(on_terminal)
        .with_target(false)
        .with_env_filter(EnvFilter::new(filter))
        .init();
}

/// The `tracing` filter [`init_logging`] sets up, as text.
fn log_filter(
    verbosity: &Verbosity<InfoLevel>,
    on_terminal: bool,
    rust_log: Option<&str>,
) -> String {
    use tracing_subscriber::filter::LevelFilter;
    if let Some(spec) = rust_log.filter(|s| !s.is_empty()) {
        return spec.to_owned();
    }
    let level = verbosity.tracing_level_filter();
    let level = match (on_terminal, level) {
        (false, level) => level,
        (true, LevelFilter::TRACE) => LevelFilter::DEBUG,
        (true, LevelFilter::DEBUG) => LevelFilter::INFO,
        (true, LevelFilter::INFO) => LevelFilter::WARN,
        (true, LevelFilter::WARN) => LevelFilter::ERROR,
        (true, _) => LevelFilter::OFF,
    };
    level.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a terminal the default is one step quieter (warnings), each `-v`
    /// one step louder from there; elsewhere info as before; `RUST_LOG` wins.
    #[test]
    fn log_levels() {
        let at = |v, q, terminal, rust_log| {
            log_filter(&Verbosity::<InfoLevel>::new(v, q), terminal, rust_log).to_lowercase()
        };
        assert_eq!(at(0, 0, false, None), "info");
        assert_eq!(at(1, 0, false, None), "debug");
        assert_eq!(at(0, 1, false, None), "warn");
        assert_eq!(at(0, 0, true, None), "warn");
        assert_eq!(at(1, 0, true, None), "info");
        assert_eq!(at(2, 0, true, None), "debug");
        assert_eq!(at(3, 0, true, None), "debug");
        assert_eq!(at(0, 1, true, None), "error");
        assert_eq!(at(0, 2, true, None), "off");
        assert_eq!(at(0, 0, true, Some("info")), "info");
        assert_eq!(at(0, 2, false, Some("debug")), "debug");
        assert_eq!(at(0, 0, true, Some("")), "warn");
    }
}
