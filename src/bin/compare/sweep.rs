//! `-w sweep`: where each model breaks. First its closed-loop maximum at the sweep's
//! client count, then open-loop runs stepping the offered rate from a fraction of that
//! maximum to past it, each step's latency timed from when requests were due. Every
//! step is measured `--sweep-repeats` times, in rounds that run the steps up and then
//! down, so a disturbance of a few seconds lands on different steps in each round; a
//! step is drawn as the median of its repeats with their range. The result is one
//! latency-against-load curve per model, where it broke, and its knee (see [`knee`]).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use loadgen::Workload;

use crate::cli::Cli;
use crate::flags::MIN_ACHIEVED;
use crate::jobs::{Job, Target};
use crate::measure::measure;
use crate::progress::Progress;
use crate::row::Row;
use crate::stats::Spread;
use crate::units::{cpu, micros, opt, si};

/// The sweep's range, as shares of the closed-loop maximum.
const FROM: f64 = 0.1;
const TO: f64 = 1.2;

/// Requests a step's window must hold at least: its p99 then rests on the 20
/// slowest, not on two or three. A slow model's low steps get longer windows.
const MIN_SAMPLES: f64 = 2000.0;
/// The longest a step's window is stretched to reach [`MIN_SAMPLES`].
const MAX_WINDOW: Duration = Duration::from_secs(3);

/// A clean step breaks when even its best repeat's p99 is this many times the lowest
/// clean median p99 of the sweep (and its rate was not achieved).
pub const BREAK_FACTOR: f64 = 4.0;

/// Sweeps `target`: its closed-loop maximum, then `--sweep-steps` open-loop steps,
/// each `--sweep-repeats` times. `step` counts the progress steps taken so far.
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
        slo_us: cli.slo.map(|d| d.as_secs_f64() * 1e6),
        repeats: cli.sweep_repeats,
        closed_loop: Row::default(),
        steps: Vec::new(),
        floor_p99_us: None,
        knee: None,
        broke_at: None,
        failed: None,
    };
    let runs = cli.sweep_steps() * cli.sweep_repeats;
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
            *step += runs;
            return result;
        }
        Err(why) => {
            result.failed = Some(why);
            *step += runs;
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
        *step += runs;
        return result;
    }
    let max = closed.msgs_per_s;
    result.closed_loop_max_per_s = max;
    result.closed_loop = closed;
    let offered = rates(max, cli.sweep_steps(), FROM, TO);
    let mut measured: Vec<Vec<Row>> = vec![Vec::new(); offered.len()];
    let first = *step;
    'rounds: for round in 0..cli.sweep_repeats {
        for i in round_order(offered.len(), round) {
            job.rate = Some(offered[i]);
            job.window = step_window(cli.sweep_duration, offered[i]);
            progress.show(*step, &job);
            *step += 1;
            match measure(cli, &job) {
                Ok(row) => measured[i].push(row),
                Err(why) => {
                    result.failed = Some(why);
                    break 'rounds;
                }
            }
        }
    }
    // Every run is counted, the ones a failure left undone too.
    *step = first + runs;
    result.steps = (offered.into_iter().zip(measured))
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(rate, rows)| Step::of(rate, rows))
        .collect();
    let found = knee(&result.steps, max, result.slo_us);
    (result.floor_p99_us, result.knee, result.broke_at) =
        (found.floor_p99_us, found.knee, found.broke_at);
    result
}

/// The steps of round `round`, as indices: up in even rounds, down in odd ones.
pub fn round_order(steps: usize, round: usize) -> Vec<usize> {
    match round % 2 {
        0 => (0..steps).collect(),
        _ => (0..steps).rev().collect(),
    }
}

