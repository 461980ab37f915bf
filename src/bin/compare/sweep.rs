//! `-w sweep`: where each model breaks. First its closed-loop maximum at the sweep's
//! client count, then open-loop runs stepping the offered rate from a fraction of that
//! maximum to past it, each step's latency timed from when requests were due. The
//! result is one latency-against-load curve per model and its knee: the highest rate
//! whose p99 stays under the SLO while the rate is actually achieved.

use std::fmt::Write as _;

use serde::Serialize;

use loadgen::Workload;

use crate::cli::Cli;
use crate::flags::MIN_ACHIEVED;
use crate::jobs::{Job, Target};
use crate::measure::measure;
use crate::model::Row;
use crate::progress::Progress;
use crate::units::{cpu, micros, opt, si};

/// The sweep's range, as shares of the closed-loop maximum.
const FROM: f64 = 0.1;
const TO: f64 = 1.2;

/// Sweeps `target`: its closed-loop maximum, then `--sweep-steps` open-loop steps.
/// `step` counts the progress steps taken so far.
/// `closed`: a closed-loop run already measured at the sweep's client count, if any.
pub fn sweep(
    cli: &Cli,
    target: &Target,
    closed: Option<Row>,
    progress: &mut Progress,
    step: &mut usize,
) -> Sweep {
    let mut job = Job {
        target,
        workload: Workload::PingPong,
        clients: cli.sweep_clients,
        rate: None,
        window: cli.duration,
    };
    let mut result = Sweep {
        strategy: target.name.clone(),
        clients: cli.sweep_clients,
        closed_loop_max_per_s: 0.0,
        slo_us: cli.slo.as_secs_f64() * 1e6,
        closed_loop: Row::default(),
        steps: Vec::new(),
        knee: None,
        failed: None,
    };
    let steps = cli.sweep_steps();
    let measured = match closed {
        Some(row) => Ok(row),
        None => {
            progress.show(*step, &job);
            measure(cli, &job)
        }
    };
    *step += 1;
    let closed = match measured {
        Ok(row) if row.msgs_per_s > 0.0 => row,
        Ok(row) => {
            let why = row.first_error.clone().unwrap_or("no replies".into());
            result.failed = Some(format!("the closed-loop run served nothing: {why}"));
            *step += steps;
            return result;
        }
        Err(why) => {
            result.failed = Some(why);
            *step += steps;
            return result;
        }
    };
    if closed.served < closed.clients {
        // single-client, or a thread pool with fewer workers than clients: the
        // offered load would fall on the few it serves while the rest wait.
        result.failed = Some(format!(
            "it served {} of its {} clients at once, so it breaks before any load is offered",
            closed.served, closed.clients
        ));
        result.closed_loop = closed;
        *step += steps;
        return result;
    }
    let max = closed.msgs_per_s;
    result.closed_loop_max_per_s = max;
    result.closed_loop = closed;
    job.window = cli.sweep_duration;
    for rate in rates(max, steps, FROM, TO) {
        job.rate = Some(rate);
        progress.show(*step, &job);
        *step += 1;
        match measure(cli, &job) {
            Ok(row) => result.steps.push(row),
            Err(why) => {
                result.failed = Some(why);
                break;
            }
        }
    }
    result.knee = knee(&result.steps, result.slo_us, max);
    result
}

/// One model's sweep.
#[derive(Clone, Debug, Serialize)]
pub struct Sweep {
    /// The model.
    pub strategy: String,
    /// Clients at every step.
    pub clients: usize,
    /// Messages per second closed-loop at that client count: 100% of the sweep.
    pub closed_loop_max_per_s: f64,
    /// The p99 latency a step must stay under, microseconds (`--slo`).
    pub slo_us: f64,
    /// The closed-loop run the steps are scaled from.
    pub closed_loop: Row,
    /// The open-loop steps, lowest offered rate first.
    pub steps: Vec<Row>,
    /// The highest step within the SLO with its rate achieved; `None` if none was.
    pub knee: Option<Knee>,
    /// Why there is no sweep (the closed-loop run served nothing), if so.
    pub failed: Option<String>,
}

