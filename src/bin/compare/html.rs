//! `--html FILE`: one self-contained page to look at. Every chart is inline SVG drawn
//! by `plotters`; there is no script, font or stylesheet to fetch, so the page opens
//! offline. Charts first, then the table, the prose summary and the run's manifest.

use std::fmt::Write as _;
use std::path::Path;

use crate::charts::{self, Axis, Chart, Legend, Series};
use crate::manifest::Manifest;
use crate::memory::MemoryFit;
use crate::row::{Row, Settings, WorkloadName};
use crate::sweep::{Step, Sweep};
use crate::units::micros;

/// Everything the page shows.
pub struct Page<'a> {
    /// What the run was.
    pub manifest: &'a Manifest,
    /// Its settings.
    pub settings: &'a Settings,
    /// The table's rows.
    pub rows: &'a [Row],
    /// Memory fits per model.
    pub memory: &'a [MemoryFit],
    /// Sweeps per model.
    pub sweeps: &'a [Sweep],
    /// The text report (table, ratios, notes, summary), as printed.
    pub report: &'a str,
}

/// Writes the page to `path` (through a temporary file, so a reader never sees half).
pub fn write_html(path: &Path, page: &Page) -> Result<(), String> {
    let text = render(page)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let partial = path.with_extension(format!("html.{}.tmp", std::process::id()));
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The page as HTML.
pub fn render(page: &Page) -> Result<String, String> {
    // (title, SVG, words for under it)
    let mut figures: Vec<(String, String, String)> = Vec::new();
    let mut add = |chart: Option<Chart>, missing: &str| -> Result<(), String> {
        match chart {
            Some(c) => {
                let svg = c.svg(860, 480)?;
                figures.push((c.title, svg, c.note));
            }
            None => figures.push((missing.to_string(), String::new(), String::new())),
        }
        Ok(())
    };
    add(
        latency_curves(page),
        "Latency against offered load: no sweep in this run (-w sweep)",
    )?;
    add(
        throughput(page),
        "Throughput: no ping-pong rows in this run (-w pingpong)",
    )?;
    add(
        cpu_split(page),
        "CPU per message: no CPU figures in this run (Linux, windows of 0.5 s or more)",
    )?;
    add(
        memory_lines(page),
        "Memory against connections held: no idle rows at two or more counts (--idle 500,1000,2000)",
    )?;
    add(
        heavy(page),
        "Heavy workload: no heavy rows in this run (-w heavy)",
    )?;

    let mut out = String::new();
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>switchboard compare</title>\n<style>\n\
         body { font-family: sans-serif; margin: 24px; color: #111; background: #fff; }\n\
         h1 { font-size: 26px; margin: 0 0 4px; }\n\
         .sub { color: #444; margin: 0 0 18px; }\n\
         .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(640px, 1fr)); gap: 16px; }\n\
         figure { margin: 0; border: 1px solid #ddd; padding: 4px; }\n\
         figure svg { width: 100%; height: auto; display: block; }\n\
         figure.missing { padding: 16px; color: #555; }\n\
         figcaption { font-size: 14px; color: #333; padding: 4px 10px 8px; line-height: 1.4; }\n\
         .verdict { font-size: 16px; max-width: 1100px; margin: 0 0 18px; padding: 8px 16px; background: #f3f6fa; border-left: 4px solid #0072b2; }\n\
         .verdict li { margin: 4px 0; }\n\
         pre { font-size: 12px; overflow-x: auto; background: #f7f7f7; padding: 12px; }\n\
         table.manifest td { padding: 2px 12px 2px 0; vertical-align: top; }\n\
         </style>\n</head>\n<body>\n",
    );
    let _ = writeln!(
        out,
        "<h1>switchboard: concurrency models compared</h1>\n<p class=\"sub\">{}</p>",
        escape(&charts::caption(page.settings))
    );
    if page.settings.build == "debug" {
        out.push_str(
            "<p style=\"color:#b00;font-weight:bold\">A debug build: these figures are many \
             times slower than release and say little about the models.</p>\n",
        );
    }
    let verdict = crate::verdict::verdict(page.rows, page.memory, page.sweeps);
    if !verdict.is_empty() {
        out.push_str("<div class=\"verdict\"><strong>In short, from this run:</strong>\n<ul>\n");
        for line in &verdict {
            let _ = writeln!(out, "<li>{}</li>", escape(line));
        }
        out.push_str("</ul></div>\n");
    }
    out.push_str("<div class=\"charts\">\n");
    for (title, svg, note) in &figures {
        if svg.is_empty() {
            let _ = writeln!(out, "<figure class=\"missing\">{}</figure>", escape(title));
            continue;
        }
        let note = match note.is_empty() {
            true => String::new(),
            false => format!("<figcaption>{}</figcaption>", escape(note)),
        };
        let _ = writeln!(
            out,
            "<figure aria-label=\"{}\">{}{note}</figure>",
            escape(title),
            svg_body(svg)
        );
    }
    out.push_str("</div>\n<h2>The table, and what it shows</h2>\n<pre>");
    out.push_str(&escape(page.report));
    out.push_str("</pre>\n<h2>Run manifest</h2>\n<table class=\"manifest\">\n");
    let m = page.manifest;
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "n/a".into());
    for (k, v) in [
        ("date", m.date.clone()),
        ("git commit", or(&m.git_commit)),
        ("kernel", or(&m.kernel)),
        ("CPU", or(&m.cpu_model)),
        ("cores", m.cores.to_string()),
        ("pinning", m.pinning.clone()),
        ("switchboard", format!("{} ({} build)", m.version, m.build)),
        ("command", m.command.clone()),
    ] {
        let _ = writeln!(out, "<tr><td>{k}</td><td>{}</td></tr>", escape(&v));
    }
    out.push_str("</table>\n</body>\n</html>\n");
    Ok(out)
}

/// An SVG document without its XML prologue, to sit inside the page.
fn svg_body(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(at) => &svg[at..],
        None => svg,
    }
}

/// Text made safe for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn series(name: &str, colour: usize, points: Vec<(f64, f64)>) -> Series {
    Series {
        name: name.into(),
        colour,
        points,
        ..Series::default()
    }
}

/// The models of the run in order, for one colour per model on every chart.
fn colour_of(page: &Page, name: &str) -> usize {
    let names = charts::names(
        page.rows
            .iter()
            .chain(page.sweeps.iter().map(|s| &s.closed_loop)),
    );
    names.iter().position(|n| n == name).unwrap_or(0)
}

/// p99 against offered load, a line per model through the medians of its clean steps,
/// whiskers from the lowest to the highest repeat, disturbed steps hollow, the knee
/// ringed; the rule and each model's knee in words under it.
fn latency_curves(page: &Page) -> Option<Chart> {
    let swept: Vec<&Sweep> = page.sweeps.iter().filter(|s| !s.steps.is_empty()).collect();
    let lines: Vec<Series> = (swept.iter())
        .map(|s| {
            let at = |t: &Step| (t.offered_per_s, t.p99_us);
            let drawn = || s.steps.iter().filter(|t| t.messages > 0);
            let mut line = series(
                &s.strategy,
                colour_of(page, &s.strategy),
                drawn().filter(|t| !t.disturbed).map(at).collect(),
            );
            line.hollow = drawn().filter(|t| t.disturbed).map(at).collect();
            line.whiskers = (drawn().filter(|t| t.used > 1))
                .map(|t| (t.offered_per_s, t.p99_low_us, t.p99_high_us))
                .collect();
            line.marks = s.knee.iter().map(|k| (k.offered_per_s, k.p99_us)).collect();
            line
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    let first = swept[0];
    let mut note = format!(
        "Each point is the median p99 of {} repeats of that step; the whiskers run from the \
         lowest to the highest. {} ",
        first.repeats,
        crate::sweep::KNEE_RULE
    );
    if let Some(slo) = first.slo_us {
        note += &format!(
            "The knee's median p99 must also be under {}. ",
            micros(slo, 1)
        );
    }
    let words: Vec<String> = page.sweeps.iter().map(crate::sweep::knee_words).collect();
    note += &words.join(". ");
    note.push('.');
    Some(Chart {
        title: "p99 latency against offered load (ringed: the knee)".into(),
        caption: format!(
            "{}; open loop at {} clients, timed from when each request was due",
            charts::caption(page.settings),
            first.clients
        ),
        x: ("offered load, requests per second".into(), Axis::Rate),
        y: ("p99 latency".into(), Axis::LogMicros),
        series: lines,
        bars: None,
        legend: Legend::Column,
        note,
    })
}

/// Ping-pong throughput against clients, a line per model (markers only where a model
/// has fewer than three client counts).
fn throughput(page: &Page) -> Option<Chart> {
    let ping: Vec<&Row> = page
        .rows
        .iter()
        .filter(|r| crate::files::charted(r))
        .collect();
    if ping.is_empty() {
        return None;
    }
    let [mut chart, _] = charts::pingpong(page.settings, &ping);
    for s in &mut chart.series {
        s.colour = colour_of(page, &s.name);
    }
    chart.title = "Throughput per model and client count (ping-pong)".into();
    if chart
        .series
        .iter()
        .any(|s| s.points.len() < charts::MIN_LINE)
    {
        chart.note = format!(
            "Markers without a line: a model measured at fewer than {} client counts \
             (-c 1,10,100,1000 gives a curve). At each count the models' markers are set a \
             little apart, in the legend's order, so that none hides another.",
            charts::MIN_LINE
        );
    }
    Some(chart)
}

/// Server CPU per message, user and system, per model: ping-pong at the highest
/// client count every model ran. A model that served fewer clients than were offered
/// says so beside its bar: its CPU per message is for the few it served.
fn cpu_split(page: &Page) -> Option<Chart> {
    let ping: Vec<&Row> = page
        .rows
        .iter()
        .filter(|r| r.workload == WorkloadName::PingPong && r.cpu_per_msg().is_some())
        .collect();
    let top = ping.iter().map(|r| r.clients).max()?;
    let at: Vec<&Row> = ping.into_iter().filter(|r| r.clients == top).collect();
    let bars = at
        .iter()
        .map(|r| {
            let name = match r.served < r.clients {
                true => format!("{} (served {} of {})", r.strategy, r.served, r.clients),
                false => r.strategy.clone(),
            };
            (
                name,
                [
                    r.cpu_user_us_per_msg.unwrap_or(0.0),
                    r.cpu_sys_us_per_msg.unwrap_or(0.0),
                ],
            )
        })
        .collect();
    let mut chart = charts::stacked_bars(
        format!("Server CPU per message, user and system ({top} ping-pong clients)"),
        charts::caption(page.settings),
        "µs of server CPU per message".into(),
        ["user", "system"],
        bars,
    );
    let short: Vec<String> = (at.iter().filter(|r| r.served < r.clients))
        .map(|r| {
            format!(
                "{} served {} of its {} clients",
                r.strategy, r.served, r.clients
            )
        })
        .collect();
    if !short.is_empty() {
        chart.note = format!(
            "{}: its figure is the cost per message of the clients it served, with the \
             others turned away or left waiting, not of serving {top}.",
            short.join("; ")
        );
    }
    Some(chart)
}

/// RSS against idle connections held, points and fitted lines, per model, on a log
/// axis with each model's name where its line ends: the lean models sit within a
/// megabyte of each other, and a linear axis drawn to thread-per-client's hundreds
/// would lay them on one line.
fn memory_lines(page: &Page) -> Option<Chart> {
    if page.memory.is_empty() {
        return None;
    }
    let mut lines = Vec::new();
    for f in page.memory {
        let colour = colour_of(page, &f.strategy);
        let mib = |b: f64| b / (1024.0 * 1024.0);
        let points: Vec<(f64, f64)> = f.points.iter().map(|&(x, y)| (x, mib(y))).collect();
        let top = points.iter().map(|p| p.0).fold(0.0, f64::max);
        lines.push(series(&f.strategy, colour, points));
        // Straight on a linear axis is a curve on a log one: drawn through many points.
        let along = (0..=FIT_POINTS).map(|i| {
            let x = top * i as f64 / FIT_POINTS as f64;
            (x, mib(f.fixed_bytes + f.per_conn_bytes * x))
        });
        let mut fitted = series(&f.strategy, colour, along.collect());
        fitted.fitted = true;
        lines.push(fitted);
    }
    Some(Chart {
        title: "Memory against idle connections held (dashed: least-squares fit)".into(),
        caption: charts::caption(page.settings),
        x: ("idle connections held".into(), Axis::Count),
        y: ("server RSS (log scale)".into(), Axis::LogMiB),
        series: lines,
        bars: None,
        legend: Legend::AtEnds,
        note: "A log scale: equal gaps are equal ratios. Each name sits where its model's \
               line ends."
            .into(),
    })
}

/// Points a fitted line is drawn through.
const FIT_POINTS: usize = 24;

/// The heavy workload's cheap-client p99, per model, at its highest client count.
/// The baseline echoes the slow lines rather than computing them: it is the floor,
/// and named so. A model that served no cheap client has no bar, and is named under
/// the title instead.
fn heavy(page: &Page) -> Option<Chart> {
    let heavy: Vec<&Row> = (page.rows.iter())
        .filter(|r| r.workload == WorkloadName::Heavy)
        .collect();
    let top = heavy
        .iter()
        .filter(|r| r.messages > 0)
        .map(|r| r.clients)
        .max()?;
    let at_top = heavy.iter().filter(|r| r.clients == top);
    let (served, unserved): (Vec<&&Row>, Vec<&&Row>) = at_top.partition(|r| r.messages > 0);
    let bars = (served.iter())
        .map(|r| {
            let name = match r.strategy.as_str() {
                "baseline" => "baseline (echoes, no calc)".to_owned(),
                name => name.to_owned(),
            };
            (name, [r.p99_us / 1000.0, 0.0])
        })
        .collect();
    let mut chart = charts::stacked_bars(
        format!("Heavy workload: p99 of the cheap clients ({top} calc clients)"),
        heavy_caption(page.settings, top),
        "p99 latency of the cheap clients, ms".into(),
        ["p99", ""],
        bars,
    );
    if !unserved.is_empty() {
        let names: Vec<&str> = unserved.iter().map(|r| r.strategy.as_str()).collect();
        chart.note = format!("No cheap client served, so no bar: {}.", names.join(", "));
    }
    Some(chart)
}

/// What the heavy rows ran: calc mode whatever `--mode` was, a short sum from the
/// cheap clients and a long big-number line from the heavy ones.
fn heavy_caption(settings: &Settings, clients: usize) -> String {
    let sum = loadgen::load_line("calc", settings.size).map_or(0, |line| line.len());
    let slow = crate::measure::slow_calc_line().len();
    let heavy = settings.heavy_clients.min(clients);
    format!(
        "calc mode: {} cheap clients send a {sum}-byte sum, {heavy} a {} KB big-number \
         line; {} s windows, {} CPUs, {} build",
        clients - heavy,
        (slow as f64 / 1000.0).round(),
        settings.duration_s,
        settings.cpus,
        settings.build
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The heavy chart has a bar for each model that served a cheap client, at the
    /// highest client count; the baseline's says it only echoes, and a model that
    /// served no cheap client is named under the title rather than left out unsaid.
    #[test]
    fn heavy_chart_names_the_floor_and_the_unserved() {
        let row = |strategy: &str, clients: usize, messages: u64, p99_us: f64| Row {
            strategy: strategy.into(),
            workload: WorkloadName::Heavy,
            clients,
            messages,
            p99_us,
            ..Row::default()
        };
        let rows = [
            row("baseline", 10, 900, 100.0),
            row("event-loop", 10, 400, 23_000.0),
            row("single-client", 10, 0, 0.0),
            row("event-loop", 4, 300, 9_000.0),
        ];
        let settings = crate::row::test_settings();
        let manifest = crate::manifest::collect("release");
        let page = Page {
            manifest: &manifest,
            settings: &settings,
            rows: &rows,
            memory: &[],
            sweeps: &[],
            report: "",
        };
        let chart = heavy(&page).unwrap();
        assert!(chart.title.contains("(10 calc clients)"), "{}", chart.title);
        assert!(
            chart.caption.starts_with(
                "calc mode: 8 cheap clients send a 63-byte sum, 2 a 44 KB big-number line"
            ),
            "{}",
            chart.caption
        );
        assert!(!chart.caption.contains("echo"), "{}", chart.caption);
        assert_eq!(
            chart.note,
            "No cheap client served, so no bar: single-client."
        );
        let bars = chart.bars.unwrap().bars;
        let names: Vec<&str> = bars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["baseline (echoes, no calc)", "event-loop"]);
        assert_eq!(bars[1].1[0], 23.0);
    }

    /// The latency chart draws each model's clean steps as a line of medians with
    /// whiskers, its disturbed steps hollow and apart from the line, and rings the knee
    /// the rule found; under it, the rule and each model's knee and break in words.
    #[test]
    fn latency_chart_draws_medians_whiskers_hollow_steps_and_the_knee() {
        use crate::sweep::tests::{repeat, step};
        let disturbed = Step::of(
            55_000.0,
            (0..3)
                .map(|_| repeat(55_000.0, 30_000.0, 60_000.0, true))
                .collect(),
        );
        let steps = vec![
            step(10_000.0, [(1.0, 150.0), (1.0, 180.0), (1.0, 160.0)]),
            step(40_000.0, [(1.0, 170.0), (1.0, 220.0), (1.0, 190.0)]),
            disturbed,
            step(70_000.0, [(0.99, 400.0), (1.0, 650.0), (0.99, 500.0)]),
            step(
                120_000.0,
                [(0.83, 80_000.0), (0.84, 95_000.0), (0.82, 70_000.0)],
            ),
        ];
        let found = crate::sweep::knee(&steps, 100_000.0, None);
        let sweep = Sweep {
            strategy: "event-loop".into(),
            clients: 10,
            closed_loop_max_per_s: 100_000.0,
            slo_us: None,
            repeats: 3,
            closed_loop: crate::row::test_row("event-loop", 10, 5.0),
            steps,
            floor_p99_us: found.floor_p99_us,
            knee: found.knee,
            broke_at: found.broke_at,
            failed: None,
        };
        let settings = crate::row::test_settings();
        let manifest = crate::manifest::collect("release");
        let page = Page {
            manifest: &manifest,
            settings: &settings,
            rows: &[],
            memory: &[],
            sweeps: std::slice::from_ref(&sweep),
            report: "",
        };
        let chart = latency_curves(&page).unwrap();
        let line = &chart.series[0];
        let xs: Vec<f64> = line.points.iter().map(|p| p.0).collect();
        assert_eq!(xs, [10_000.0, 40_000.0, 70_000.0, 120_000.0]);
        assert_eq!(line.hollow, [(55_000.0, 60_000.0)]);
        assert_eq!(line.whiskers[3], (70_000.0, 400.0, 650.0));
        assert_eq!(line.marks, [(70_000.0, 500.0)]);
        assert!(
            chart.note.contains(crate::sweep::KNEE_RULE),
            "{}",
            chart.note
        );
        assert!(
            chart
                .note
                .contains("event-loop: knee 70.0k/s (70% of its max); broke at 120.0k/s"),
            "{}",
            chart.note
        );
        assert_eq!(chart.legend, Legend::Column);
        let html = render(&page).unwrap();
        assert!(html.contains("<figcaption>Each point is the median p99 of 3 repeats"));
    }

    /// Text from a server's error or a command line cannot break the page.
    #[test]
    fn escaping() {
        assert_eq!(escape("<b>&\"x\""), "&lt;b&gt;&amp;&quot;x&quot;");
    }
}