/// A step's window: `--sweep-duration`, stretched (up to [`MAX_WINDOW`]) to hold at
/// least [`MIN_SAMPLES`] requests at `rate`.
pub fn step_window(asked: Duration, rate: f64) -> Duration {
    let needed = Duration::from_secs_f64((MIN_SAMPLES / rate.max(1.0)).min(1e6));
    asked.max(needed.min(MAX_WINDOW))
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
    /// `--slo`: a p99 the knee must also stay under, microseconds; none by default.
    pub slo_us: Option<f64>,
    /// Times each step was measured (`--sweep-repeats`).
    pub repeats: usize,
    /// The closed-loop run the steps are scaled from.
    pub closed_loop: Row,
    /// The open-loop steps, lowest offered rate first.
    pub steps: Vec<Step>,
    /// The lowest median p99 of the clean steps: the model's floor in this run.
    pub floor_p99_us: Option<f64>,
    /// The highest clean step below the break with its rate achieved; `None` if none.
    pub knee: Option<Knee>,
    /// The first clean step from which every clean step broke; `None` if none did.
    pub broke_at: Option<Knee>,
    /// Why there is no sweep (the closed-loop run served nothing), if so.
    pub failed: Option<String>,
}

/// One offered rate, measured `repeats.len()` times. Its figures are medians over the
/// undisturbed repeats, or over all of them when the step is disturbed.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// The rate offered.
    pub offered_per_s: f64,
    /// The median rate achieved.
    pub achieved_per_s: f64,
    /// Median p50 (from when requests were due), microseconds.
    pub p50_us: f64,
    /// Median p99 (from when requests were due), microseconds.
    pub p99_us: f64,
    /// The lowest of the repeats' p99.
    pub p99_low_us: f64,
    /// The highest of the repeats' p99.
    pub p99_high_us: f64,
    /// Median p99.9.
    pub p999_us: f64,
    /// Median p99 from the actual send.
    pub p99_uncorrected_us: Option<f64>,
    /// Median server CPU per message, microseconds.
    pub cpu_us_per_msg: Option<f64>,
    /// Replies counted over the repeats used (0: the step answered nothing).
    pub messages: u64,
    /// Fewer than half of the repeats were undisturbed (see
    /// [`crate::flags::disturbances`]): drawn hollow, and not used for the knee.
    pub disturbed: bool,
    /// How many repeats the figures are taken over.
    pub used: usize,
    /// Every repeat, in the order measured.
    pub repeats: Vec<Row>,
}

impl Step {
    /// The step at `offered` from its repeats.
    pub fn of(offered: f64, repeats: Vec<Row>) -> Step {
        let answered: Vec<&Row> = repeats.iter().filter(|r| r.messages > 0).collect();
        let clean: Vec<&Row> = (answered.iter().copied())
            .filter(|r| crate::flags::disturbances(r).is_empty())
            .collect();
        let disturbed = clean.is_empty() || 2 * clean.len() < repeats.len();
        let used = if disturbed { answered } else { clean };
        let spread =
            |f: fn(&Row) -> Option<f64>| Spread::of(used.iter().filter_map(|r| f(r)).collect());
        let median = |f: fn(&Row) -> Option<f64>| spread(f).map(|s| s.median);
        let p99 = spread(|r| Some(r.p99_us));
        // A step that answered nothing has no latency: it is as broken as a step gets.
        let none = f64::INFINITY;
        Step {
            offered_per_s: offered,
            achieved_per_s: median(|r| Some(r.msgs_per_s)).unwrap_or(0.0),
            p50_us: median(|r| Some(r.p50_us)).unwrap_or(none),
            p99_us: p99.map_or(none, |s| s.median),
            p99_low_us: p99.map_or(none, |s| s.low),
            p99_high_us: p99.map_or(none, |s| s.high),
            p999_us: median(|r| Some(r.p999_us)).unwrap_or(none),
            p99_uncorrected_us: median(|r| r.p99_uncorrected_us),
            cpu_us_per_msg: median(Row::cpu_per_msg),
            messages: used.iter().map(|r| r.messages).sum(),
            disturbed: disturbed && !used.is_empty(),
            used: used.len(),
            repeats,
        }
    }

    /// Whether the step carried its offered rate (95% of it or more).
    pub fn achieved(&self) -> bool {
        self.achieved_per_s >= MIN_ACHIEVED * self.offered_per_s
    }
}

/// A point of a latency curve: its knee, or where it broke.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Knee {
    /// The rate offered at that step.
    pub offered_per_s: f64,
    /// The rate achieved (median).
    pub achieved_per_s: f64,
    /// Its median p99 (from when requests were due), microseconds.
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

