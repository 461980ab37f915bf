//! Command-line options of `compare` and the checks clap cannot do by itself.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use clap::builder::PossibleValuesParser;
use clap::Parser;
use switchboard::strategy::MODELS;

use crate::row::{LoadMode, WorkloadName};

/// Runs every concurrency model side by side under the same load and prints one table.
///
/// Each strategy runs as its own server process (the real `server1`..`server4` binaries,
/// found next to this executable) on a free loopback port; a built-in load generator
/// drives the same workloads at each, and the server's CPU time, threads and memory are
/// read from the operating system's accounting of that process (Linux; `n/a` elsewhere).
/// The row `baseline` is a minimal single-threaded mio echo loop without line framing:
/// the yardstick for every ratio. `baseline-threads` and `baseline-async` (not run unless
/// asked for) are the minimal thread-per-client echo server and tokio's own echo example
/// (a task per connection, `--workers` runtime threads): what those models cost before
/// any server code. In a run without `baseline`, the first of them is the yardstick.
///
/// Build the servers first: `cargo build --release --bins`.
#[derive(Debug, Parser)]
#[command(name = "compare", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Strategies to run, one group of rows each in the order given: `baseline`, every
    /// model of `server --model list`, the coursework's `server1`..`server4`,
    /// `baseline-threads` and `baseline-async`. By default the baseline and every model
    /// that can run here.
    #[arg(short, long, value_delimiter = ',', default_value = DEFAULT_STRATEGIES.as_str(),
          value_parser = PossibleValuesParser::new(built_in()))]
    pub strategies: Vec<String>,

    /// Your own server as another row: a shell command with `{port}` where the port goes,
    /// optionally prefixed by `NAME=` (letters, digits, `-`, `_`). Repeatable. It must
    /// listen on `--host` at that port within 10 s and speak switchboard's line protocol
    /// for `--mode` (echo by default): every line ending in `\n` answered by exactly one
    /// line (echo: the same bytes back); churn also sends `Hi` (any one-line answer) and
    /// `bye` (answered `bye`, then the server closes). A line starting `ERR busy` turns a
    /// client away; any other reply that differs is an error, reported at the first
    /// differing byte. If it fails to start, its row is marked failed and the others run.
    #[arg(long, value_name = "[NAME=]CMD", value_parser = parse_external)]
    pub external: Vec<External>,

    /// A server that is already running, as another row: driven, but with no CPU or
    /// memory figures. `NAME=ADDR` names the row (default `attachN`); an IPv6 address is
    /// written `[::1]:5000`. Repeatable.
    #[arg(long, value_name = "[NAME=]ADDR", value_parser = parse_attach)]
    pub attach: Vec<Attach>,

    /// The loopback address every server is started on and driven at: `127.0.0.1`, or
    /// `::1` for IPv6 (an `--external` server must then listen on `::1`).
    #[arg(long, default_value = "127.0.0.1", value_parser = host)]
    pub host: String,

    /// Workloads to run: pingpong, pipelined, churn, idle, heavy (calc mode; a few
    /// clients send a slow line, and the others' latency is what is measured), and
    /// sweep (each model's closed-loop maximum, then open-loop steps of offered load up
    /// to past it: where its latency turns up).
    #[arg(
        short,
        long,
        value_delimiter = ',',
        default_value = "pingpong,pipelined,churn,heavy,idle,sweep"
    )]
    pub workloads: Vec<WorkloadName>,

    /// Sweep: clients for the closed-loop maximum and every open-loop step.
    #[arg(long, default_value_t = 10, value_parser = positive)]
    pub sweep_clients: usize,

    /// Sweep: open-loop steps, evenly spaced from 10% to 120% of the closed-loop maximum
    /// [default: 10 with -w sweep; 5 in the default run, to keep it short].
    #[arg(long, value_name = "N", value_parser = positive)]
    pub sweep_steps: Option<usize>,

    /// Sweep: times each step is measured, in rounds that run the steps up, then down.
    /// Each step is drawn as the median of its repeats with their range.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = positive)]
    pub sweep_repeats: usize,

    /// Sweep: measured window of each step, in seconds (CPU figures need 0.5 s); a step
    /// at a low rate is given longer (up to 3 s), so that it holds 2,000 requests.
    #[arg(long, default_value = "0.5", value_parser = nonzero_seconds)]
    pub sweep_duration: Duration,

    /// Sweep: a p99 latency the knee must also stay under (`1ms`, `500us`, `0.002`
    /// seconds) [default: none; the knee is where latency and throughput break].
    #[arg(long, value_parser = latency)]
    pub slo: Option<Duration>,

    /// Open loop: ping-pong at R requests per second in total, each client on a fixed
    /// schedule (staggered, so they never fire together), latency timed from when each
    /// request was due; the uncorrected figure (from the actual send) is shown beside it.
    /// Without it ping-pong is closed-loop: each client sends when its reply is in.
    #[arg(long, value_name = "R", value_parser = rate)]
    pub rate: Option<f64>,

    /// Client counts for ping-pong (one row per count).
    #[arg(short, long, value_delimiter = ',', default_value = "10,100", value_parser = positive)]
    pub clients: Vec<usize>,

    /// Heavy: how many of the clients send the slow calc line (the rest send cheap
    /// ones and are the ones timed). Heavy rows are run for each `--clients` count above
    /// this (in the default run, the first).
    #[arg(long, default_value_t = 2, value_parser = positive)]
    pub heavy_clients: usize,

    /// Client counts for pipelined.
    #[arg(long, value_delimiter = ',', default_value = "10", value_parser = positive)]
    pub pipelined_clients: Vec<usize>,

    /// Lines per write in pipelined (K lines out in one write, then all K replies).
    #[arg(long, default_value_t = 32, value_parser = positive)]
    pub depth: usize,

    /// Concurrent connect/Hi/bye/close loops for churn.
    #[arg(long, default_value_t = 10, value_parser = positive)]
    pub churn_clients: usize,

    /// Connections opened and held by idle (one row per count). With two or more
    /// counts, memory per connection is also fitted as the slope of RSS against them.
    #[arg(long, value_delimiter = ',', default_value = "1000,4000", value_parser = positive)]
    pub idle: Vec<usize>,

    /// How long idle connections are held silent before each is pinged, in seconds
    /// (0.3 in the default run).
    #[arg(long, default_value = "0.5", value_parser = seconds)]
    pub hold: Duration,

    /// Bytes per line, not counting the newline.
    #[arg(long, default_value_t = 64)]
    pub size: usize,

    /// Measured window per row, in seconds (0.5 in the default run). The ratio
    /// of user CPU per message appears only when both sides spend 0.2 s in user
    /// space in every round: about `-d 10` for an echo server.
    #[arg(short, long, default_value = "1", value_parser = nonzero_seconds)]
    pub duration: Duration,

    /// Traffic before each measured window, in seconds, not counted (0.1 in the
    /// default run).
    #[arg(long, default_value = "0.2", value_parser = seconds)]
    pub warmup: Duration,

    /// Server mode (chat needs an operator, so it cannot be load-tested).
    #[arg(short, long, default_value = "echo", value_parser = LoadMode::parser())]
    pub mode: LoadMode,

    /// Threads for the models that have workers (`server --workers N`)
    /// [default: the servers' own, the number of cores].
    #[arg(long, value_name = "N", value_parser = positive)]
    pub workers: Option<usize>,

    /// Measure every row this many times, in rounds. Each ratio to the baseline is then
    /// the median over the rounds (with the lowest and highest), each strategy divided by
    /// the baseline run of its own round; the table keeps each row's run least disturbed
    /// by other processes (lowest `other`), and each idle row's run of the middle memory.
    /// For shared or busy machines.
    #[arg(long, default_value_t = 1, value_parser = positive)]
    pub repeat: usize,

    /// Load-generator threads (each its own mio loop with a share of the clients).
    #[arg(long, default_value_t = 1, value_parser = positive)]
    pub gen_threads: usize,

    /// Seconds a client waits for a reply before counting an error.
    #[arg(long, default_value = "5", value_parser = nonzero_seconds)]
    pub reply_timeout: Duration,

    /// Where the server binaries are [default: the directory of this executable].
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Write every figure as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write every figure as CSV, one line per row.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Draw throughput and p99 latency against ping-pong clients as an SVG chart.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,

    /// Write the report as one self-contained HTML page, charts first (inline SVG; it
    /// opens offline) [default: target/compare/report.html beside the build, else
    /// compare-report.html here].
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Regression gate: set each ratio to the baseline beside the one stored in
    /// OLD.json (an earlier `compare --json` of the same rows).
    #[arg(long, value_name = "OLD.json")]
    pub against: Option<PathBuf>,

    /// With --against: exit 3 when any model's CPU per message or p99 ratio to the
    /// baseline is more than PCT percent worse than the stored one.
    #[arg(long, value_name = "PCT", requires = "against", value_parser = percent)]
    pub fail_over: Option<f64>,

    /// Write no HTML page.
    #[arg(long, conflicts_with = "html")]
    pub no_html: bool,

    /// No progress line.
    #[arg(short, long)]
    pub quiet: bool,

    /// Internal: serve the baseline echo loop on ADDR (compare starts itself this way).
    #[arg(long, hide = true, value_name = "ADDR")]
    pub serve_baseline: Option<std::net::SocketAddr>,

    /// Internal: serve the thread-per-client baseline on ADDR.
    #[arg(
        long,
        hide = true,
        value_name = "ADDR",
        conflicts_with = "serve_baseline"
    )]
    pub serve_baseline_threads: Option<std::net::SocketAddr>,

    /// Internal: serve the async (tokio) baseline on ADDR, with `--workers` threads.
    #[arg(
        long,
        hide = true,
        value_name = "ADDR",
        conflicts_with_all = ["serve_baseline", "serve_baseline_threads"]
    )]
    pub serve_baseline_async: Option<std::net::SocketAddr>,

    /// Whether the workloads were left at their default (the default run).
    #[arg(skip)]
    pub default_run: bool,
}

