//! `compare`: every concurrency model side by side, under the same load, in one table.
//!
//! ```text
//! cargo build --release --bins
//! target/release/compare                      # every strategy and workload, under a minute
//! target/release/compare --help
//! ```
//!
//! For each row `compare` starts a fresh server process on a free loopback port (the
//! real `server1`..`server4` binaries, or the built-in baseline, or `--external`
//! commands), drives one workload at it with the `loadgen` crate, reads the server's
//! CPU time, threads and memory from `/proc` exactly around the measured window, and
//! stops it. The table goes to stdout, progress to stderr.
//!
//! Layout: `cli` (options), `servers` (start, sample, stop), `model` (rows, settings),
//! `stats` (ratios to the baseline), `table`, `summary` and `units` (the text),
//! `files` (JSON/CSV/SVG); this file runs the rows.

mod cli;
mod files;
mod model;
mod servers;
mod stats;
mod summary;
mod table;
mod units;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use loadgen::baseline::threads::ThreadsBaseline;
use loadgen::baseline::Baseline;
use loadgen::procstat::{self, ProcSample};
use loadgen::{Exchange, Mark, Plan, Workload};

use cli::Cli;
use model::{Row, Settings};
use servers::Kind;
use stats::Ratios;

/// Servers listen on loopback only: the comparison is of the servers, not the network.
const HOST: &str = "127.0.0.1";
/// Fewest surviving idle connections for which memory per connection is shown.
const MIN_HELD: usize = 10;
/// Shortest window whose CPU figures are shown.
const MIN_CPU_WINDOW: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(addr) = cli.serve_baseline {
        return serve_baseline(
            Baseline::bind(addr).and_then(|s| Ok((s.local_addr()?, s))),
            Baseline::run,
        );
    }
    if let Some(addr) = cli.serve_baseline_threads {
        return serve_baseline(
            ThreadsBaseline::bind(addr).and_then(|s| Ok((s.local_addr()?, s))),
            ThreadsBaseline::run,
        );
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::from(1)
        }
    }
}

/// `compare --serve-baseline[-threads] ADDR`: a baseline as a process of its own,
/// announced the way every switchboard server announces itself.
fn serve_baseline<S>(
    bound: Result<(std::net::SocketAddr, S), loadgen::Error>,
    run: fn(S) -> Result<(), loadgen::Error>,
) -> ExitCode {
    let result = bound.and_then(|(local, server)| {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on {local}");
        let _ = out.flush();
        run(server)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: baseline: {e}");
            ExitCode::from(1)
        }
    }
}

/// One server to measure.
struct Target {
    name: String,
    kind: Kind,
}

/// One row to measure.
struct Job<'a> {
    target: &'a Target,
    workload: Workload,
    clients: usize,
}

fn run(cli: &Cli) -> Result<(), String> {
    let targets = targets(cli)?;
    let jobs = jobs(cli, &targets);
    if jobs.is_empty() {
        return Err("nothing to run".into());
    }
    check_descriptors(&jobs)?;
    servers::install_interrupt_handler();

    let order = schedule(&jobs, cli.repeat);
    let mut progress = Progress::new(cli, &jobs, &order);
    let mut runs: Vec<Vec<Row>> = vec![Vec::new(); jobs.len()];
    for (step, &i) in order.iter().enumerate() {
        progress.show(step, &jobs[i]);
        runs[i].push(measure(cli, &jobs[i])?);
    }
    progress.clear();
    let rows: Vec<Row> = runs
        .iter()
        .filter_map(|r| stats::least_disturbed(r))
        .collect();
    let ratios = stats::ratios(&runs);

    let settings = Settings {
        mode: cli.mode.clone(),
        size: cli.size,
        duration_s: cli.duration.as_secs_f64(),
        warmup_s: cli.warmup.as_secs_f64(),
        gen_threads: cli.gen_threads,
        repeat: cli.repeat,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        process_stats: procstat::SUPPORTED,
    };
    print_report(&settings, &rows, &ratios);
    if let Some(path) = &cli.json {
        files::write_json(path, &settings, &rows, &ratios)?;
    }
    if let Some(path) = &cli.csv {
        files::write_csv(path, &rows)?;
    }
    if let Some(path) = &cli.svg {
        files::write_svg(path, &rows)?;
    }
    Ok(())
}

/// The servers to run, in the order asked; fails early if a binary is missing.
/// `cargo run --bin compare` builds compare alone, so the servers beside it
/// may be missing or stale. Started by cargo (which sets `CARGO` and
/// `CARGO_MANIFEST_DIR`), compare first builds them in its own profile.
fn build_servers_under_cargo(dir: &Path) -> Result<(), String> {
    let (Some(cargo), Some(manifest_dir)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("CARGO_MANIFEST_DIR"),
    ) else {
        return Ok(());
    };
    let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
    let mut command = std::process::Command::new(cargo);
    command
        .arg("build")
        .arg("--bins")
        .arg("--manifest-path")
        .arg(Path::new(&manifest_dir).join("Cargo.toml"));
    match profile {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    eprintln!("compare: building the servers ({profile})");
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo to build the servers: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building the servers failed ({status})"))
    }
}

