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

/// Where a server listens: `[HOST] [PORT]` (SPEC section 2).
#[derive(Debug, Args)]
pub struct Address {
    /// Address to listen on: a name (`localhost`), an IPv4 or an IPv6 literal (`::1`).
    #[arg(default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks any free port (shown in the `listening on` line).
    #[arg(default_value_t = 5000)]
    pub port: u16,
}

/// The command line of a server whose behaviour is fixed (the examples):
/// `[HOST] [PORT] [-v | -q]`.
#[derive(Debug, Args)]
pub struct BasicArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub address: Address,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub verbosity: Verbosity<InfoLevel>,
}

/// The command line every server accepts (SPEC section 2).
#[derive(Debug, Args)]
pub struct ServerArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub address: Address,
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

/// Parses the command line `A` for binary `name`; clap prints help and
/// version, and exits with status 2 on a usage error.
pub fn parse_args<A: Args + FromArgMatches>(
    name: &'static str,
    about: &'static str,
    adjust: impl FnOnce(Command) -> Command,
) -> A {
    let command = A::augment_args(Command::new(name))
        .about(about)
        .version(env!("CARGO_PKG_VERSION"));
    let matches: ArgMatches = adjust(command).get_matches();
    A::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The whole life of a server binary: parse, log, bind, serve, exit code.
pub fn server_main(
    name: &'static str,
    about: &'static str,
    strategy: &dyn ConnectionStrategy,
    default_mode: ModeName,
) -> ExitCode {
    let args: ServerArgs = parse_args(name, about, |command| {
        command.mut_arg("mode", |arg| {
            arg.default_value(default_mode.as_str()).required(false)
        })
    });
    init_logging(&args.verbosity);
    exit_code(name, run_server(&args, strategy))
}

/// The whole life of a server with its own [`Mode`] (as the examples are):
/// `NAME [HOST] [PORT] [-v | -q]`, served by [`switchboard::run`].
pub fn serve_main(
    name: &'static str,
    about: &'static str,
    strategy: &dyn ConnectionStrategy,
    mode: Arc<dyn Mode>,
) -> ExitCode {
    let args: BasicArgs = parse_args(name, about, |command| command);
    init_logging(&args.verbosity);
    let Address { host, port } = &args.address;
    exit_code(
        name,
        switchboard::run(strategy, host, *port, Server::new(mode)),
    )
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
    switchboard::run(strategy, &args.address.host, args.address.port, server)
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