const EXAMPLES: &str = "\
Examples:
  compare                                   every strategy, every workload: about two minutes on 2 cores
  compare -w pingpong -c 50,500 -d 3        ping-pong only, two loads, 3 s windows
  compare -w pipelined --depth 32 --size 16384
  compare -s baseline,server3,server4 -w idle --idle 10000
  compare --external 'py=python3 server.py {port}' -s baseline
  compare --json out.json --csv out.csv --svg out.svg
  compare -w pingpong --repeat 5 --against main.json --fail-over 15   a CI gate (exit 3)";

impl Cli {
    /// Parses the command line, noting whether the workloads were left at their default.
    pub fn parse_args() -> Cli {
        use clap::CommandFactory;
        Cli::resolve(&Cli::command().get_matches()).unwrap_or_else(|e| e.exit())
    }

    /// The options as given, and — when no workload was named, so every one runs —
    /// the default run's shorter windows for the options left at their default: a
    /// tour of every model and workload that takes about two minutes on two cores.
    fn resolve(matches: &clap::ArgMatches) -> Result<Cli, clap::Error> {
        use clap::FromArgMatches;
        let mut cli = Cli::from_arg_matches(matches)?;
        let defaulted =
            |id| matches.value_source(id) == Some(clap::parser::ValueSource::DefaultValue);
        cli.default_run = defaulted("workloads");
        if cli.default_run {
            if defaulted("duration") {
                cli.duration = Duration::from_millis(500);
            }
            if defaulted("warmup") {
                cli.warmup = Duration::from_millis(100);
            }
            if defaulted("hold") {
                cli.hold = Duration::from_millis(300);
            }
        }
        Ok(cli)
    }