fn targets(cli: &Cli) -> Result<Vec<Target>, String> {
    let dir = match &cli.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|p| p.to_path_buf()))
            .ok_or("cannot find the directory of this executable; pass --bin-dir")?,
    };
    if cli.bin_dir.is_none() {
        build_servers_under_cargo(&dir)?;
    }
    let mut targets: Vec<Target> = Vec::new();
    let mut missing = Vec::new();
    for name in &cli.strategies {
        if targets.iter().any(|t| &t.name == name) {
            continue;
        }
        let kind = match name.as_str() {
            "baseline" => Kind::Baseline { threads: false },
            "baseline-threads" => Kind::Baseline { threads: true },
            _ => {
                let exe = servers::binary(&dir, name);
                if !exe.is_file() {
                    missing.push(name.clone());
                }
                Kind::Builtin { exe }
            }
        };
        targets.push(Target {
            name: name.clone(),
            kind,
        });
    }
    if !missing.is_empty() {
        return Err(format!(
            "{} not found in {}; build the servers with `cargo build --release --bins` (or point --bin-dir at them)",
            missing.join(", "),
            dir.display()
        ));
    }
    for (i, ext) in cli.external.iter().enumerate() {
        targets.push(Target {
            name: ext.name.clone().unwrap_or_else(|| format!("ext{}", i + 1)),
            kind: Kind::External {
                command: ext.command.clone(),
            },
        });
    }
    for (i, &addr) in cli.attach.iter().enumerate() {
        targets.push(Target {
            name: format!("attach{}", i + 1),
            kind: Kind::Attached { addr },
        });
    }
    Ok(targets)
}

/// Every (strategy, workload, load) row, grouped by strategy, workloads in a fixed order.
fn jobs<'a>(cli: &Cli, targets: &'a [Target]) -> Vec<Job<'a>> {
    let wants = |w: &str| cli.workloads.iter().any(|x| x == w);
    let mut jobs = Vec::new();
    for target in targets {
        let mut add = |workload, clients| {
            jobs.push(Job {
                target,
                workload,
                clients,
            })
        };
        if wants("pingpong") {
            for &c in &cli.clients {
                add(Workload::PingPong, c);
            }
        }
        if wants("pipelined") {
            for &c in &cli.pipelined_clients {
                add(Workload::Pipelined { depth: cli.depth }, c);
            }
        }
        if wants("churn") {
            add(Workload::Churn, cli.churn_clients);
        }
        if wants("idle") {
            for &c in &cli.idle {
                add(Workload::Idle { hold: cli.hold }, c);
            }
        }
    }
    jobs
}

/// The order in which rows are measured, as indices into `jobs`, every row once per
/// round. Rounds rather than back-to-back repeats: a disturbance of a few seconds then
/// spoils one repetition of several rows, not every repetition of one row. Within a
/// round, the strategies under one load run one after another, so each is measured
/// moments from the baseline it is divided by; every other round runs backwards, so no
/// strategy is always the one furthest from its baseline.
fn schedule(jobs: &[Job], rounds: usize) -> Vec<usize> {
    let load = |j: &Job| {
        jobs.iter()
            .position(|k| k.workload == j.workload && k.clients == j.clients)
    };
    let mut round: Vec<usize> = (0..jobs.len()).collect();
    round.sort_by_key(|&i| load(&jobs[i])); // stable: strategies keep their order
    (0..rounds)
        .flat_map(|r| {
            let mut this = round.clone();
            if r % 2 == 1 {
                this.reverse();
            }
            this
        })
        .collect()
}

/// Refuses runs that need more descriptors than this process may open (each client is
/// one here; the server needs as many, under the same inherited limit).
fn check_descriptors(jobs: &[Job]) -> Result<(), String> {
    let most = jobs.iter().map(|j| j.clients).max().unwrap_or(0) as u64;
    match servers::open_files_limit() {
        Some(limit) if most + 64 > limit => Err(format!(
            "{most} connections need more than the open-files limit of {limit}; raise it (ulimit -n {})",
            most + 256
        )),
        _ => Ok(()),
    }
}

