//! `compare`: every concurrency model side by side, under the same load, in one table.
//!
//! ```text
//! cargo build --release --bins
//! target/release/compare                      # every strategy and workload, about two minutes
//! target/release/compare --help
//! ```
//!
//! For each row `compare` starts a fresh server process on a free loopback port (the
//! real `server1`..`server4` binaries, or the built-in baseline, or `--external`
//! commands), drives one workload at it with the `loadgen` crate, reads the server's
//! CPU time, threads and memory from `/proc` exactly around the measured window, and
//! stops it. The table goes to stdout, progress to stderr.
//!
//! Layout: `cli` (options), `jobs` (what to run, in which order), `servers` (start,
//! sample, stop), `measure` (one row), `progress` (stderr), `model` (rows, settings),
//! `stats` (ratios to the baseline), `flags` (why a row is not to be quoted), `report`,
//! `table`, `summary`, `verdict` and `units` (the text on stdout), `files` (JSON/CSV/SVG); this file runs the rows.

mod charts;
mod cli;
mod files;
mod flags;
mod gate;
mod html;
mod jobs;
mod manifest;
mod measure;
mod memory;
mod progress;
mod report;
mod row;
mod servers;
mod stats;
mod summary;
mod sweep;
mod table;
mod units;
mod verdict;

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;

use loadgen::baseline::tasks::TasksBaseline;
use loadgen::baseline::threads::ThreadsBaseline;
use loadgen::baseline::Baseline;
use loadgen::procstat;

use cli::Cli;
use progress::Progress;
use row::{Row, Settings};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
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
    if let Some(addr) = cli.serve_baseline_async {
        return serve_baseline(
            TasksBaseline::bind(addr, cli.workers).and_then(|s| Ok((s.local_addr()?, s))),
            TasksBaseline::run,
        );
    }
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::from(1)
        }
    }
}

/// Where the HTML page goes: `--html FILE`, else `target/compare/report.html` when this
/// compare runs from a cargo target directory, else `compare-report.html` here.
fn html_path(cli: &Cli) -> Option<std::path::PathBuf> {
    if cli.no_html {
        return None;
    }
    if let Some(path) = &cli.html {
        return Some(path.clone());
    }
    let exe = std::env::current_exe().ok();
    let target = exe
        .as_deref()
        .and_then(|e| e.parent()?.parent())
        .filter(|t| t.file_name().is_some_and(|n| n == "target"));
    Some(match target {
        Some(t) => t.join("compare").join("report.html"),
        None => "compare-report.html".into(),
    })
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

/// Exit status when `--fail-over` found a ratio worse than allowed.
const GATE_FAILED: u8 = 3;

fn run(cli: &Cli) -> Result<ExitCode, String> {
    let stored = cli.against.as_deref().map(gate::load).transpose()?;
    let targets = jobs::targets(cli)?;
    let jobs = jobs::jobs(cli, &targets);
    let sweeping = cli.workloads.contains(&row::WorkloadName::Sweep);
    if jobs.is_empty() && !sweeping {
        return Err("nothing to run".into());
    }
    jobs::check_descriptors(&jobs)?;
    servers::install_interrupt_handler();
    if row::BUILD == "debug" {
        eprintln!(
            "compare: WARNING: this is a DEBUG build, and so are the servers beside it: \
             their figures are many times slower than a release build's and say little. \
             Use `cargo run --release --bin compare`."
        );
    }

    let manifest = manifest::collect(row::BUILD);
    let order = jobs::schedule(&jobs, cli.repeat);
    let sweeps = if sweeping { targets.len() } else { 0 };
    let mut progress = Progress::new(cli, &jobs, &order, sweeps);
    let mut runs: Vec<Vec<Row>> = vec![Vec::new(); jobs.len()];
    // A server that failed to start fails its own rows; the others still run.
    let mut failed: HashMap<String, String> = HashMap::new();
    for (step, &i) in order.iter().enumerate() {
        let job = &jobs[i];
        progress.show(step, job);
        let name = &job.target.name;
        let row = match failed.get(name) {
            Some(why) => Row::failed(name, job.workload, job.clients, why.clone()),
            None => measure::measure(cli, job).unwrap_or_else(|why| {
                failed.insert(name.clone(), why.clone());
                Row::failed(name, job.workload, job.clients, why)
            }),
        };
        runs[i].push(row);
    }
    let mut step = order.len();
    let rows: Vec<Row> = runs.iter().filter_map(|r| stats::kept_run(r)).collect();
    let sweeps: Vec<sweep::Sweep> = match sweeping {
        true => targets
            .iter()
            .map(|t| {
                // A closed-loop ping-pong row at the sweep's client count is its 100%.
                let closed = rows.iter().find(|r| {
                    r.strategy == t.name
                        && r.workload == row::WorkloadName::PingPong
                        && r.clients == cli.sweep_clients
                        && !r.open_loop()
                        && r.msgs_per_s > 0.0
                });
                sweep::sweep(cli, t, closed.cloned(), &mut progress, &mut step)
            })
            .collect(),
        false => Vec::new(),
    };
    progress.clear();
    let ratios = stats::ratios(&runs);
    let memory = memory::fits(&rows);

    let settings = Settings {
        mode: cli.mode,
        size: cli.size,
        duration_s: cli.duration.as_secs_f64(),
        warmup_s: cli.warmup.as_secs_f64(),
        gen_threads: cli.gen_threads,
        heavy_clients: cli.heavy_clients,
        repeat: cli.repeat,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        process_stats: procstat::SUPPORTED,
        build: row::BUILD,
    };
    let text = report::report(&settings, &rows, &ratios, &memory, &sweeps, &manifest);
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(text.as_bytes());
    let changes = match (&stored, &cli.against) {
        (Some(stored), Some(path)) => {
            let changes = gate::changes(&ratios, stored);
            let _ = stdout.write_all(gate::change_lines(&changes, path).as_bytes());
            changes
        }
        _ => Vec::new(),
    };
    let _ = stdout.flush();
    if let Some(path) = html_path(cli) {
        let page = html::Page {
            manifest: &manifest,
            settings: &settings,
            rows: &rows,
            memory: &memory,
            sweeps: &sweeps,
            report: &text,
        };
        html::write_html(&path, &page)?;
        println!("\nReport: {}", path.display());
    }
    if let Some(path) = &cli.json {
        files::write_json(path, &manifest, &settings, &rows, &ratios, &memory, &sweeps)?;
    }
    if let Some(path) = &cli.csv {
        files::write_csv(path, &rows)?;
    }
    if let Some(path) = &cli.svg {
        match rows.iter().any(files::charted) {
            true => files::write_svg(path, &settings, &rows)?,
            false => eprintln!(
                "compare: no ping-pong rows to chart, so {} was not written (add -w pingpong)",
                path.display()
            ),
        }
    }
    if !failed.is_empty() {
        let mut names: Vec<&String> = failed.keys().collect();
        names.sort();
        let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
        return Err(format!(
            "{} did not run (see the report above)",
            names.join(", ")
        ));
    }
    if let Some(pct) = cli.fail_over {
        let worse = gate::over(&changes, pct);
        if !worse.is_empty() {
            let list: Vec<String> = worse
                .iter()
                .map(|c| format!("{} {} {:+.0}%", c.row, c.figure, c.worse_pct()))
                .collect();
            eprintln!(
                "compare: worse than the stored run by more than {pct}%: {}",
                list.join(", ")
            );
            return Ok(ExitCode::from(GATE_FAILED));
        }
    }
    Ok(ExitCode::SUCCESS)
}