    /// Open-loop steps per sweep: as asked, else 10, or 5 in the default run.
    pub fn sweep_steps(&self) -> usize {
        self.sweep_steps
            .unwrap_or(if self.default_run { 5 } else { 10 })
    }
}

/// A user-supplied server: `NAME=CMD` or `CMD`, where CMD contains `{port}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct External {
    /// The row's label.
    pub name: Option<String>,
    /// The shell command, `{port}` not yet replaced.
    pub command: String,
}

/// A running server to drive: `NAME=ADDR` or `ADDR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attach {
    /// The row's label.
    pub name: Option<String>,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
}

/// The yardsticks compare serves itself.
pub const BASELINES: [&str; 3] = ["baseline", "baseline-threads", "baseline-async"];
/// The coursework's binaries, each one model with its mode fixed.
pub const COURSEWORK: [&str; 4] = ["server1", "server2", "server3", "server4"];

/// Every built-in row name (`--strategies`), which an external server may not
/// take: the baselines, the library's models, the coursework's binaries.
fn built_in() -> impl Iterator<Item = &'static str> {
    let models = MODELS.iter().map(|m| m.name);
    BASELINES.into_iter().chain(models).chain(COURSEWORK)
}

/// The baseline and every model that can run here (io-uring is Linux-only).
static DEFAULT_STRATEGIES: LazyLock<String> = LazyLock::new(|| {
    let runnable = MODELS.iter().filter(|m| m.strategy.check().is_ok());
    let models = runnable.map(|m| m.name);
    ["baseline"]
        .into_iter()
        .chain(models)
        .collect::<Vec<_>>()
        .join(",")
});