/// Runs one row: a fresh server, one load run, the server's accounting around it.
fn measure(cli: &Cli, job: &Job) -> Result<Row, String> {
    let target = job.target;
    let baseline = matches!(target.kind, Kind::Baseline { .. });
    let framed = !matches!(target.kind, Kind::Baseline { .. } | Kind::Attached { .. });
    // Room for every client, plus the probe connections of an external start where the
    // kernel's socket tables cannot be read.
    let max_clients = (job.clients + 64).max(1024);
    let mut server = servers::start(&target.kind, HOST, &cli.mode, max_clients)?;

    let mut plan = Plan::new(server.addr, job.workload, job.clients);
    // The baseline has no modes: it always echoes.
    plan.exchange = match cli.mode.as_str() {
        "reverse" if framed => Exchange::reverse(cli.size),
        "calc" if framed => Exchange::calc(cli.size),
        _ => Exchange::echo(cli.size),
    };
    plan.warmup = cli.warmup;
    plan.duration = cli.duration;
    plan.threads = cli.gen_threads;
    plan.reply_timeout = cli.reply_timeout;
    // The baseline does not frame lines, so it cannot close after `bye`.
    plan.server_closes = !baseline;

    let before = server.sample();
    let (mut start, mut end): (Option<ProcSample>, Option<ProcSample>) = (None, None);
    let (mut sys_start, mut sys_end) = (None, None);
    let report = loadgen::run(&plan, &mut |mark| match mark {
        Mark::MeasureStart | Mark::Held => {
            sys_start = procstat::sample_system().ok();
            start = server.sample();
        }
        Mark::MeasureEnd | Mark::Pinged => {
            end = server.sample();
            sys_end = procstat::sample_system().ok();
        }
        Mark::Connected => {}
    })
    .map_err(|e| format!("{}: {e}", target.name))?;

    let mut first_error = report.first_error.clone();
    if server.exited() {
        let why = server.failure_reason();
        first_error.get_or_insert(format!("the server exited during the run: {why}"));
    }

    // /proc counts CPU in 10 ms ticks: over a window shorter than half a second (an idle
    // ping round) the figures would be mostly rounding, so they are left out.
    let long_enough = report.window >= MIN_CPU_WINDOW;
    let per_msg = |d: Duration| {
        (report.messages > 0 && long_enough).then(|| d.as_secs_f64() * 1e6 / report.messages as f64)
    };
    let load = |d: Duration| long_enough.then(|| d.as_secs_f64() / report.window.as_secs_f64());
    let cpu = match (&start, &end) {
        (Some(s), Some(e)) => Some(e.cpu_since(s)),
        _ => None,
    };
    let threads = start.iter().chain(end.iter()).map(|s| s.threads).max();
    let mem_per_conn = match (job.workload, &before, &start, &end) {
        // With a handful of survivors (server1 keeps one) page-sized RSS steps would be
        // reported as per-connection cost.
        (Workload::Idle { .. }, Some(b), Some(s), Some(e)) if report.served >= MIN_HELD => {
            let held = s.rss.max(e.rss).saturating_sub(b.rss);
            Some(held as f64 / report.served as f64)
        }
        _ => None,
    };
    // Whatever else kept the CPUs busy in the window: other processes (a build, a
    // neighbour on a shared machine) or CPU stolen by the hypervisor.
    let other = match (sys_start, sys_end, cpu, report.generator_cpu) {
        (Some(a), Some(b), Some(srv), Some(gen)) => {
            let system = b.since(&a);
            let others = system.busy.saturating_sub(srv.total() + gen.total()) + system.steal;
            load(others)
        }
        _ => None,
    };
    let lat = |d: Duration| d.as_secs_f64() * 1e6;
    let row = Row {
        strategy: target.name.clone(),
        workload: job.workload.name().to_string(),
        depth: job.workload.depth(),
        clients: job.clients,
        connected: report.connected,
        served: report.served,
        rejected: report.rejected,
        errors: report.errors,
        first_error,
        messages: report.messages,
        window_s: report.window.as_secs_f64(),
        msgs_per_s: report.rate(),
        p50_us: lat(report.latency.p50),
        p99_us: lat(report.latency.p99),
        p999_us: lat(report.latency.p999),
        max_us: lat(report.latency.max),
        cpu_user_us_per_msg: cpu.and_then(|c| per_msg(c.user)),
        cpu_sys_us_per_msg: cpu.and_then(|c| per_msg(c.system)),
        server_threads: threads,
        server_peak_bytes: end.map(|e| e.peak_rss),
        mem_per_conn_bytes: mem_per_conn,
        server_load: cpu.and_then(|c| load(c.total())),
        gen_load: report.generator_cpu.and_then(|c| load(c.total())),
        other_load: other,
        repeats: 1,
        gen_cpu_us_per_msg: report.generator_cpu.and_then(|c| per_msg(c.total())),
    };
    drop(server);
    Ok(row)
}

