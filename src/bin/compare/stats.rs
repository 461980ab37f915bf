//! Statistics over the measurements: each strategy's figures as multiples of the
//! baseline's under the same load, paired round by round and reduced to a median with
//! its range, those ratios as lines of text, and which of a row's runs the table keeps.

use std::fmt::Write as _;

use serde::Serialize;

use crate::row::{label, Row, WorkloadName};

/// A figure of one strategy as a multiple of the baseline's: the median over the rounds
/// in which both were measured, and the lowest and highest round.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// Median of the per-round ratios.
    pub median: f64,
    /// Lowest per-round ratio.
    pub low: f64,
    /// Highest per-round ratio.
    pub high: f64,
    /// How many rounds had the figure on both sides.
    pub rounds: usize,
}

impl Spread {
    /// The spread of `ratios`; `None` if there are none.
    pub fn of(mut ratios: Vec<f64>) -> Option<Spread> {
        ratios.sort_by(f64::total_cmp);
        let n = ratios.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => ratios[n / 2],
            _ => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
        };
        Some(Spread {
            median,
            low: ratios[0],
            high: ratios[n - 1],
            rounds: n,
        })
    }

    pub fn show(spread: Option<Spread>) -> String {
        match spread {
            None => "n/a".into(),
            Some(s) if s.rounds > 1 => format!("{:.2}x ({:.2}-{:.2})", s.median, s.low, s.high),
            Some(s) => format!("{:.2}x", s.median),
        }
    }
}

/// One strategy's CPU per message, p99 and throughput as multiples of the baseline's
/// under the same load.
#[derive(Clone, Debug, Serialize)]
pub struct Ratios {
    /// The strategy compared with the yardstick.
    pub strategy: String,
    /// The yardstick: `baseline`, or (without it in the run) the first of
    /// `baseline-threads` and `baseline-async` that was.
    pub against: String,
    /// Its workload.
    pub workload: WorkloadName,
    /// Lines per write (pipelined), else 1.
    pub depth: usize,
    /// Clients asked for.
    pub clients: usize,
    /// Rounds in which both the strategy and the baseline served messages (a figure
    /// missing from some of them, such as CPU in a short window, has fewer).
    pub rounds: usize,
    /// Server CPU per message.
    pub cpu_per_msg: Option<Spread>,
    /// Its user-space part: the server's own work, without the kernel's. `/proc`
    /// splits CPU time by 10 ms ticks, so this is given only when both sides spent
    /// [`MIN_USER_S`] or more in user space in every round (a long `-d` does it).
    pub user_per_msg: Option<Spread>,
    /// 99th-percentile latency.
    pub p99: Option<Spread>,
    /// Messages per second.
    pub msgs_per_s: Option<Spread>,
}

/// User time in a window below this (20 ticks of `/proc`'s 10 ms) is too coarse to
/// divide: a tick more or less would move the ratio by a twentieth or more.
pub const MIN_USER_S: f64 = 0.2;

/// Whether a row's window held enough user time to count.
fn countable_user(row: &Row) -> bool {
    row.cpu_user_us_per_msg
        .is_some_and(|per_msg| per_msg * row.messages as f64 / 1e6 >= MIN_USER_S)
}

/// What the ratios are taken against: the baseline echo loop if it ran, else the
/// first bare model that did (`-s baseline-threads,server2` divides by the bare
/// thread-per-client echo, as `-s baseline,server4` by the loop).
pub fn yardstick<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Option<&'a str> {
    let names: Vec<&str> = rows.into_iter().map(|r| r.strategy.as_str()).collect();
    let [loop_echo, bare @ ..] = crate::cli::BASELINES;
    (names.iter().find(|&&n| n == loop_echo))
        .or_else(|| names.iter().find(|n| bare.contains(n)))
        .copied()
}

