//! What to measure and in which order: the servers asked for (building them first
//! when started by cargo), a job per strategy, workload and load, and the schedule of
//! rounds that keeps each strategy close in time to the baseline it is divided by.

use std::path::Path;

use loadgen::Workload;

use crate::cli::Cli;
use crate::row::WorkloadName;
use crate::servers::{self, Kind, Yardstick};
use switchboard::strategy;

/// One server to measure.
pub struct Target {
    /// The row label: a strategy, an external server's name, `attachN`.
    pub name: String,
    /// How to start it.
    pub kind: Kind,
}

/// One row to measure.
pub struct Job<'a> {
    /// The server.
    pub target: &'a Target,
    /// The traffic.
    pub workload: Workload,
    /// Clients (churn: connect loops; idle: connections held).
    pub clients: usize,
    /// Open loop: requests per second in total (ping-pong with `--rate`).
    pub rate: Option<f64>,
    /// The measured window.
    pub window: std::time::Duration,
}

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

/// The servers to run, in the order asked; fails early if a binary is missing.
pub fn targets(cli: &Cli) -> Result<Vec<Target>, String> {
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
        let kind = match Yardstick::named(name) {
            Some(yardstick) => Kind::Baseline(yardstick),
            None => {
                // A model runs as `server --model NAME`; a coursework name is its binary.
                let (binary, mut args) = match strategy::find(name) {
                    Some(model) => ("server", vec!["--model".into(), model.name.into()]),
                    None => (name.as_str(), Vec::new()),
                };
                if let (Some(workers), Some(_)) = (cli.workers, strategy::find(name)) {
                    args.extend(["--workers".into(), workers.to_string()]);
                }
                let exe = servers::binary(&dir, binary);
                if !exe.is_file() {
                    missing.push(binary.to_owned());
                }
                Kind::Builtin { exe, args }
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
    for (i, attach) in cli.attach.iter().enumerate() {
        targets.push(Target {
            name: (attach.name.clone()).unwrap_or_else(|| format!("attach{}", i + 1)),
            kind: Kind::Attached { addr: attach.addr },
        });
    }
    Ok(targets)
}

/// Every (strategy, workload, load) row, grouped by strategy, workloads in a fixed order.
pub fn jobs<'a>(cli: &Cli, targets: &'a [Target]) -> Vec<Job<'a>> {
    let wants = |w| cli.workloads.contains(&w);
    let mut jobs = Vec::new();
    for target in targets {
        let mut add = |workload, clients| {
            jobs.push(Job {
                target,
                workload,
                clients,
                rate: cli.rate.filter(|_| workload == Workload::PingPong),
                window: cli.duration,
            })
        };
        if wants(WorkloadName::PingPong) {
            for &c in &cli.clients {
                add(Workload::PingPong, c);
            }
        }
        if wants(WorkloadName::Pipelined) {
            for &c in &cli.pipelined_clients {
                add(Workload::Pipelined { depth: cli.depth }, c);
            }
        }
        if wants(WorkloadName::Churn) {
            add(Workload::Churn, cli.churn_clients);
        }
        if wants(WorkloadName::Heavy) {
            let heavy = cli.heavy_clients;
            let counts = cli.clients.iter().filter(|&&c| c > heavy);
            // The default run shows what slow lines do at one load; more is asked for.
            let shown = if cli.default_run { 1 } else { usize::MAX };
            for &c in counts.take(shown) {
                add(Workload::Heavy { heavy }, c);
            }
        }
        if wants(WorkloadName::Idle) {
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
pub fn schedule(jobs: &[Job], rounds: usize) -> Vec<usize> {
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
pub fn check_descriptors(jobs: &[Job]) -> Result<(), String> {
    let most = jobs.iter().map(|j| j.clients).max().unwrap_or(0) as u64;
    match servers::open_files_limit() {
        Some(limit) if most + 64 > limit => Err(format!(
            "{most} connections need more than the open-files limit of {limit}; raise it (ulimit -n {})",
            most + 256
        )),
        _ => Ok(()),
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
            kind: Kind::Baseline(Yardstick::Loop),
        };
        let (base, server) = (target("baseline"), target("server4"));
        let job = |target, clients| Job {
            target,
            workload: Workload::PingPong,
            clients,
            rate: None,
            window: std::time::Duration::from_secs(1),
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
