//! The main table: a line per strategy and load, every figure in short units, the
//! columns aligned for a terminal and the strategies set apart by blank lines.

use std::fmt::Write as _;

use crate::row::{Row, WorkloadName};
use crate::units::{bytes, cpu, micros, opt, percent, si};

const HEADERS: [&str; 19] = [
    "strategy", "workload", "clients", "served", "rej", "msg/s", "p50", "p99", "p99.9", "max",
    "usr/msg", "sys/msg", "thr", "peak mem", "mem/conn", "err", "srv", "gen", "other",
];
/// Columns added when any row is open-loop: the rate asked for, and p99 timed from the
/// actual send (the table's p50/p99/p99.9 are then from when each request was due).
const OPEN_LOOP_HEADERS: [&str; 2] = ["offered", "p99 unc"];
/// Column added when any row is flagged: `!` marks it (the reasons follow the table).
const FLAG_HEADER: &str = "flag";

/// The main table, a row per strategy and load level, aligned for a terminal.
pub fn table(rows: &[Row]) -> String {
    let open_loop = rows.iter().any(Row::open_loop);
    let any_flag = rows.iter().any(|r| !r.flags.is_empty());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
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
            ];
            if open_loop {
                cells.push(r.offered_per_s.map_or("-".into(), si));
                cells.push(match r.p99_uncorrected_us {
                    Some(us) => micros(us, r.messages),
                    None => "-".into(),
                });
            }
            if any_flag {
                cells.push(if r.flags.is_empty() { "" } else { "!" }.into());
            }
            cells
        })
        .collect();
    let mut header: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    if open_loop {
        header.extend(OPEN_LOOP_HEADERS.map(String::from));
    }
    if any_flag {
        header.push(FLAG_HEADER.into());
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
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
        if out.ends_with(" \n") {
            // An empty last cell (an unflagged row) leaves no trailing blanks.
            out.pop();
            let end = out.trim_end_matches(' ').len();
            out.truncate(end);
            out.push('\n');
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
    use crate::row::test_row as row;

    /// The table has a header and one line per row, and marks missing figures n/a.
    #[test]
    fn table_shape() {
        let mut r = row("server2", 10, 3.0);
        r.server_threads = None;
        let text = table(&[r]);
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("n/a") && text.starts_with("strategy"));
        assert!(!text.contains("offered") && !text.contains("flag"));
    }

    /// An open-loop row adds the offered rate and the uncorrected p99; a flagged row
    /// is marked `!`, and an unflagged one's line ends without blanks.
    #[test]
    fn open_loop_and_flag_columns() {
        let mut open = row("server4", 10, 3.0);
        open.offered_per_s = Some(20_000.0);
        open.p99_uncorrected_us = Some(150.0);
        open.flags = vec!["rate not achieved".into()];
        let text = table(&[open, row("server3", 10, 3.0)]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("offered  p99 unc  flag"), "{text}");
        assert!(lines[1].ends_with("20.0k    150µs     !"), "{text}");
        assert!(lines[3].ends_with("-        -"), "{text}");
    }
}