/// Ratios of every strategy to the yardstick under the same load, taken round by round:
/// `runs[i]` is every measurement of one row, in round order, so round k of a strategy
/// is paired with round k of the baseline, measured moments apart. A disturbance then
/// moves one round's ratio, not the median.
pub fn ratios(runs: &[Vec<Row>]) -> Vec<Ratios> {
    let Some(against) = yardstick(runs.iter().filter_map(|r| r.first())) else {
        return Vec::new();
    };
    let is_baseline = |r: &&Vec<Row>| r.first().is_some_and(|r| r.strategy == against);
    let mut out = Vec::new();
    for row_runs in runs.iter().filter(|r| !is_baseline(r)) {
        let Some(row) = row_runs.first() else {
            continue;
        };
        let Some(base_runs) = runs
            .iter()
            .filter(is_baseline)
            .find(|b| b[0].same_load(row))
        else {
            continue;
        };
        let pairs: Vec<(&Row, &Row)> = row_runs
            .iter()
            .zip(base_runs)
            .filter(|(r, b)| r.messages > 0 && b.messages > 0)
            .collect();
        let spread = |figure: fn(&Row) -> Option<f64>| {
            Spread::of(
                pairs
                    .iter()
                    .filter_map(|(r, b)| match (figure(r), figure(b)) {
                        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => Some(a / b),
                        _ => None,
                    })
                    .collect(),
            )
        };
        out.push(Ratios {
            strategy: row.strategy.clone(),
            against: against.to_owned(),
            workload: row.workload,
            depth: row.depth,
            clients: row.clients,
            rounds: pairs.len(),
            cpu_per_msg: spread(Row::cpu_per_msg),
            // Every round or none: leaving out the rounds whose ticks happened to
            // read low would move the median.
            user_per_msg: match pairs
                .iter()
                .all(|(r, b)| countable_user(r) && countable_user(b))
            {
                true => spread(|r| r.cpu_user_us_per_msg),
                false => None,
            },
            p99: spread(|r| Some(r.p99_us)),
            msgs_per_s: spread(|r| Some(r.msgs_per_s)),
        });
    }
    out
}

impl Ratios {
    /// Whether these are the ratios of `row`'s strategy and load.
    pub fn is_of(&self, row: &Row) -> bool {
        self.strategy == row.strategy
            && self.workload == row.workload
            && self.depth == row.depth
            && self.clients == row.clients
    }
}

/// The ratios as lines of text, one per strategy and load; empty if there are none.
/// The user-CPU column appears only when some ratio has it (windows long enough).
pub fn ratio_lines(ratios: &[Ratios]) -> String {
    let with_user = ratios.iter().any(|r| r.user_per_msg.is_some());
    let cells: Vec<[String; 4]> = ratios
        .iter()
        .map(|r| [r.cpu_per_msg, r.user_per_msg, r.p99, r.msgs_per_s].map(Spread::show))
        .collect();
    let width = ratios.iter().map(|r| r.strategy.len()).max().unwrap_or(0);
    let cell = (cells.iter())
        .flat_map(|[cpu, user, p99, rate]| {
            [cpu, p99, rate]
                .into_iter()
                .chain(with_user.then_some(user))
        })
        .map(String::len)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (r, [cpu, user, p99, rate]) in ratios.iter().zip(cells) {
        let user = match with_user {
            true => format!("   user {user:>cell$}"),
            false => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<width$} {:<10} {:>6}   cpu/msg {cpu:>cell$}{user}   p99 {p99:>cell$}   msg/s {rate:>cell$}",
            r.strategy,
            label(r.workload, r.depth),
            r.clients,
        );
    }
    out
}