/// The knee of a latency curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Knee {
    /// The rate offered at that step.
    pub offered_per_s: f64,
    /// The rate achieved.
    pub achieved_per_s: f64,
    /// Its p99 (from when requests were due), microseconds.
    pub p99_us: f64,
    /// The offered rate as a share of the closed-loop maximum.
    pub of_max: f64,
}

/// The offered rates of a sweep: `steps` rates evenly spaced from `from` to `to` (shares
/// of `max`, 0.1 = 10%).
pub fn rates(max: f64, steps: usize, from: f64, to: f64) -> Vec<f64> {
    match steps {
        0 => Vec::new(),
        1 => vec![max * to],
        n => (0..n)
            .map(|i| max * (from + (to - from) * i as f64 / (n - 1) as f64))
            .collect(),
    }
}

/// The knee: of the steps whose p99 is within `slo_us` and whose achieved rate is at
/// least 95% of the offered one, the one with the highest offered rate.
pub fn knee(steps: &[Row], slo_us: f64, max: f64) -> Option<Knee> {
    steps
        .iter()
        .filter(|r| r.messages > 0 && r.p99_us <= slo_us)
        .filter_map(|r| {
            let (offered, achieved) = (r.offered_per_s?, r.achieved_per_s?);
            (achieved >= MIN_ACHIEVED * offered).then_some(Knee {
                offered_per_s: offered,
                achieved_per_s: achieved,
                p99_us: r.p99_us,
                of_max: if max > 0.0 { offered / max } else { 0.0 },
            })
        })
        .max_by(|a, b| a.offered_per_s.total_cmp(&b.offered_per_s))
}

/// A sentence for the summary: each model's knee, highest first. A knee whose step
/// is flagged (a disturbed window) is not quoted.
pub fn knee_sentence(sweeps: &[Sweep]) -> String {
    let mut knees: Vec<(&Sweep, Knee)> = sweeps
        .iter()
        .filter_map(|s| {
            let k = s.knee?;
            let step = s
                .steps
                .iter()
                .find(|r| r.offered_per_s == Some(k.offered_per_s))?;
            step.flags.is_empty().then_some((s, k))
        })
        .collect();
    if knees.is_empty() {
        return String::new();
    }
    knees.sort_by(|a, b| b.1.achieved_per_s.total_cmp(&a.1.achieved_per_s));
    let parts: Vec<String> = knees
        .iter()
        .map(|(s, k)| {
            format!(
                "{} {}/s ({:.0}% of its closed-loop max)",
                s.strategy,
                si(k.achieved_per_s),
                k.of_max * 100.0
            )
        })
        .collect();
    format!(
        "Under open-loop load at {} clients, the highest rates served with p99 under {}: {}.",
        knees[0].0.clients,
        micros(knees[0].0.slo_us, 1),
        parts.join(", ")
    )
}