/// Splits an optional `NAME=` label (letters, digits, `-`, `_`) off `text`, refusing
/// the names of built-in rows.
fn row_name(text: &str) -> Result<(Option<String>, &str), String> {
    let (name, rest) = match text.split_once('=') {
        Some((name, rest))
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            (Some(name.to_string()), rest.trim())
        }
        _ => (None, text.trim()),
    };
    if let Some(taken) = name.as_deref().filter(|n| built_in().any(|b| b == *n)) {
        return Err(format!(
            "{taken} is the name of a built-in row; pick another"
        ));
    }
    Ok((name, rest))
}

fn parse_attach(text: &str) -> Result<Attach, String> {
    let (name, addr) = row_name(text)?;
    let addr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an address like 127.0.0.1:5000 or [::1]:5000"))?;
    Ok(Attach { name, addr })
}

fn parse_external(text: &str) -> Result<External, String> {
    let (name, command) = row_name(text)?;
    if !command.contains("{port}") {
        return Err("the command must contain {port}, where the port number goes".into());
    }
    Ok(External {
        name,
        command: command.to_string(),
    })
}

/// A host the servers can be started on: one that resolves (`127.0.0.1`, `::1`,
/// `localhost`).
fn host(text: &str) -> Result<String, String> {
    let text = text.trim().trim_start_matches('[').trim_end_matches(']');
    switchboard::net::resolve(text, 0).map_err(|e| e.to_string())?;
    Ok(text.to_string())
}

/// A latency: `1ms`, `500us` (or `µs`), `2s`, or plain seconds.
fn latency(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("us").or(text.strip_suffix("µs")) {
        (n, 1e-6)
    } else {
        (text.strip_suffix('s').unwrap_or(text), 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * scale <= 3600.0 => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => Err(format!(
            "{text:?} is not a latency like 1ms, 500us or 0.002"
        )),
    }
}

/// A percentage: a number of 0 or more (`10`, `2.5`).
fn percent(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('%').parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        _ => Err("must be a percentage, 0 or more".into()),
    }
}