/// What [`knee`] found in a sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Found {
    /// The lowest median p99 of the clean steps.
    pub floor_p99_us: Option<f64>,
    /// The highest clean step below the break that carried its rate (and met the SLO).
    pub knee: Option<Knee>,
    /// The first clean step from which every clean step broke.
    pub broke_at: Option<Knee>,
}

/// The rule, in words, for under the chart and in the text report.
pub const KNEE_RULE: &str = "A step is disturbed (drawn hollow, not used) when fewer than \
    half of its repeats ran undisturbed (generator late or held up, other processes \
    busy). A clean step breaks when even its best repeat's p99 is over 4x the lowest \
    clean median p99 of that model AND its median achieved rate is under 95% of the \
    offered; the model broke at the first clean step after which every clean step \
    breaks too. Its knee is the highest clean step below that with its rate achieved.";

/// Where a sweep broke, and its knee. Noise cannot trigger the break:
///
/// - a scheduler slice or a busy neighbour raises a window's p99, but a model with
///   capacity to spare still answers what was offered (the generator sends overdue
///   requests back to back), so the rate condition holds only past saturation;
/// - every repeat must be over [`BREAK_FACTOR`] times the floor: one quiet repeat
///   says the step was not broken;
/// - past saturation the backlog grows with each higher step, so every clean step
///   after the break must break too: a lone bad step in the middle is not a break;
/// - disturbed steps are left out, of the floor as of the rest.
///
/// `slo_us`, when given, is a further bound the knee's median p99 must meet.
pub fn knee(steps: &[Step], max: f64, slo_us: Option<f64>) -> Found {
    let mut clean: Vec<&Step> = steps.iter().filter(|s| !s.disturbed).collect();
    clean.sort_by(|a, b| a.offered_per_s.total_cmp(&b.offered_per_s));
    let floor = (clean.iter().map(|s| s.p99_us))
        .filter(|p| p.is_finite() && *p > 0.0)
        .min_by(f64::total_cmp);
    let Some(floor) = floor else {
        return Found::default();
    };
    let breaks = |s: &&Step| s.p99_low_us > BREAK_FACTOR * floor && !s.achieved();
    let broke = (0..clean.len()).find(|&i| clean[i..].iter().all(breaks));
    let point = |s: &Step| Knee {
        offered_per_s: s.offered_per_s,
        achieved_per_s: s.achieved_per_s,
        p99_us: s.p99_us,
        of_max: if max > 0.0 {
            s.offered_per_s / max
        } else {
            0.0
        },
    };
    let below = &clean[..broke.unwrap_or(clean.len())];
    let knee = (below.iter().rev())
        .find(|s| s.achieved() && slo_us.is_none_or(|slo| s.p99_us <= slo))
        .map(|s| point(s));
    Found {
        floor_p99_us: Some(floor),
        knee,
        broke_at: broke.map(|i| point(clean[i])),
    }
}

/// A sentence for the summary: each model's knee, highest first.
pub fn knee_sentence(sweeps: &[Sweep]) -> String {
    let mut knees: Vec<(&Sweep, Knee)> =
        (sweeps.iter()).filter_map(|s| Some((s, s.knee?))).collect();
    if knees.is_empty() {
        return String::new();
    }
    // The offered rate, as each model's own line and the chart name the step.
    knees.sort_by(|a, b| b.1.offered_per_s.total_cmp(&a.1.offered_per_s));
    let parts: Vec<String> = knees
        .iter()
        .map(|(s, k)| {
            format!(
                "{} {}/s ({:.0}% of its closed-loop max)",
                s.strategy,
                si(k.offered_per_s),
                k.of_max * 100.0
            )
        })
        .collect();
    format!(
        "Under open-loop load at {} clients, the highest rates offered and carried before \
         latency and throughput broke (the knees): {}.",
        knees[0].0.clients,
        parts.join(", ")
    )
}