/// Of the measurements of one row, the one it keeps: the one other processes disturbed
/// least (a run whose disturbance is unknown comes last; of equals, the first). An idle
/// row has no CPU window to judge that by, and its figure is memory, which moves from
/// one fresh server to the next: it keeps the run of the middle resident memory, so
/// that `--repeat` steadies the memory slope too.
pub fn kept_run(runs: &[Row]) -> Option<Row> {
    let kept = match runs.first()?.workload {
        WorkloadName::Idle => {
            let mut held: Vec<&Row> = runs.iter().collect();
            held.sort_by_key(|r| r.held_rss_bytes.unwrap_or(u64::MAX));
            held[held.len() / 2]
        }
        _ => {
            let other = |r: &Row| r.other_load.unwrap_or(f64::INFINITY);
            runs.iter().min_by(|a, b| other(a).total_cmp(&other(b)))?
        }
    };
    Some(Row {
        repeats: runs.len(),
        ..kept.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::test_row as row;

    /// Ratios are taken against the baseline row of the same workload and load.
    #[test]
    fn ratios_against_the_baseline() {
        let runs = vec![
            vec![row("baseline", 10, 2.0)],
            vec![row("server4", 10, 2.2)],
            vec![row("server4", 50, 9.0)],
        ];
        let found = ratios(&runs);
        assert_eq!(found.len(), 1, "no baseline at 50 clients: {found:?}");
        let text = ratio_lines(&found);
        assert!(text.contains("cpu/msg 1.10x"), "{text}");
    }

    /// Without the baseline in the run, the bare thread-per-client echo is the
    /// yardstick (server2 against its model's own floor), and says so; with it, the
    /// baseline is, whatever order the strategies came in.
    #[test]
    fn ratios_against_a_bare_model_without_the_baseline() {
        let runs = vec![
            vec![row("server2", 10, 2.2)],
            vec![row("baseline-threads", 10, 2.0)],
        ];
        let found = ratios(&runs);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].strategy.as_str(), found[0].against.as_str()),
            ("server2", "baseline-threads")
        );
        assert!(ratio_lines(&found).contains("cpu/msg 1.10x"));
        let mut runs = runs;
        runs.push(vec![row("baseline", 10, 1.0)]);
        let found = ratios(&runs);
        assert!(found.iter().all(|r| r.against == "baseline"), "{found:?}");
        assert_eq!(found.len(), 2);
        assert!(ratios(&[vec![row("server2", 10, 2.0)]]).is_empty());
    }

    /// Over several rounds each strategy is paired with the baseline of its own round,
    /// and the median of those ratios is reported with their range: a round in which
    /// the whole machine was slow does not move it.
    #[test]
    fn ratios_pair_rounds_and_take_the_median() {
        let base = [2.0, 4.0, 2.0, 2.0];
        let server = [3.0, 6.0, 2.0, 4.0]; // per round: 1.5, 1.5, 1.0, 2.0
        let runs = vec![
            base.iter().map(|&c| row("baseline", 10, c)).collect(),
            server.iter().map(|&c| row("server2", 10, c)).collect(),
        ];
        let found = ratios(&runs);
        let cpu = found[0].cpu_per_msg.unwrap();
        assert_eq!(found[0].rounds, 4);
        assert_eq!((cpu.median, cpu.low, cpu.high), (1.5, 1.0, 2.0));
        assert!(ratio_lines(&found).contains("1.50x (1.00-2.00)"));
        // A round in which either side served nothing is left out, not counted as zero.
        let mut runs = runs;
        runs[1][3].messages = 0;
        let cpu = ratios(&runs)[0].cpu_per_msg.unwrap();
        assert_eq!((cpu.median, cpu.high), (1.5, 1.5));
    }

    /// The user part of CPU per message is divided only where both sides spent
    /// enough user time to count in ticks; without any such round the text has
    /// no user column, rather than a column of noise.
    #[test]
    fn user_ratios_need_enough_user_time() {
        let rounds = |messages: u64| -> Vec<Vec<Row>> {
            let pair = |name, cpu| Row {
                messages,
                ..row(name, 10, cpu)
            };
            vec![
                vec![pair("baseline", 2.0), pair("baseline", 2.0)],
                vec![pair("server4", 3.0), pair("server4", 4.0)],
            ]
        };
        // 1 µs of user time per message: 1,000 messages are 1 ms, a fraction of a tick.
        let short = ratios(&rounds(1_000));
        assert!(short[0].cpu_per_msg.is_some() && short[0].user_per_msg.is_none());
        assert!(
            !ratio_lines(&short).contains("user"),
            "{}",
            ratio_lines(&short)
        );
        // A million are a second: 100 ticks on each side.
        let long = ratios(&rounds(1_000_000));
        let user = long[0].user_per_msg.unwrap();
        assert_eq!((user.median, user.low, user.high), (1.75, 1.5, 2.0));
        assert!(ratio_lines(&long).contains("user 1.75x (1.50-2.00)"));
        // One round short of it, and there is no ratio rather than a median
        // of the rounds that happened to count.
        let mut runs = rounds(1_000_000);
        runs[1][0].messages = 1_000;
        assert!(ratios(&runs)[0].user_per_msg.is_none());
    }

    /// A row keeps its least disturbed run; an idle row, the run of the middle memory.
    #[test]
    fn which_run_a_row_keeps() {
        let mut busy = row("server3", 10, 2.0);
        busy.other_load = Some(0.4);
        let mut quiet = row("server3", 10, 3.0);
        quiet.other_load = Some(0.01);
        let kept = kept_run(&[busy, quiet]).expect("a run");
        assert_eq!((kept.other_load, kept.repeats), (Some(0.01), 2));

        let idle = |rss: Option<u64>| Row {
            workload: WorkloadName::Idle,
            held_rss_bytes: rss,
            ..row("async", 1000, 0.0)
        };
        let runs = [
            idle(Some(9 << 20)),
            idle(Some(5 << 20)),
            idle(Some(7 << 20)),
        ];
        assert_eq!(
            kept_run(&runs).expect("a run").held_rss_bytes,
            Some(7 << 20)
        );
        // A run that could not be read counts as the largest.
        let runs = [idle(None), idle(Some(5 << 20)), idle(Some(7 << 20))];
        assert_eq!(
            kept_run(&runs).expect("a run").held_rss_bytes,
            Some(7 << 20)
        );
    }
}