fn print_report(settings: &Settings, rows: &[Row], ratios: &[Ratios]) {
    let mut out = String::new();
    out.push_str(&format!(
        "switchboard compare: {} mode, {}-byte lines, {} s windows after {} s warm-up, \
         {} generator thread(s), {} CPUs{}\n\n",
        settings.mode,
        settings.size,
        settings.duration_s,
        settings.warmup_s,
        settings.gen_threads,
        settings.cpus,
        if settings.repeat > 1 {
            format!(", least disturbed of {} runs per row", settings.repeat)
        } else {
            String::new()
        }
    ));
    out.push_str(&table::table(rows));
    out.push_str(
        "\nclients: asked for (churn: parallel connect loops; idle: connections held). served: got \
         replies (idle: survived the ping). rej: turned away with ERR busy.\nmsg/s: lines answered \
         per second (churn: connect/Hi/bye/close cycles; idle: pings). Latency per request \
         (pipelined: per batch; churn: per cycle).\nusr/sys per msg: the server's CPU time per \
         message; thr, peak mem: its threads and peak RSS; mem/conn: RSS growth per idle \
         connection.\nsrv, gen: CPU use of the server and of the load generator in the window (100% = one \
         core); a single-threaded side at ~100% is the one that limits throughput.\nother: CPU used by \
         anything else during the window (other processes, hypervisor steal); above ~20% the row \
         was disturbed and is worth re-running.\n",
    );
    if !settings.process_stats {
        out.push_str("Server statistics come from /proc and are only available on Linux.\n");
    }
    if !ratios.is_empty() {
        out.push_str(&if settings.repeat > 1 {
            format!(
                "\nRelative to the baseline under the same load, median (lowest-highest) of \
                 {} rounds, each strategy paired with the baseline run of its round:\n",
                settings.repeat
            )
        } else {
            "\nRelative to the baseline under the same load (one round each; for figures to \
             quote, --repeat 5 gives medians with their spread):\n"
                .to_string()
        });
        out.push_str(&stats::ratio_lines(ratios));
    }
    let errors: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let e = r.first_error.as_ref()?;
            Some(format!(
                "  {} {} {}: {e}",
                r.strategy, r.workload, r.clients
            ))
        })
        .collect();
    if !errors.is_empty() {
        out.push_str("\nFirst error of rows with errors:\n");
        out.push_str(&errors.join("\n"));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&summary::summary(rows, ratios));
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

/// The progress line on stderr: rewritten in place on a terminal, a line per row
/// otherwise (logs).
struct Progress {
    enabled: bool,
    terminal: bool,
    total: usize,
    /// Estimated seconds per step of the schedule, to show the time left.
    estimates: Vec<f64>,
}

impl Progress {
    fn new(cli: &Cli, jobs: &[Job], order: &[usize]) -> Self {
        let estimates: Vec<f64> = order
            .iter()
            .map(|&i| match jobs[i].workload {
                Workload::Idle { hold } => hold.as_secs_f64() + 0.3 + jobs[i].clients as f64 * 5e-5,
                _ => (cli.warmup + cli.duration).as_secs_f64() + 0.15,
            })
            .collect();
        Progress {
            enabled: !cli.quiet,
            terminal: std::io::stderr().is_terminal(),
            total: estimates.len(),
            estimates,
        }
    }

    fn show(&mut self, i: usize, job: &Job) {
        if !self.enabled {
            return;
        }
        let left: f64 = self.estimates[i..].iter().sum();
        let what = match job.workload {
            Workload::Pipelined { depth } => format!("pipelined x{depth}"),
            w => w.name().to_string(),
        };
        let line = format!(
            "[{:>width$}/{}] {:<9} {:<13} {:>6} clients   ~{:.0} s left",
            i + 1,
            self.total,
            job.target.name,
            what,
            job.clients,
            left.ceil(),
            width = self.total.to_string().len()
        );
        let mut err = std::io::stderr();
        if self.terminal {
            let _ = write!(err, "\r\x1b[K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.enabled && self.terminal {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under each load the strategies run back to back, and every other round runs
    /// backwards, so each row is measured close to its baseline.
    #[test]
    fn schedule_keeps_each_load_together() {
        let target = |name: &str| Target {
            name: name.into(),
            kind: Kind::Baseline { threads: false },
        };
        let (base, server) = (target("baseline"), target("server4"));
        let job = |target, clients| Job {
            target,
            workload: Workload::PingPong,
            clients,
        };
        // As `jobs` builds them: grouped by strategy.
        let jobs = [
            job(&base, 50),
            job(&base, 500),
            job(&server, 50),
            job(&server, 500),
        ];
        assert_eq!(schedule(&jobs, 2), [0, 2, 1, 3, 3, 1, 2, 0]);
    }
}
