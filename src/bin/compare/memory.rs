//! Memory per connection as a slope, not a point: for each model, the server's RSS
//! while holding idle connections at several counts, fitted by least squares to
//! `fixed + slope × connections`. One count's growth mixes the per-connection cost with
//! whatever the first connections allocate once (buffers, a thread pool's stacks); the
//! slope separates the two.

use serde::Serialize;

use crate::row::{Row, WorkloadName};
use crate::units::{bytes, opt};

/// A straight line fitted to points by least squares.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Line {
    /// Change in y per unit of x.
    pub slope: f64,
    /// y at x = 0.
    pub intercept: f64,
}

/// The least-squares line through `points`; `None` with fewer than two distinct x.
pub fn fit(points: &[(f64, f64)]) -> Option<Line> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx <= f64::EPSILON * mean_x.abs().max(1.0) {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    Some(Line {
        slope,
        intercept: mean_y - slope * mean_x,
    })
}

/// One model's memory against connections held.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryFit {
    /// The model.
    pub strategy: String,
    /// (connections held, RSS in bytes), one per idle row.
    pub points: Vec<(f64, f64)>,
    /// RSS growth per connection held, bytes: the fitted slope.
    pub per_conn_bytes: f64,
    /// RSS with no connection, bytes: the fitted intercept.
    pub fixed_bytes: f64,
    /// Kernel thread stacks per connection (mean over the counts), bytes.
    pub kernel_stack_per_conn_bytes: Option<f64>,
    /// Kernel socket memory per connection (mean over the counts), bytes.
    pub kernel_sockets_per_conn_bytes: Option<f64>,
}

/// A fit per model that held idle connections at two or more counts.
pub fn fits(rows: &[Row]) -> Vec<MemoryFit> {
    let mut out = Vec::new();
    let idle = rows.iter().filter(|r| r.workload == WorkloadName::Idle);
    for name in crate::charts::names(idle) {
        let held: Vec<&Row> = rows
            .iter()
            .filter(|r| r.workload == WorkloadName::Idle && r.strategy == name)
            .filter(|r| r.held_rss_bytes.is_some())
            .collect();
        let points: Vec<(f64, f64)> = held
            .iter()
            .filter_map(|r| Some((r.served as f64, r.held_rss_bytes? as f64)))
            .collect();
        let Some(line) = fit(&points) else { continue };
        let mean = |f: fn(&Row) -> Option<f64>| {
            let v: Vec<f64> = held.iter().filter_map(|r| f(r)).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        out.push(MemoryFit {
            strategy: name.to_string(),
            points,
            per_conn_bytes: line.slope,
            fixed_bytes: line.intercept,
            kernel_stack_per_conn_bytes: mean(|r| r.kernel_stack_per_conn_bytes),
            kernel_sockets_per_conn_bytes: mean(|r| r.kernel_sockets_per_conn_bytes),
        });
    }
    out
}

/// A sentence for the summary: what a connection costs each model, by the slope.
pub fn slope_sentence(fits: &[MemoryFit]) -> String {
    if fits.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = fits
        .iter()
        .map(|f| {
            let kernel = f
                .kernel_stack_per_conn_bytes
                .filter(|&k| k >= 4096.0)
                .map(|k| format!(" plus {} of kernel stack", bytes(k)))
                .unwrap_or_default();
            format!(
                "{} {}{kernel}",
                f.strategy,
                bytes(f.per_conn_bytes.max(0.0))
            )
        })
        .collect();
    format!(
        "Each idle connection cost, by the slope of RSS against connections held: {}.",
        parts.join(", ")
    )
}

/// The fits as lines of text under the table; empty without any.
pub fn fit_lines(fits: &[MemoryFit]) -> String {
    if fits.is_empty() {
        return String::new();
    }
    let counts: Vec<String> = fits[0]
        .points
        .iter()
        .map(|p| format!("{:.0}", p.0))
        .collect();
    let mut out = String::from("\n");
    out.push_str(&crate::units::wrap(
        &format!(
            "Memory per idle connection: the slope of a least-squares fit of RSS over {} \
             connections held (fixed: the fit at zero). Kernel side, where Linux shows it: \
             thread stacks, and socket memory (slab + TCP buffers, machine-wide, both ends of \
             each loopback connection; anything else on the machine moves it too):",
            counts.join(", ")
        ),
        100,
    ));
    let width = fits.iter().map(|f| f.strategy.len()).max().unwrap_or(0);
    let kernel = |v: Option<f64>| opt(v, |b| format!("{}/conn", bytes(b.max(0.0))));
    for f in fits {
        out.push_str(&format!(
            "  {:<width$}  user space {:>9}/conn + {:>9} fixed   kernel stacks {:>14}   \
             kernel sockets {:>14}\n",
            f.strategy,
            bytes(f.per_conn_bytes.max(0.0)),
            bytes(f.fixed_bytes.max(0.0)),
            kernel(f.kernel_stack_per_conn_bytes),
            kernel(f.kernel_sockets_per_conn_bytes),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on a known line give that line back; a single count gives no fit.
    #[test]
    fn fit_recovers_a_known_line() {
        let line = |x: f64| 3_500_000.0 + 14_336.0 * x;
        let points: Vec<(f64, f64)> = [1000.0, 2000.0, 4000.0, 8000.0]
            .iter()
            .map(|&x| (x, line(x)))
            .collect();
        let f = fit(&points).unwrap();
        assert!((f.slope - 14_336.0).abs() < 1e-6, "{f:?}");
        assert!((f.intercept - 3_500_000.0).abs() < 1e-3, "{f:?}");
        assert_eq!(fit(&points[..1]), None);
        assert_eq!(fit(&[(5.0, 1.0), (5.0, 2.0)]), None, "one distinct count");
    }

    /// Noise around the line is averaged out: the fit lies between the extremes.
    #[test]
    fn fit_of_noisy_points() {
        let points = [
            (1000.0, 1.1e6),
            (2000.0, 1.9e6),
            (3000.0, 3.1e6),
            (4000.0, 3.9e6),
        ];
        let f = fit(&points).unwrap();
        // By hand: mean x 2500, mean y 2.5e6, sxy 4.8e9, sxx 5e6.
        assert!((f.slope - 960.0).abs() < 1e-9, "{f:?}");
        assert!((f.intercept - 100_000.0).abs() < 1e-6, "{f:?}");
    }

    /// Each model with idle rows at two counts gets its fit; the text names both sides.
    #[test]
    fn fits_per_model() {
        let idle = |name: &str, held: usize, rss: u64| Row {
            strategy: name.into(),
            workload: WorkloadName::Idle,
            clients: held,
            served: held,
            held_rss_bytes: Some(rss),
            kernel_stack_per_conn_bytes: Some(16384.0),
            ..Row::default()
        };
        let rows = [
            idle("thread-per-client", 100, 3_000_000 + 100 * 10_000),
            idle("thread-per-client", 200, 3_000_000 + 200 * 10_000),
            idle("event-loop", 100, 2_000_000),
        ];
        let found = fits(&rows);
        assert_eq!(found.len(), 1, "one count is no slope");
        assert!((found[0].per_conn_bytes - 10_000.0).abs() < 1e-6);
        let text = fit_lines(&found);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains("9.8KiB/conn + 2.86MiB fixed"), "{text}");
        assert!(text.contains("kernel stacks 16.0KiB/conn"), "{text}");
        assert!(text.contains("kernel sockets n/a"), "{text}");
    }
}