/// Requests per second: a positive, finite number (`20000`, `2.5e4`).
fn rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        Ok(_) => Err("must be a positive number of requests per second".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn positive(text: &str) -> Result<usize, String> {
    match usize::from_str(text.trim()) {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A window or a timeout: zero would measure nothing, so it is a usage error.
fn nonzero_seconds(text: &str) -> Result<Duration, String> {
    seconds(text).and_then(|d| match d.is_zero() {
        true => Err("must be longer than 0 seconds".into()),
        false => Ok(d),
    })
}

fn seconds(text: &str) -> Result<Duration, String> {
    cli::seconds_between(text, 0.0, 3600.0)
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

    /// Defaults: the baseline and every model, every workload, a modest
    /// client list, short windows.
    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["compare"]).unwrap();
        assert_eq!(cli.strategies[0], "baseline");
        let runnable = MODELS.iter().filter(|m| m.strategy.check().is_ok());
        let models: Vec<&str> = runnable.map(|m| m.name).collect();
        assert_eq!(cli.strategies[1..], models);
        assert_eq!(cli.workloads.len(), 6);
        assert_eq!(cli.clients, vec![10, 100]);
        assert_eq!(cli.duration, Duration::from_secs(1));
    }

    /// With no workload named, every one runs, in shorter windows — unless the
    /// window was asked for; naming a workload keeps the full-length defaults.
    #[test]
    fn the_default_run_is_shorter() {
        use clap::CommandFactory;
        let resolve = |args: &[&str]| {
            let matches = Cli::command().try_get_matches_from(args).unwrap();
            Cli::resolve(&matches).unwrap()
        };
        let tour = resolve(&["compare"]);
        assert!(tour.default_run);
        assert_eq!(tour.duration, Duration::from_millis(500));
        assert_eq!(tour.warmup, Duration::from_millis(100));
        assert_eq!(tour.hold, Duration::from_millis(300));
        assert_eq!(tour.sweep_steps(), 5);
        let asked = resolve(&["compare", "-d", "2"]);
        assert_eq!(asked.duration, Duration::from_secs(2));
        let named = resolve(&["compare", "-w", "pingpong,sweep"]);
        assert!(!named.default_run);
        assert_eq!(named.duration, Duration::from_secs(1));
        assert_eq!(named.sweep_steps(), 10);
    }

    /// Comma lists and fractional seconds parse; zero clients and unknown names do not.
    #[test]
    fn lists_and_numbers() {
        let cli = Cli::try_parse_from(["compare", "-c", "1,10,100,1000", "-d", "0.25"]).unwrap();
        assert_eq!(cli.clients, vec![1, 10, 100, 1000]);
        assert_eq!(cli.duration, Duration::from_millis(250));
        assert!(Cli::try_parse_from(["compare", "-c", "0"]).is_err());
        assert!(Cli::try_parse_from(["compare", "-s", "server9"]).is_err());
        assert!(Cli::try_parse_from(["compare", "-m", "chat"]).is_err());
        assert!(Cli::try_parse_from(["compare", "-d", "-1"]).is_err());
        for (slo, us) in [
            ("1ms", 1000),
            ("500us", 500),
            ("250µs", 250),
            ("0.002", 2000),
        ] {
            let cli = Cli::try_parse_from(["compare", "--slo", slo]).unwrap();
            assert_eq!(cli.slo, Some(Duration::from_micros(us)), "{slo}");
        }
        assert!(Cli::try_parse_from(["compare", "--slo", "0ms"]).is_err());
        let cli = Cli::try_parse_from(["compare", "--rate", "2.5e4"]).unwrap();
        assert_eq!(cli.rate, Some(25_000.0));
        for bad in ["0", "-5", "inf", "fast"] {
            assert!(
                Cli::try_parse_from(["compare", "--rate", bad]).is_err(),
                "{bad}"
            );
        }
    }

    /// `--external` needs `{port}` and takes an optional `NAME=` label.
    #[test]
    fn external_commands() {
        assert_eq!(
            parse_external("py=python3 s.py --port={port}").unwrap(),
            External {
                name: Some("py".into()),
                command: "python3 s.py --port={port}".into()
            }
        );
        assert_eq!(parse_external("python3 s.py {port}").unwrap().name, None);
        assert!(parse_external("python3 s.py 5000").is_err());
        assert!(
            parse_external("baseline=python3 s.py {port}").is_err(),
            "an external row must not pass for the yardstick"
        );
    }

    /// `--attach` takes an optional `NAME=` label, and IPv6 addresses.
    #[test]
    fn attached_servers() {
        let named = parse_attach("py=[::1]:5000").unwrap();
        assert_eq!(named.name.as_deref(), Some("py"));
        assert_eq!(named.addr, "[::1]:5000".parse().unwrap());
        assert_eq!(parse_attach("127.0.0.1:80").unwrap().name, None);
        assert!(parse_attach("server4=127.0.0.1:80").is_err());
        assert!(parse_attach("py=localhost").is_err());
    }
}
