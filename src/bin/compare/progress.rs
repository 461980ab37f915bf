//! Progress on stderr while the rows run: which row, how many are left and about how
//! long they will take. On a terminal an `indicatif` bar that fills with the estimated
//! time; otherwise (a log, CI) one plain line per row.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use loadgen::Workload;

use crate::cli::Cli;
use crate::jobs::Job;

/// The progress line on stderr: rewritten in place on a terminal, a line per row
/// otherwise (logs).
pub struct Progress {
    enabled: bool,
    /// The bar, on a terminal.
    bar: Option<ProgressBar>,
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
            for _ in 0..cli.sweep_steps() * cli.sweep_repeats {
                estimates.push((cli.warmup + cli.sweep_duration).as_secs_f64() + 0.15);
            }
        }
        let enabled = !cli.quiet;
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            // Its length is the estimated run time in tenths of a second, so it fills
            // with time rather than with rows (an idle row is not a sweep step).
            let tenths = (estimates.iter().sum::<f64>() * 10.0).ceil() as u64;
            let bar = ProgressBar::with_draw_target(Some(tenths), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{bar:30.cyan/blue} {msg}") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress {
            enabled,
            bar,
            total: estimates.len(),
            estimates,
        }
    }

    /// Shows step `i` of the schedule, measuring `job`.
    pub fn show(&mut self, i: usize, job: &Job) {
        if !self.enabled {
            return;
        }
        let left: f64 = self.estimates.get(i..).map_or(0.0, |e| e.iter().sum());
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
        match &self.bar {
            Some(bar) => {
                let done: f64 = self.estimates[..i.min(self.estimates.len())].iter().sum();
                bar.set_position((done * 10.0) as u64);
                bar.set_message(line);
            }
            None => {
                let mut err = std::io::stderr();
                let _ = writeln!(err, "{line}");
                let _ = err.flush();
            }
        }
    }

    /// Clears the bar so the report starts on a clean line.
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
