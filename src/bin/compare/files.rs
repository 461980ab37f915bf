//! The files `--csv`, `--json` and `--svg` write: every row as CSV, the settings, rows
//! and ratios as JSON, and a chart of ping-pong throughput and p99 latency.

use std::path::Path;

use serde::Serialize;

use crate::charts;
use crate::manifest::Manifest;
use crate::memory::MemoryFit;
use crate::row::{Row, Settings, WorkloadName};
use crate::stats::Ratios;
use crate::sweep::Sweep;

/// Writes every row as CSV, with a header line.
pub fn write_csv(path: &Path, rows: &[Row]) -> Result<(), String> {
    let mut out = String::new();
    let value = serde_json::to_value(rows).map_err(|e| e.to_string())?;
    let Some(list) = value.as_array() else {
        return Err("rows did not serialise as a list".into());
    };
    let fields: Vec<String> = match list.first().and_then(|r| r.as_object()) {
        Some(obj) => obj.keys().cloned().collect(),
        None => Vec::new(),
    };
    out.push_str(&fields.join(","));
    out.push('\n');
    for row in list {
        let cells: Vec<String> = fields
            .iter()
            .map(|f| match &row[f] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => csv_quote(s),
                // A row's flags: one cell, the reasons separated by `; `.
                serde_json::Value::Array(items) => {
                    let texts: Vec<String> = items
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect();
                    csv_quote(&texts.join("; "))
                }
                other => other.to_string(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    std::fs::write(path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes the settings and every row as pretty-printed JSON.
pub fn write_json(
    path: &Path,
    manifest: &Manifest,
    settings: &Settings,
    rows: &[Row],
    ratios: &[Ratios],
    memory: &[MemoryFit],
    sweeps: &[Sweep],
) -> Result<(), String> {
    #[derive(Serialize)]
    struct Doc<'a> {
        manifest: &'a Manifest,
        settings: &'a Settings,
        rows: &'a [Row],
        ratios: &'a [Ratios],
        memory: &'a [MemoryFit],
        sweeps: &'a [Sweep],
    }
    let doc = Doc {
        manifest,
        settings,
        rows,
        ratios,
        memory,
        sweeps,
    };
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Whether `write_svg` charts this row: a ping-pong row that measured something.
pub fn charted(row: &Row) -> bool {
    row.workload == WorkloadName::PingPong && row.messages > 0
}

/// Draws throughput and p99 latency against ping-pong clients, a line per strategy,
/// as one SVG of two charts side by side.
pub fn write_svg(path: &Path, settings: &Settings, rows: &[Row]) -> Result<(), String> {
    let ping: Vec<&Row> = rows.iter().filter(|r| charted(r)).collect();
    if ping.is_empty() {
        return Err("no ping-pong rows to chart".into());
    }
    let [throughput, latency] = charts::pingpong(settings, &ping);
    let (a, b) = (throughput.svg(640, 480)?, latency.svg(640, 480)?);
    // Two SVG documents side by side in one: each keeps its own coordinates.
    let inner = |svg: &str, x: u32| {
        let body = svg.split_once('>').map_or(svg, |(_, rest)| rest);
        let body = body.trim_end().trim_end_matches("</svg>");
        format!("<svg x=\"{x}\" y=\"0\" width=\"640\" height=\"480\">{body}</svg>")
    };
    let text = format!(
        "<svg width=\"1280\" height=\"480\" viewBox=\"0 0 1280 480\" \
         xmlns=\"http://www.w3.org/2000/svg\">\n{}\n{}\n</svg>\n",
        inner(&a, 0),
        inner(&b, 640)
    );
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CSV quotes fields with commas and leaves missing values empty.
    #[test]
    fn csv_quoting() {
        assert_eq!(csv_quote("a,b"), "\"a,b\"");
        assert_eq!(csv_quote("plain"), "plain");
        assert_eq!(csv_quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_quote("x\"y,"), "\"x\"\"y,\"");
    }

    /// A row's flags, a list, are one CSV cell, quoted when they need it.
    #[test]
    fn csv_flags_are_one_cell() {
        let mut row = crate::row::test_row("server4", 10, 2.0);
        row.flags = vec!["rate not achieved".into(), "other, busy".into()];
        let path = std::env::temp_dir().join(format!("compare-csv-{}.csv", std::process::id()));
        write_csv(&path, &[row]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let line = text.lines().nth(1).unwrap();
        assert!(
            line.ends_with(",\"rate not achieved; other, busy\""),
            "{line}"
        );
    }
}
