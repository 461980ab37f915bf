//! What the binaries share: the server command line, logging, and running a
//! strategy to an exit code. Each `serverN` binary is this plus one line
//! naming its strategy.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgMatches, Args, Command, FromArgMatches, ValueEnum};
use clap_verbosity_flag::{InfoLevel, Verbosity};
use switchboard::console::Console;
use switchboard::mode::{Calc, Chat, Echo, Reverse};
use switchboard::{ConnectionStrategy, Limits, Mode, Server, Shutdown};

/// The per-line behaviours a server can run (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeName {
    /// The operator at the server's console talks with the clients.
    Chat,
    /// Each line is an arithmetic expression; the reply is its value.
    Calc,
    /// Every line comes back unchanged, byte for byte.
    Echo,
    /// Every line comes back reversed.
    Reverse,
}

impl ModeName {
    /// The name as typed after `--mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModeName::Chat => "chat",
            ModeName::Calc => "calc",
            ModeName::Echo => "echo",
            ModeName::Reverse => "reverse",
        }
    }

    fn build(self, console: &Arc<Console>) -> Arc<dyn Mode> {
        match self {
            ModeName::Chat => Arc::new(Chat::new(Arc::clone(console))),
            ModeName::Calc => Arc::new(Calc),
            ModeName::Echo => Arc::new(Echo),
            ModeName::Reverse => Arc::new(Reverse),
        }
    }
}

/// The command line every server accepts (SPEC section 2).
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on: a name (`localhost`), an IPv4 or an IPv6 literal (`::1`).
    #[arg(default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks any free port (shown in the `listening on` line).
    #[arg(default_value_t = 5000)]
    pub port: u16,
    /// What each line means.
    #[arg(long, value_enum)]
    pub mode: ModeName,
    /// Connections served at once; one more gets `ERR busy` and is closed.
    #[arg(long, default_value_t = 1024, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_clients: u32,
    /// Close a client silent for this many seconds (fractions allowed) with `ERR idle timeout`.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub idle_timeout: Option<Duration>,
    /// Longest line accepted, in bytes, not counting `\n` or `\r\n`.
    #[arg(long, default_value_t = 65536, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_line: u32,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub verbosity: Verbosity<InfoLevel>,
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

/// Parses the server command line for binary `name` (clap exits with status 2
/// on a usage error), with `--mode` defaulting to `default_mode`.
pub fn parse_server_args(
    name: &'static str,
    about: &'static str,
    default_mode: ModeName,
) -> ServerArgs {
    let command = ServerArgs::augment_args(Command::new(name))
        .about(about)
        .version(env!("CARGO_PKG_VERSION"))
        .mut_arg("mode", |arg| {
            arg.default_value(default_mode.as_str()).required(false)
        });
    let matches: ArgMatches = command.get_matches();
    ServerArgs::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The whole life of a server binary: parse, log, bind, serve, exit code.
pub fn server_main(
    name: &'static str,
    about: &'static str,
    strategy: &dyn ConnectionStrategy,
    default_mode: ModeName,
) -> ExitCode {
    let args = parse_server_args(name, about, default_mode);
    init_logging(&args.verbosity);
    match run_server(&args, strategy) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_server(
    args: &ServerArgs,
    strategy: &dyn ConnectionStrategy,
) -> Result<(), switchboard::Error> {
    let console = Console::new();
    let server = Server {
        mode: args.mode.build(&console),
        limits: Limits {
            max_clients: args.max_clients as usize,
            idle_timeout: args.idle_timeout,
            max_line: args.max_line as usize,
        },
        console,
        shutdown: Shutdown::new(),
    };
    tracing::debug!(mode = args.mode.as_str(), "mode");
    switchboard::run(strategy, &args.host, args.port, server)
}

/// Logs go to stderr; `RUST_LOG`, when set, wins over `-v` / `-q`.
pub fn init_logging(verbosity: &Verbosity<InfoLevel>) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(verbosity.tracing_level_filter().to_string()),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_env_filter(filter)
        .init();
}
