//! The progress line on stderr while the rows run: which row, how many are left and
//! about how long they will take.

use std::io::{IsTerminal, Write};

use loadgen::Workload;

use crate::cli::Cli;
use crate::jobs::Job;

/// The progress line on stderr: rewritten in place on a terminal, a line per row
/// otherwise (logs).
pub struct Progress {
    enabled: bool,
    terminal: bool,
    total: usize,
    /// Estimated seconds per step of the schedule, to show the time left.
    estimates: Vec<f64>,
}

impl Progress {
    /// Progress over the jobs in schedule `order`, then `sweeps` sweeps; silent under
    /// `--quiet`.
    pub fn new(cli: &Cli, jobs: &[Job], order: &[usize], sweeps: usize) -> Self {
        let mut estimates: Vec<f64> = order
            .iter()
            .map(|&i| match jobs[i].workload {
                Workload::Idle { hold } => hold.as_secs_f64() + 0.3 + jobs[i].clients as f64 * 5e-5,
                _ => (cli.warmup + jobs[i].window).as_secs_f64() + 0.15,
            })
            .collect();
        for _ in 0..sweeps {
            estimates.push((cli.warmup + cli.duration).as_secs_f64() + 0.15);
            for _ in 0..cli.sweep_steps() {
                estimates.push((cli.warmup + cli.sweep_duration).as_secs_f64() + 0.15);
            }
        }
        Progress {
            enabled: !cli.quiet,
            terminal: std::io::stderr().is_terminal(),
            total: estimates.len(),
            estimates,
        }
    }

    /// Shows step `i` of the schedule, measuring `job`.
    pub fn show(&mut self, i: usize, job: &Job) {
        if !self.enabled {
            return;
        }
        let left: f64 = self.estimates[i..].iter().sum();
        let what = match (job.workload, job.rate) {
            (Workload::Pipelined { depth }, _) => format!("pipelined x{depth}"),
            (Workload::PingPong, Some(rate)) => format!("@{}/s", crate::units::si(rate)),
            (w, _) => w.name().to_string(),
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

    /// Clears the line so the report starts on a clean line.
    pub fn clear(&self) {
        if self.enabled && self.terminal {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