/// The sweeps as text: a line per model with its knee, then its steps.
pub fn sweep_lines(sweeps: &[Sweep]) -> String {
    let Some(first) = sweeps.first() else {
        return String::new();
    };
    let mut out = format!(
        "\nWhere each model breaks (-w sweep): closed-loop maximum at {} clients, then open-loop \
         steps; the knee is the highest offered rate with p99 under {} and the rate achieved.\n",
        first.clients,
        micros(first.slo_us, 1)
    );
    for s in sweeps {
        let _ = write!(out, "{}: ", s.strategy);
        if let Some(why) = &s.failed {
            let _ = writeln!(out, "no sweep: {why}");
            continue;
        }
        let _ = write!(out, "closed-loop max {}/s; ", si(s.closed_loop_max_per_s));
        let _ = match s.knee {
            Some(k) => writeln!(
                out,
                "knee at {}/s offered ({:.0}% of max), {}/s achieved, p99 {}",
                si(k.offered_per_s),
                k.of_max * 100.0,
                si(k.achieved_per_s),
                micros(k.p99_us, 1)
            ),
            None => writeln!(out, "no step stayed under the SLO with its rate achieved"),
        };
        let _ = writeln!(
            out,
            "  {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "offered", "achieved", "p50", "p99", "p99.9", "cpu/msg"
        );
        for r in &s.steps {
            let _ = writeln!(
                out,
                "  {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}{}",
                si(r.offered_per_s.unwrap_or(0.0)),
                si(r.msgs_per_s),
                micros(r.p50_us, r.messages),
                micros(r.p99_us, r.messages),
                micros(r.p999_us, r.messages),
                opt(r.cpu_per_msg(), cpu),
                if r.flags.is_empty() { "" } else { "  !" }
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_row;

    fn step(offered: f64, achieved: f64, p99_us: f64) -> Row {
        Row {
            offered_per_s: Some(offered),
            achieved_per_s: Some(achieved),
            msgs_per_s: achieved,
            p99_us,
            ..test_row("event-loop", 10, 5.0)
        }
    }

    /// Ten steps from 10% to 120% of the maximum, evenly spaced.
    #[test]
    fn rates_step_evenly() {
        let r = rates(100_000.0, 10, 0.1, 1.2);
        assert_eq!(r.len(), 10);
        assert!((r[0] - 10_000.0).abs() < 1e-6 && (r[9] - 120_000.0).abs() < 1e-6);
        assert!((r[1] - r[0] - 12_222.222).abs() < 1e-2);
        assert_eq!(rates(1000.0, 1, 0.1, 1.2), [1200.0]);
    }

    /// The knee is the highest offered rate with p99 under the SLO and the rate
    /// achieved; a step that is fast but did not get its rate does not count.
    #[test]
    fn knee_of_known_curves() {
        let max = 100_000.0;
        let steps = [
            step(10_000.0, 10_000.0, 120.0),
            step(40_000.0, 39_900.0, 300.0),
            step(70_000.0, 69_000.0, 900.0),
            step(100_000.0, 99_000.0, 4_000.0),
            step(120_000.0, 101_000.0, 800.0), // fast, but 84% of its rate
        ];
        let k = knee(&steps, 1000.0, max).unwrap();
        assert_eq!(k.offered_per_s, 70_000.0);
        assert_eq!(k.achieved_per_s, 69_000.0);
        assert!((k.of_max - 0.7).abs() < 1e-12);
        // A tighter SLO moves the knee down; one nothing meets gives none.
        assert_eq!(knee(&steps, 500.0, max).unwrap().offered_per_s, 40_000.0);
        assert_eq!(knee(&steps, 100.0, max), None);
        let text = sweep_lines(&[Sweep {
            strategy: "event-loop".into(),
            clients: 10,
            closed_loop_max_per_s: max,
            slo_us: 1000.0,
            closed_loop: test_row("event-loop", 10, 5.0),
            steps: steps.to_vec(),
            knee: Some(k),
            failed: None,
        }]);
        assert!(text.contains("knee at 70.0k/s offered (70% of max), 69.0k/s achieved"));
        let sweep = |name: &str, knee: Option<Knee>, flags: Vec<String>| Sweep {
            strategy: name.into(),
            clients: 10,
            closed_loop_max_per_s: max,
            slo_us: 1000.0,
            closed_loop: test_row(name, 10, 5.0),
            steps: steps
                .iter()
                .cloned()
                .map(|r| Row {
                    flags: flags.clone(),
                    ..r
                })
                .collect(),
            knee,
            failed: None,
        };
        let said = knee_sentence(&[
            sweep("event-loop", Some(k), vec![]),
            sweep("thread-per-client", knee(&steps, 500.0, max), vec![]),
            sweep("noisy", Some(k), vec!["other processes used 50%".into()]),
        ]);
        assert_eq!(
            said,
            "Under open-loop load at 10 clients, the highest rates served with p99 under \
             1.00ms: event-loop 69.0k/s (70% of its closed-loop max), thread-per-client \
             39.9k/s (40% of its closed-loop max)."
        );
    }
}