/// Each model's knee and break in a few words: `event-loop: knee 52.0k/s (65% of its
/// max); broke at 72.0k/s`.
pub fn knee_words(s: &Sweep) -> String {
    if let Some(why) = &s.failed {
        if s.steps.is_empty() {
            return format!("{}: not swept: {why}", s.strategy);
        }
    }
    let knee = match s.knee {
        Some(k) => format!(
            "knee {}/s ({:.0}% of its max)",
            si(k.offered_per_s),
            k.of_max * 100.0
        ),
        None if s.steps.iter().all(|t| t.disturbed) => "no knee: every step disturbed".to_owned(),
        None => "no knee: no clean step carried its rate".to_owned(),
    };
    let broke = match (s.broke_at, s.steps.last()) {
        (Some(b), _) => format!(
            "broke at {}/s (p99 {}, {:.0}% of the rate achieved)",
            si(b.offered_per_s),
            micros(b.p99_us, 1),
            100.0 * b.achieved_per_s / b.offered_per_s
        ),
        (None, Some(last)) => format!("did not break up to {}/s", si(last.offered_per_s)),
        (None, None) => String::new(),
    };
    format!("{}: {knee}; {broke}", s.strategy)
}

/// The sweeps as text: the rule, then a line per model with its knee and break, then
/// its steps, each the median of its repeats with the range of their p99.
pub fn sweep_lines(sweeps: &[Sweep]) -> String {
    let Some(first) = sweeps.first() else {
        return String::new();
    };
    let intro = format!(
        "Where each model breaks (-w sweep): closed-loop maximum at {} clients, then open-loop \
         steps, each measured {} times (the median, and the range of p99 over the repeats used). {}{}",
        first.clients,
        first.repeats,
        KNEE_RULE,
        match first.slo_us {
            Some(slo) => format!(" The knee's median p99 must also be under {}.", micros(slo, 1)),
            None => String::new(),
        }
    );
    let mut out = format!("\n{}", crate::units::wrap(&intro, 100));
    for s in sweeps {
        if s.steps.is_empty() {
            let why = s.failed.as_deref().unwrap_or("no step ran");
            let _ = writeln!(out, "{}: no sweep: {why}", s.strategy);
            continue;
        }
        let words = knee_words(s);
        let words = words.split_once(": ").map_or(words.as_str(), |(_, w)| w);
        let _ = writeln!(
            out,
            "{}: closed-loop max {}/s; {words}",
            s.strategy,
            si(s.closed_loop_max_per_s)
        );
        if let Some(why) = &s.failed {
            let _ = writeln!(out, "  stopped early: {why}");
        }
        let _ = writeln!(
            out,
            "  {:>8} {:>9} {:>9} {:>9} {:>17} {:>9} {:>9}",
            "offered", "achieved", "p50", "p99", "p99 range", "p99.9", "cpu/msg"
        );
        for t in &s.steps {
            let range = format!(
                "{}-{}",
                micros(t.p99_low_us, t.messages),
                micros(t.p99_high_us, t.messages)
            );
            let _ = writeln!(
                out,
                "  {:>8} {:>9} {:>9} {:>9} {:>17} {:>9} {:>9}  {}",
                si(t.offered_per_s),
                si(t.achieved_per_s),
                micros(t.p50_us, t.messages),
                micros(t.p99_us, t.messages),
                range,
                micros(t.p999_us, t.messages),
                opt(t.cpu_us_per_msg, cpu),
                match t.disturbed {
                    true => format!(
                        "disturbed ({} of {} repeats)",
                        t.repeats.len() - clean_count(t),
                        t.repeats.len()
                    ),
                    false => format!("{} of {} repeats clean", t.used, t.repeats.len()),
                }
            );
        }
    }
    out
}

