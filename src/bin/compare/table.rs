//! The main table: a line per strategy and load, every figure in short units, the
//! columns aligned for a terminal and the strategies set apart by blank lines.

use std::fmt::Write as _;

use crate::model::{Row, WorkloadName};
use crate::units::{bytes, cpu, micros, opt, percent, si};

const HEADERS: [&str; 19] = [
    "strategy", "workload", "clients", "served", "rej", "msg/s", "p50", "p99", "p99.9", "max",
    "usr/msg", "sys/msg", "thr", "peak mem", "mem/conn", "err", "srv", "gen", "other",
];

/// The main table, a row per strategy and load level, aligned for a terminal.
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.strategy.clone(),
                r.label(),
                r.clients.to_string(),
                r.served.to_string(),
                r.rejected.to_string(),
                if r.workload == WorkloadName::Idle {
                    "-".into()
                } else {
                    si(r.msgs_per_s)
                },
                micros(r.p50_us, r.messages),
                micros(r.p99_us, r.messages),
                micros(r.p999_us, r.messages),
                micros(r.max_us, r.messages),
                opt(r.cpu_user_us_per_msg, cpu),
                opt(r.cpu_sys_us_per_msg, cpu),
                opt(r.server_threads, |t| t.to_string()),
                opt(r.server_peak_bytes, |b| bytes(b as f64)),
                opt(r.mem_per_conn_bytes, bytes),
                r.errors.to_string(),
                opt(r.server_load, percent),
                opt(r.gen_load, percent),
                opt(r.other_load, percent),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    for (i, line) in std::iter::once(&header).chain(cells.iter()).enumerate() {
        for (col, (cell, width)) in line.iter().zip(&widths).enumerate() {
            let pad = width - cell.chars().count();
            // Names left-aligned, numbers right-aligned.
            if col < 2 {
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "{}{cell}", " ".repeat(pad));
            }
            out.push_str(if col + 1 < widths.len() { "  " } else { "\n" });
        }
        // Separate strategies for the eye.
        if i > 0 && i < cells.len() && rows[i - 1].strategy != rows[i].strategy {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_row as row;

    /// The table has a header and one line per row, and marks missing figures n/a.
    #[test]
    fn table_shape() {
        let mut r = row("server2", 10, 3.0);
        r.server_threads = None;
        let text = table(&[r]);
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("n/a") && text.starts_with("strategy"));
    }
}
