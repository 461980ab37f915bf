//! The files `--csv`, `--json` and `--svg` write: every row as CSV, the settings, rows
//! and ratios as JSON, and a chart of ping-pong throughput and p99 latency.

use std::path::Path;

use serde::Serialize;

use crate::model::{Row, Settings, WorkloadName};
use crate::stats::Ratios;

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
    settings: &Settings,
    rows: &[Row],
    ratios: &[Ratios],
) -> Result<(), String> {
    #[derive(Serialize)]
    struct Doc<'a> {
        settings: &'a Settings,
        rows: &'a [Row],
        ratios: &'a [Ratios],
    }
    let doc = Doc {
        settings,
        rows,
        ratios,
    };
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Draws throughput and p99 latency against ping-pong clients, a line per strategy.
pub fn write_svg(path: &Path, rows: &[Row]) -> Result<(), String> {
    use plotters::prelude::*;

    let ping: Vec<&Row> = rows
        .iter()
        .filter(|r| r.workload == WorkloadName::PingPong && r.messages > 0)
        .collect();
    let mut names: Vec<&str> = Vec::new();
    for r in &ping {
        if !names.contains(&r.strategy.as_str()) {
            names.push(&r.strategy);
        }
    }
    let series = |metric: fn(&Row) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        names
            .iter()
            .map(|name| {
                let mut points: Vec<(f64, f64)> = ping
                    .iter()
                    .filter(|r| r.strategy == *name)
                    .map(|r| (r.clients as f64, metric(r)))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                (name.to_string(), points)
            })
            .collect()
    };
    let throughput = series(|r| r.msgs_per_s);
    let latency = series(|r| r.p99_us / 1000.0);
    let max_clients = ping.iter().map(|r| r.clients).max().unwrap_or(1) as f64;

    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(600);
        let panels = [
            (&left, "Throughput (messages/s)", &throughput, false),
            (&right, "p99 latency (ms)", &latency, true),
        ];
        for (area, title, data, log_y) in panels {
            let y_max = data
                .iter()
                .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
                .fold(0.0f64, f64::max)
                .max(1e-3)
                * 1.15;
            let y_min = data
                .iter()
                .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
                .fold(f64::INFINITY, f64::min)
                .clamp(1e-3, y_max / 2.0)
                * 0.8;
            let x_range = (0.8f64..max_clients * 1.25).log_scale();
            let mut builder = ChartBuilder::on(area);
            builder
                .caption(title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70);
            // The two panels differ only in the y axis type, which plotters encodes in
            // the chart's type: the same drawing code, instantiated twice.
            macro_rules! lines {
                ($chart:expr) => {{
                    let mut chart = $chart;
                    chart
                        .configure_mesh()
                        .x_desc("ping-pong clients")
                        .y_desc(title)
                        .draw()?;
                    for (i, (name, points)) in data.iter().enumerate() {
                        let color = Palette99::pick(i).to_rgba();
                        chart
                            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                            .label(name.as_str())
                            .legend(move |(x, y)| {
                                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                            });
                        chart.draw_series(
                            points.iter().map(|&p| Circle::new(p, 3, color.filled())),
                        )?;
                    }
                    chart
                        .configure_series_labels()
                        .position(SeriesLabelPosition::UpperLeft)
                        .background_style(WHITE.mix(0.85))
                        .border_style(BLACK)
                        .draw()?;
                }};
            }
            if log_y {
                lines!(builder.build_cartesian_2d(x_range, (y_min..y_max).log_scale())?);
            } else {
                lines!(builder.build_cartesian_2d(x_range, 0f64..y_max)?);
            }
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("cannot draw {}: {e}", path.display()))
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
}