/// Repeats of `step` with replies and no disturbance.
fn clean_count(step: &Step) -> usize {
    (step.repeats.iter())
        .filter(|r| r.messages > 0 && crate::flags::disturbances(r).is_empty())
        .count()
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::row::test_row;

    /// One repeat of an open-loop step: `p99_us` from the due time, `achieved` of
    /// `offered`, disturbed (the generator held up) or not.
    pub fn repeat(offered: f64, achieved: f64, p99_us: f64, disturbed: bool) -> Row {
        Row {
            offered_per_s: Some(offered),
            achieved_per_s: Some(achieved),
            msgs_per_s: achieved,
            p99_us,
            gen_pause_max_us: disturbed.then_some(p99_us.max(1000.0)),
            ..test_row("event-loop", 10, 5.0)
        }
    }

    /// A step of three repeats at `offered`: (achieved share, p99) each, all clean.
    pub fn step(offered: f64, repeats: [(f64, f64); 3]) -> Step {
        let rows = repeats.map(|(share, p99)| repeat(offered, share * offered, p99, false));
        Step::of(offered, rows.to_vec())
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

    /// Rounds run the steps up, then down; a slow step's window is stretched to hold
    /// enough requests for its p99, up to a limit.
    #[test]
    fn rounds_alternate_and_windows_hold_enough_requests() {
        assert_eq!(round_order(3, 0), [0, 1, 2]);
        assert_eq!(round_order(3, 1), [2, 1, 0]);
        let half = Duration::from_millis(500);
        assert_eq!(step_window(half, 50_000.0), half);
        assert_eq!(step_window(half, 1_000.0), Duration::from_secs(2));
        assert_eq!(step_window(half, 10.0), MAX_WINDOW);
    }

    /// A step's figures are the medians of its clean repeats, with their p99 range; a
    /// step with most repeats disturbed is marked so and takes every repeat.
    #[test]
    fn a_step_is_the_median_of_its_clean_repeats() {
        let rows = vec![
            repeat(10_000.0, 10_000.0, 300.0, false),
            repeat(10_000.0, 9_000.0, 9_000.0, true),
            repeat(10_000.0, 9_990.0, 200.0, false),
        ];
        let s = Step::of(10_000.0, rows.clone());
        assert!(!s.disturbed);
        assert_eq!(
            (s.used, s.p99_us, s.p99_low_us, s.p99_high_us),
            (2, 250.0, 200.0, 300.0)
        );
        assert_eq!(s.achieved_per_s, 9_995.0);
        let mut shaky = rows;
        shaky[0].gen_pause_max_us = Some(5_000.0);
        let s = Step::of(10_000.0, shaky);
        assert!(s.disturbed);
        assert_eq!((s.used, s.p99_us, s.p99_high_us), (3, 300.0, 9_000.0));
        // A step that answered nothing is as broken as a step gets.
        let dead = Step::of(
            5.0,
            vec![Row {
                messages: 0,
                ..repeat(5.0, 0.0, 0.0, false)
            }],
        );
        assert!(!dead.disturbed && dead.p99_low_us.is_infinite() && !dead.achieved());
    }

    /// The knee of a clean, monotone curve is the last step before throughput falls
    /// short, and the break is where it does: a curve whose latency rises within its
    /// spread does not break until the rate is missed.
    #[test]
    fn knee_lands_where_throughput_saturates() {
        let max = 100_000.0;
        let steps = [
            step(10_000.0, [(1.0, 150.0), (1.0, 180.0), (1.0, 160.0)]),
            step(40_000.0, [(1.0, 170.0), (1.0, 220.0), (1.0, 190.0)]),
            step(70_000.0, [(0.99, 400.0), (1.0, 650.0), (0.99, 500.0)]),
            step(100_000.0, [(0.97, 900.0), (0.98, 2_500.0), (0.96, 1_200.0)]),
            step(
                120_000.0,
                [(0.83, 80_000.0), (0.84, 95_000.0), (0.82, 70_000.0)],
            ),
        ];
        let found = knee(&steps, max, None);
        assert_eq!(found.floor_p99_us, Some(160.0));
        let k = found.knee.unwrap();
        assert_eq!((k.offered_per_s, k.p99_us), (100_000.0, 1_200.0));
        assert!((k.of_max - 1.0).abs() < 1e-12);
        assert_eq!(found.broke_at.unwrap().offered_per_s, 120_000.0);
        // An SLO, when asked for, bounds the knee's p99 as well.
        let tight = knee(&steps, max, Some(1_000.0));
        assert_eq!(tight.knee.unwrap().offered_per_s, 70_000.0);
        assert_eq!(tight.broke_at, found.broke_at);
    }

    /// Noise does not trigger the break: a latency spike in one repeat, a step whose
    /// p99 is high in every repeat but whose rate was carried, a disturbed step that
    /// missed its rate, and a bad step that later clean steps contradict are all
    /// passed over; the knee lands where throughput really saturates.
    #[test]
    fn noise_before_the_knee_does_not_trigger_it() {
        let max = 100_000.0;
        let disturbed = |offered: f64| {
            let rows = (0..3).map(|_| repeat(offered, 0.5 * offered, 50_000.0, true));
            Step::of(offered, rows.collect())
        };
        let steps = [
            // Slow at low load (a sleeping CPU wakes late), but carried: no break.
            step(10_000.0, [(1.0, 1_500.0), (1.0, 1_800.0), (1.0, 1_200.0)]),
            // One repeat spiked and fell short: its best repeat is at the floor.
            step(22_000.0, [(1.0, 200.0), (0.6, 40_000.0), (1.0, 210.0)]),
            disturbed(34_000.0),
            // Every repeat slow and short, but the next clean step is fine again.
            step(46_000.0, [(0.9, 5_000.0), (0.9, 6_000.0), (0.9, 7_000.0)]),
            step(58_000.0, [(1.0, 250.0), (1.0, 300.0), (1.0, 280.0)]),
            step(70_000.0, [(1.0, 400.0), (0.99, 450.0), (1.0, 380.0)]),
            step(
                82_000.0,
                [(0.9, 20_000.0), (0.88, 30_000.0), (0.9, 25_000.0)],
            ),
            disturbed(94_000.0),
            step(
                106_000.0,
                [(0.8, 90_000.0), (0.8, 99_000.0), (0.8, 95_000.0)],
            ),
        ];
        assert!(steps[2].disturbed && !steps[1].disturbed);
        let found = knee(&steps, max, None);
        assert_eq!(found.floor_p99_us, Some(210.0));
        assert_eq!(found.knee.unwrap().offered_per_s, 70_000.0);
        assert_eq!(found.broke_at.unwrap().offered_per_s, 82_000.0);
        // Every step disturbed: no floor, no knee, no break, and the words say why.
        let noisy: Vec<Step> = [10_000.0, 50_000.0].map(disturbed).to_vec();
        assert_eq!(knee(&noisy, max, None), Found::default());
        let sweep = Sweep {
            strategy: "io-uring".into(),
            clients: 10,
            closed_loop_max_per_s: max,
            slo_us: None,
            repeats: 3,
            closed_loop: test_row("io-uring", 10, 5.0),
            steps: noisy,
            floor_p99_us: None,
            knee: None,
            broke_at: None,
            failed: None,
        };
        assert_eq!(
            knee_words(&sweep),
            "io-uring: no knee: every step disturbed; did not break up to 50.0k/s"
        );
    }

    /// The text names each model's knee and break, each step's p99 range, and which
    /// steps were disturbed; the summary quotes the knees, highest first.
    #[test]
    fn sweep_text_and_sentence() {
        let max = 100_000.0;
        let steps = vec![
            step(10_000.0, [(1.0, 150.0), (1.0, 180.0), (1.0, 160.0)]),
            step(70_000.0, [(1.0, 400.0), (1.0, 650.0), (0.99, 500.0)]),
            step(
                120_000.0,
                [(0.83, 80_000.0), (0.84, 95_000.0), (0.82, 70_000.0)],
            ),
        ];
        let sweep = |name: &str, scale: f64| {
            let found = knee(&steps, max, None);
            Sweep {
                strategy: name.into(),
                clients: 10,
                closed_loop_max_per_s: max,
                slo_us: None,
                repeats: 3,
                closed_loop: test_row(name, 10, 5.0),
                steps: steps.clone(),
                floor_p99_us: found.floor_p99_us,
                knee: found.knee.map(|k| Knee {
                    offered_per_s: k.offered_per_s * scale,
                    ..k
                }),
                broke_at: found.broke_at,
                failed: None,
            }
        };
        let text = sweep_lines(&[sweep("event-loop", 1.0)]);
        assert!(
            text.contains("event-loop: closed-loop max 100.0k/s; knee 70.0k/s (70% of its max); broke at 120.0k/s (p99 80.00ms, 83% of the rate achieved)"),
            "{text}"
        );
        assert!(text.contains("400µs-650µs"), "{text}");
        assert!(text.contains("3 of 3 repeats clean"), "{text}");
        let said = knee_sentence(&[sweep("event-loop", 1.0), sweep("async", 0.5)]);
        assert_eq!(
            said,
            "Under open-loop load at 10 clients, the highest rates offered and carried before \
             latency and throughput broke (the knees): event-loop 70.0k/s (70% of its closed-loop max), \
             async 35.0k/s (70% of its closed-loop max)."
        );
    }
}
