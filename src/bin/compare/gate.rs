//! `--against OLD.json` and `--fail-over PCT`: a regression gate for CI. Each model's
//! ratios to the baseline (CPU per message, p99, throughput) are set beside the ones
//! stored in an earlier run's JSON. Ratios, not raw figures, because a ratio to the
//! baseline measured moments apart on the same machine survives a change of machine
//! or a noisy neighbour far better than a rate does.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::row::label;
use crate::stats::Ratios;

/// One figure's ratio now and in the stored run.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// `strategy workload clients`, as the table names the row.
    pub row: String,
    /// `cpu/msg`, `p99` or `msg/s`.
    pub figure: &'static str,
    /// The stored ratio (median).
    pub old: f64,
    /// This run's ratio (median).
    pub new: f64,
}

impl Change {
    /// How much worse, in percent: positive when the figure got worse (a higher CPU per
    /// message or p99 ratio, a lower throughput ratio).
    pub fn worse_pct(&self) -> f64 {
        let change = (self.new / self.old - 1.0) * 100.0;
        match self.figure {
            "msg/s" => -change,
            _ => change,
        }
    }

    /// Whether this figure counts toward `--fail-over` (CPU per message and p99 do).
    pub fn gated(&self) -> bool {
        self.figure != "msg/s"
    }
}

/// Reads the ratios of a JSON file that `compare --json` wrote.
pub fn load(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not compare's JSON: {e}", path.display()))?;
    match doc.get("ratios") {
        Some(Value::Array(_)) => Ok(doc),
        _ => Err(format!(
            "{} has no ratios (was it written by compare --json, with a baseline in the run?)",
            path.display()
        )),
    }
}

/// Every ratio of this run that the stored run also has, beside it.
pub fn changes(now: &[Ratios], stored: &Value) -> Vec<Change> {
    let empty = Vec::new();
    let old = stored["ratios"].as_array().unwrap_or(&empty);
    let mut out = Vec::new();
    for r in now {
        let Some(o) = old.iter().find(|o| {
            // A stored run from before ratios named their yardstick took the baseline's.
            let against = o["against"].as_str().unwrap_or("baseline");
            o["strategy"] == r.strategy.as_str()
                && against == r.against
                && o["workload"] == r.workload.as_str()
                && o["depth"].as_u64() == Some(r.depth as u64)
                && o["clients"].as_u64() == Some(r.clients as u64)
        }) else {
            continue;
        };
        let row = format!(
            "{} {} {}",
            r.strategy,
            label(r.workload, r.depth),
            r.clients
        );
        for (figure, key, new) in [
            ("cpu/msg", "cpu_per_msg", r.cpu_per_msg),
            ("p99", "p99", r.p99),
            ("msg/s", "msgs_per_s", r.msgs_per_s),
        ] {
            let old = o[key]["median"].as_f64().filter(|v| *v > 0.0);
            if let (Some(old), Some(new)) = (old, new) {
                out.push(Change {
                    row: row.clone(),
                    figure,
                    old,
                    new: new.median,
                });
            }
        }
    }
    out
}

/// The changes as lines: each ratio beside the stored one.
pub fn change_lines(changes: &[Change], against: &Path) -> String {
    if changes.is_empty() {
        return format!(
            "\nAgainst {}: no row of this run is in it with a ratio to compare.\n",
            against.display()
        );
    }
    let mut out = format!(
        "\nAgainst {} (ratio to the same yardstick now, then stored; + is worse):\n",
        against.display()
    );
    let width = changes.iter().map(|c| c.row.len()).max().unwrap_or(0);
    for c in changes {
        let _ = writeln!(
            out,
            "  {:<width$}  {:<7} {:>6.2}x  was {:>6.2}x  {:+.0}%",
            c.row,
            c.figure,
            c.new,
            c.old,
            c.worse_pct()
        );
    }
    out
}

/// The gated changes worse than `pct` percent.
pub fn over(changes: &[Change], pct: f64) -> Vec<&Change> {
    changes
        .iter()
        .filter(|c| c.gated() && c.worse_pct() > pct)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::test_row as row;
    use crate::stats::ratios;

    /// Ratios are matched by row, set beside the stored ones, and only CPU per message
    /// and p99 worse than the threshold fail the gate.
    #[test]
    fn gate_on_known_ratios() {
        let mut slow = row("event-loop", 10, 3.0); // 1.5x the baseline's CPU
        slow.p99_us = 110.0; // 1.1x
        let now = ratios(&[vec![row("baseline", 10, 2.0)], vec![slow]]);
        let stored: Value = serde_json::json!({"ratios": [
            {"strategy": "event-loop", "workload": "pingpong", "depth": 1, "clients": 10,
             "cpu_per_msg": {"median": 1.2}, "p99": {"median": 1.0},
             "msgs_per_s": {"median": 1.0}},
            {"strategy": "event-loop", "workload": "pingpong", "depth": 1, "clients": 50,
             "cpu_per_msg": {"median": 0.1}}
        ]});
        let found = changes(&now, &stored);
        assert_eq!(found.len(), 3, "{found:?}");
        let cpu = &found[0];
        assert_eq!((cpu.figure, cpu.old, cpu.new), ("cpu/msg", 1.2, 1.5));
        assert!((cpu.worse_pct() - 25.0).abs() < 1e-9);
        assert!((found[1].worse_pct() - 10.0).abs() < 1e-9);
        assert_eq!(over(&found, 20.0).len(), 1, "CPU 25% worse, p99 10%");
        assert_eq!(over(&found, 30.0).len(), 0);
        let text = change_lines(&found, Path::new("old.json"));
        assert!(
            text.contains("cpu/msg   1.50x  was   1.20x  +25%"),
            "{text}"
        );
    }

    /// A stored ratio to another yardstick is not set beside this run's: 1.2x the
    /// bare thread-per-client echo says nothing about 1.2x the event-loop baseline.
    #[test]
    fn ratios_to_another_yardstick_are_not_compared() {
        let now = ratios(&[
            vec![row("baseline", 10, 2.0)],
            vec![row("server2", 10, 3.0)],
        ]);
        let stored: Value = serde_json::json!({"ratios": [
            {"strategy": "server2", "against": "baseline-threads", "workload": "pingpong",
             "depth": 1, "clients": 10, "cpu_per_msg": {"median": 1.0}}
        ]});
        assert!(changes(&now, &stored).is_empty());
    }
}
