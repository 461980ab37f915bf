//! The prose under the table: a few sentences saying what the numbers show (the cost of
//! each model against the baseline, memory per idle connection, churn, and whether the
//! load generator or other processes limited a row), wrapped to 100 columns.

use crate::row::{Row, WorkloadName};
use crate::servers::Yardstick;
use crate::stats::Ratios;
use crate::units::{bytes, micros, si, wrap};

/// A few sentences saying what the numbers show. Flagged rows are not quoted: their
/// figures are doubtful, and the report lists them with the reason.
pub fn summary(all: &[Row], ratios: &[Ratios]) -> String {
    let mut said = Vec::new();
    let kept: Vec<Row> = all.iter().filter(|r| r.flags.is_empty()).cloned().collect();
    let rows = &kept[..];
    let yardstick = crate::stats::yardstick(rows);

    // Ping-pong at the highest load every strategy ran.
    let ping: Vec<&Row> = rows
        .iter()
        .filter(|r| r.workload == WorkloadName::PingPong)
        .collect();
    if let Some(top) = ping.iter().map(|r| r.clients).max() {
        let at: Vec<&&Row> = ping.iter().filter(|r| r.clients == top).collect();
        let reference =
            (at.iter().find(|r| Some(r.strategy.as_str()) == yardstick)).or_else(|| {
                at.iter()
                    .filter(|r| r.cpu_per_msg().is_some() && r.messages > 0)
                    .min_by(|a, b| {
                        a.cpu_per_msg()
                            .partial_cmp(&b.cpu_per_msg())
                            .unwrap_or(std::cmp::Ordering::Equal)
                    })
            });
        if let Some(reference) = reference.filter(|r| r.cpu_per_msg().is_some()) {
            let base_cpu = reference.cpu_per_msg().unwrap_or(1.0).max(1e-9);
            // Against the baseline, the paired ratios (the median over rounds).
            let paired = |r: &Row| ratios.iter().find(|x| x.is_of(r))?.cpu_per_msg;
            let multiple = |r: &Row| match paired(r) {
                Some(spread) => Some(spread.median),
                None => Some(r.cpu_per_msg()? / base_cpu),
            };
            let rounds = at.iter().filter_map(|r| paired(r)).map(|s| s.rounds).max();
            let parts: Vec<String> = at
                .iter()
                .filter(|r| r.strategy != reference.strategy && r.served > 1)
                .filter_map(|r| {
                    Some(format!(
                        "{} {:.1}x ({} msg/s)",
                        r.strategy,
                        multiple(r)?,
                        si(r.msgs_per_s)
                    ))
                })
                .collect();
            if !parts.is_empty() {
                let (run, median) = match rounds {
                    Some(n) if n > 1 => (
                        ", its least disturbed run".to_string(),
                        format!(" (median of {n} paired rounds)"),
                    ),
                    _ => Default::default(),
                };
                said.push(format!(
                    "At {top} ping-pong clients, measured against {} ({:.2} µs of server CPU per message, {} msg/s{run}), the CPU per message was{median}: {}.",
                    Yardstick::named(&reference.strategy)
                        .map_or("the cheapest server", Yardstick::described),
                    base_cpu,
                    si(reference.msgs_per_s),
                    parts.join(", ")
                ));
            }
            let model = |name: &str| {
                let row = at.iter().find(|r| r.strategy == name)?;
                Some(paired(row)?.median)
            };
            if let (Some(bare), Some(ours)) = (model("baseline-threads"), model("server2")) {
                said.push(format!(
                    "Thread-per-client by itself (baseline-threads, no server code) cost {bare:.2}x the event loop's CPU per message; server2 cost {ours:.2}x: the difference is what server2 adds to its model."
                ));
            }
            if let (Some(bare), Some(ours)) = (model("baseline-async"), model("async")) {
                said.push(format!(
                    "tokio by itself (baseline-async: its echo example, no server code) cost {bare:.2}x the event loop's CPU per message; the async model cost {ours:.2}x: the difference is what switchboard adds to the runtime."
                ));
            }
        }
        for r in at.iter().filter(|r| r.rejected > 0 && r.served <= 1) {
            said.push(format!(
                "{} served {} of {} clients and turned {} away with ERR busy: one client at a time is its model.",
                r.strategy, r.served, r.clients, r.rejected
            ));
        }
    }

    // Idle memory at the largest hold.
    let idle: Vec<&Row> = rows
        .iter()
        .filter(|r| r.workload == WorkloadName::Idle)
        .collect();
    if let Some(top) = idle.iter().map(|r| r.clients).max() {
        let parts: Vec<String> = idle
            .iter()
            .filter(|r| r.clients == top && r.served > 1)
            .filter_map(|r| Some(format!("{} {}", r.strategy, bytes(r.mem_per_conn_bytes?))))
            .collect();
        if !parts.is_empty() {
            said.push(format!(
                "Holding {top} idle connections cost per connection: {}.",
                parts.join(", ")
            ));
        }
        for r in idle
            .iter()
            .filter(|r| r.clients == top && r.served < r.clients && r.served > 1)
        {
            let waited = r.clients.saturating_sub(r.served + r.rejected as usize);
            let how = match (r.rejected, waited) {
                (0, _) => "the others were never answered".to_string(),
                (rejected, 0) => format!("{rejected} were turned away"),
                (rejected, waited) => {
                    format!("{rejected} were turned away and {waited} never answered")
                }
            };
            said.push(format!(
                "{} answered only {} of {} idle connections when pinged: {how}.",
                r.strategy, r.served, r.clients
            ));
        }
    }

    // Heavy: what the slow lines did to everyone else's latency.
    let heavy: Vec<&Row> = rows
        .iter()
        .filter(|r| r.workload == WorkloadName::Heavy && r.messages > 0)
        .collect();
    if let Some(top) = heavy.iter().map(|r| r.clients).max() {
        let parts: Vec<String> = heavy
            .iter()
            .filter(|r| r.clients == top)
            .map(|r| {
                let (p50, p99) = (micros(r.p50_us, r.messages), micros(r.p99_us, r.messages));
                format!("{} p50 {p50} p99 {p99}", r.strategy)
            })
            .collect();
        said.push(format!(
            "With {top} calc clients, a few of them sending slow lines, the cheap clients waited: {}. A single loop makes everyone wait behind a slow line; workers, threads or tasks answer around it.",
            parts.join(", ")
        ));
    }

    // Churn throughput.
    let churn: Vec<String> = rows
        .iter()
        .filter(|r| r.workload == WorkloadName::Churn && r.messages > 0)
        .map(|r| format!("{} {}", r.strategy, si(r.msgs_per_s)))
        .collect();
    if !churn.is_empty() {
        said.push(format!(
            "Connections per second (churn): {}.",
            churn.join(", ")
        ));
    }

    // Was the generator the bottleneck anywhere? Loopback TCP charges the sender for
    // delivering each message, so per message the generator costs about what the
    // cheapest server costs; what matters is which side fills its core first.
    let measured: Vec<&Row> = rows
        .iter()
        .filter(|r| r.messages > 0 && r.gen_cpu_us_per_msg.is_some() && r.cpu_per_msg().is_some())
        .collect();
    // On a disturbed run, which side filled its core first is anyone's guess.
    let disturbed: Vec<String> = all
        .iter()
        .filter(|r| r.other_load.unwrap_or(0.0) > crate::flags::OTHER_BUSY)
        .map(Row::name)
        .collect();
    if !disturbed.is_empty() {
        said.push(format!(
            "Other processes used more than 20% of a core during {}: on a disturbed run this report gives no verdict on whether the server or the load generator set the limits. Re-run on a quiet machine for one.",
            disturbed.join(", ")
        ));
    } else if !measured.is_empty() {
        let cheaper = measured
            .iter()
            .filter(|r| r.gen_cpu_us_per_msg < r.cpu_per_msg())
            .count();
        let tied: Vec<String> = measured
            .iter()
            .filter(|r| {
                r.gen_load.unwrap_or(0.0) >= 0.9
                    && r.gen_cpu_us_per_msg.unwrap_or(0.0) >= 0.95 * r.cpu_per_msg().unwrap_or(0.0)
            })
            .map(|r| r.name())
            .collect();
        said.push(format!(
            "The load generator spent less CPU per message than the server in {cheaper} of {} rows, so there the server's core filled first.",
            measured.len()
        ));
        if tied.is_empty() {
            said.push("It never ran at 90% of a core while costing as much per message as the server: the servers, not the generator, set these limits.".into());
        } else {
            said.push(format!(
                "In {} the generator ran at 90% or more of a core and cost as much per message as the server: those rows show the machine's limit with one core per side, not the server's alone.",
                tied.join(", ")
            ));
        }
    } else if !rows.is_empty() && !rows.iter().any(|r| r.gen_load.is_some()) {
        said.push(if loadgen::procstat::SUPPORTED {
            "CPU figures are left out: /proc counts CPU time in 10 ms ticks, too coarse for windows under 0.5 s.".into()
        } else {
            "CPU figures come from /proc and are only available on Linux.".into()
        });
    }
    wrap(&said.join(" "), 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::test_row as row;
    use crate::stats::ratios;

    /// With the thread-per-client baseline in the run, the summary sets server2 against
    /// it, quoting the medians of the paired rounds, not the ratio of the rows kept.
    #[test]
    fn summary_sets_server2_against_its_model() {
        let rounds = |name: &str, cpu: [f64; 3]| -> Vec<Row> {
            cpu.iter().map(|&c| row(name, 50, c)).collect()
        };
        let runs = vec![
            rounds("baseline", [2.0, 2.0, 4.0]),
            rounds("baseline-threads", [2.4, 3.2, 6.0]), // 1.20, 1.60, 1.50
            rounds("server2", [2.6, 3.4, 6.6]),          // 1.30, 1.70, 1.65
        ];
        // The table keeps each row's first run (none was disturbed).
        let kept: Vec<Row> = runs.iter().map(|r| r[0].clone()).collect();
        let text = summary(&kept, &ratios(&runs));
        let text = text.split_whitespace().collect::<Vec<_>>().join(" "); // unwrapped
        assert!(
            text.contains("by itself (baseline-threads, no server code) cost 1.50x"),
            "{text}"
        );
        assert!(text.contains("server2 cost 1.65x"), "{text}");
        assert!(text.contains("median of 3 paired rounds"), "{text}");
    }

    /// The summary names the rejecting single-client server and the generator's load.
    #[test]
    fn summary_mentions_rejections_and_the_generator() {
        let mut one = row("server1", 10, 2.0);
        one.served = 1;
        one.rejected = 9;
        let text = summary(&[row("baseline", 10, 2.0), one], &[]);
        assert!(text.contains("server1 served 1 of 10"), "{text}");
        assert!(text.contains("servers, not the generator"), "{text}");
    }

    /// A flagged row is not quoted, and on a disturbed run there is no verdict on
    /// which side set the limits.
    #[test]
    fn flagged_rows_are_not_quoted_and_disturbed_runs_get_no_verdict() {
        let mut shaky = row("server3", 10, 9.0);
        shaky.msgs_per_s = 4321.0;
        shaky.other_load = Some(0.5);
        shaky = crate::flags::flagged(shaky);
        let rows = [row("baseline", 10, 2.0), row("server4", 10, 2.0), shaky];
        let text = summary(&rows, &[]);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains("server4 1.0x"), "{text}");
        assert!(
            !text.contains("4.32k"),
            "a flagged figure is quoted: {text}"
        );
        assert!(text.contains("no verdict"), "{text}");
        assert!(!text.contains("servers, not the generator"), "{text}");
        assert!(!text.contains("spent less CPU per message"), "{text}");
    }
}
