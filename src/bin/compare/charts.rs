//! Charts a teacher could put on a slide, drawn with `plotters` as SVG text: one line
//! per model in colours that read on white (no yellow), counts labelled as counts,
//! log axes that span whole decades so they carry more than one tick, and a caption
//! that says what was run.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::row::{Row, Settings};

/// Colour-blind-safe colours that all read on white (Okabe and Ito's, less the
/// yellow, then a few darker ones); a model keeps its colour in every chart.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(0, 0, 0),       // black
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(140, 86, 75),   // brown
    RGBColor(127, 127, 127), // grey
    RGBColor(148, 103, 189), // violet
];

/// The colour of the `i`th model.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// How an axis is scaled and how its ticks are labelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// A count (connections), linear from zero: `1000`.
    Count,
    /// A plain number, linear from zero.
    Linear,
    /// A count (clients, connections) on a log scale over whole decades.
    LogCount,
    /// A rate per second, linear from zero: `50k`.
    Rate,
    /// A latency in microseconds on a log scale over whole decades: `100µs`, `1ms`.
    LogMicros,
    /// Mebibytes on a log scale over whole decades: `1MiB`, `10MiB`.
    LogMiB,
}

impl Axis {
    fn log(self) -> bool {
        matches!(self, Axis::LogCount | Axis::LogMicros | Axis::LogMiB)
    }

    /// A tick label.
    pub fn label(self, v: f64) -> String {
        match self {
            Axis::Count | Axis::LogCount => format!("{}", v.round() as i64),
            Axis::Linear => trim(v),
            Axis::Rate => crate::units::si(v),
            Axis::LogMicros if v >= 1e6 => format!("{}s", trim(v / 1e6)),
            Axis::LogMicros if v >= 1e3 => format!("{}ms", trim(v / 1e3)),
            Axis::LogMicros => format!("{}µs", trim(v)),
            Axis::LogMiB if v < 1.0 => format!("{}KiB", trim(v * 1024.0)),
            Axis::LogMiB => format!("{}MiB", trim(v)),
        }
    }

    /// The range drawn for values in `lo..=hi`.
    fn range(self, lo: f64, hi: f64) -> (f64, f64) {
        match self {
            // Counts are where the points sit (10, 100): a little room on either side
            // keeps the markers off the frame.
            Axis::LogCount => {
                let (lo, hi) = positive_or_one(lo, hi);
                (lo / COUNT_PAD, hi * COUNT_PAD)
            }
            // Memory from the decade below its lowest line (plotters labels a log
            // axis from a power of ten up), to a little above its highest: a whole
            // decade on top would squeeze the lean models into a sliver.
            Axis::LogMiB => {
                let (lo, hi) = positive_or_one(lo, hi);
                (decades(lo, hi).0, hi * COUNT_PAD)
            }
            _ if self.log() => decades(lo, hi),
            _ => (0.0, if hi > 0.0 { hi * 1.1 } else { 1.0 }),
        }
    }
}

/// `1.5` as `1.5`, `2.0` as `2`.
fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// How far a log count axis reaches past its lowest and highest count, as a factor.
const COUNT_PAD: f64 = 1.35;

/// `lo..=hi` made positive and ordered (1 where there is nothing to show).
fn positive_or_one(lo: f64, hi: f64) -> (f64, f64) {
    let lo = if lo > 0.0 && lo.is_finite() { lo } else { 1.0 };
    let hi = if hi >= lo && hi.is_finite() { hi } else { lo };
    (lo, hi)
}

/// The whole decades around `lo..=hi` (positive values): at least one decade, so a log
/// axis always has a tick at each end.
pub fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = positive_or_one(lo, hi);
    let bottom = 10f64.powf(lo.log10().floor());
    let mut top = 10f64.powf(hi.log10().ceil());
    if top <= bottom {
        top = bottom * 10.0;
    }
    (bottom, top)
}

/// The lowest and highest of the positive, finite `values`.
fn positive_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let positive: Vec<f64> = values.filter(|v| v.is_finite() && *v > 0.0).collect();
    let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = positive.iter().copied().fold(0.0, f64::max);
    (lo, hi)
}

/// Height of one name in a legend, in pixels.
const LEGEND_ROW: i32 = 20;

/// Moves the sorted positions `at` apart so that no two are closer than `gap`, each as
/// little as it can, all within `0..=bottom`: names of lines that end together.
pub fn spread_apart(at: &mut [(usize, i32)], gap: i32, bottom: i32) {
    for i in 1..at.len() {
        at[i].1 = at[i].1.max(at[i - 1].1 + gap);
    }
    if let Some(last) = at.last_mut() {
        last.1 = last.1.min(bottom);
    }
    for i in (0..at.len().saturating_sub(1)).rev() {
        at[i].1 = at[i].1.min(at[i + 1].1 - gap);
    }
    if let Some(first) = at.first() {
        let shift = (gap / 2 - first.1).max(0);
        at.iter_mut().for_each(|e| e.1 += shift);
    }
}

/// Horizontal stacked bars: one bar per model, one segment per part.
pub struct Bars {
    /// What each part is, in the legend (an empty name: a part with no legend).
    pub parts: [String; 2],
    /// (model, [part values]).
    pub bars: Vec<(String, [f64; 2])>,
}

/// Stacked horizontal bars of two parts per model, the model's name beside each bar.
pub fn stacked_bars(
    title: String,
    caption: String,
    value: String,
    parts: [&str; 2],
    bars: Vec<(String, [f64; 2])>,
) -> Chart {
    Chart {
        title,
        caption,
        x: (value, Axis::Linear),
        y: (String::new(), Axis::Linear),
        series: Vec::new(),
        bars: Some(Bars {
            parts: parts.map(String::from),
            bars,
        }),
        legend: Legend::Column,
        note: String::new(),
    }
}

/// One line on a chart.
#[derive(Default)]
pub struct Series {
    /// The model's name, in the legend.
    pub name: String,
    /// Its colour's index ([`colour`]).
    pub colour: usize,
    /// The points, in x order, drawn as filled markers; joined by a line when there
    /// are [`MIN_LINE`] or more of them (through two points a line only suggests a
    /// shape that was never measured).
    pub points: Vec<(f64, f64)>,
    /// Points drawn as hollow markers and not joined: measured, but not to be trusted
    /// (a disturbed step).
    pub hollow: Vec<(f64, f64)>,
    /// Vertical whiskers `(x, low, high)`: the spread of the repeats behind a point.
    pub whiskers: Vec<(f64, f64, f64)>,
    /// Drawn dashed and without markers (a fitted line), and left out of the legend.
    pub fitted: bool,
    /// Points marked with a larger ring (the knee of a curve).
    pub marks: Vec<(f64, f64)>,
}

/// Fewest points a series is drawn through as a line; fewer are markers only.
pub const MIN_LINE: usize = 3;

/// Where the names of the lines go. Always beside the plot, never over it, so that no
/// name hides a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Legend {
    /// A column to the right of the plot, in the order of the series.
    Column,
    /// To the right of the plot, each name at the height where its line ends, pushed
    /// apart only as far as needed to be read: lines that end close together are
    /// told apart by name, not by shades of colour.
    AtEnds,
}

/// Width of the legend beside a plot, in pixels.
const LEGEND_WIDTH: u32 = 190;

/// A chart: title, axes and lines.
pub struct Chart {
    /// What it shows, above it.
    pub title: String,
    /// What was run, in small type under the title.
    pub caption: String,
    /// The x axis: its description and scale.
    pub x: (String, Axis),
    /// The y axis.
    pub y: (String, Axis),
    /// The lines.
    pub series: Vec<Series>,
    /// Or bars instead of lines.
    pub bars: Option<Bars>,
    /// Where the names of the lines go.
    pub legend: Legend,
    /// What the chart shows, in words, for under it (the page puts it there).
    pub note: String,
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

impl Chart {
    /// The chart as an SVG document of `width` × `height` pixels.
    pub fn svg(&self, width: u32, height: u32) -> Result<String, String> {
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, (width, height)).into_drawing_area();
            self.draw(&root)
                .map_err(|e| format!("cannot draw {}: {e}", self.title))?;
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(text)
    }

    fn draw(&self, root: &DrawingArea<SVGBackend, Shift>) -> DrawResult {
        root.fill(&WHITE)?;
        let (top, body) = root.split_vertically(58);
        top.draw(&Text::new(
            self.title.clone(),
            (16, 8),
            ("sans-serif", 22).into_font().style(FontStyle::Bold),
        ))?;
        top.draw(&Text::new(
            self.caption.clone(),
            (16, 36),
            ("sans-serif", 14).into_font().color(&RGBColor(80, 80, 80)),
        ))?;
        if let Some(bars) = &self.bars {
            return self.draw_bars(&body, bars);
        }
        let xs = self.series.iter().flat_map(|s| {
            let points = s.points.iter().chain(&s.hollow).map(|p| p.0);
            points.chain(s.whiskers.iter().map(|w| w.0))
        });
        let ys = self.series.iter().flat_map(|s| {
            let points = s.points.iter().chain(&s.hollow).map(|p| p.1);
            points.chain(s.whiskers.iter().flat_map(|w| [w.1, w.2]))
        });
        let (xl, xh) = positive_range(xs);
        let (yl, yh) = positive_range(ys);
        let (x0, x1) = self.x.1.range(xl, xh);
        let (y0, y1) = self.y.1.range(yl, yh);
        let (width, _) = body.dim_in_pixel();
        let (plot, side) = body.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
        let mut builder = ChartBuilder::on(&plot);
        builder
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(78);
        // Where each named line ends, in pixels, for its name in the legend.
        let mut ends: Vec<(usize, i32)> = Vec::new();
        let plot_top;
        // Each axis scale is its own type in plotters: the same drawing, four times.
        macro_rules! draw {
            ($x:expr, $y:expr) => {{
                let mut chart = builder.build_cartesian_2d($x, $y)?;
                let (xa, ya) = (self.x.1, self.y.1);
                chart
                    .configure_mesh()
                    .x_desc(self.x.0.as_str())
                    .y_desc(self.y.0.as_str())
                    .x_label_formatter(&|v| xa.label(*v))
                    .y_label_formatter(&|v| ya.label(*v))
                    .label_style(("sans-serif", 15))
                    .axis_desc_style(("sans-serif", 16))
                    .light_line_style(RGBColor(235, 235, 235))
                    .draw()?;
                plot_top = chart.plotting_area().get_base_pixel().1;
                let drawn = |&(x, y): &(f64, f64)| (!xa.log() || x > 0.0) && (!ya.log() || y > 0.0);
                let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
                for (i, s) in self.series.iter().enumerate() {
                    let c = colour(s.colour);
                    let pts: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .copied()
                        .filter(finite)
                        .filter(drawn)
                        .collect();
                    if s.fitted {
                        chart.draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(2)))?;
                        continue;
                    }
                    for &(x, lo, hi) in &s.whiskers {
                        if !(finite(&(x, lo)) && finite(&(x, hi)) && drawn(&(x, lo))) {
                            continue;
                        }
                        let cap = |y: f64| {
                            EmptyElement::at((x, y))
                                + PathElement::new(vec![(-5, 0), (5, 0)], c.stroke_width(2))
                        };
                        chart.draw_series([PathElement::new(
                            vec![(x, lo), (x, hi)],
                            c.stroke_width(2),
                        )])?;
                        chart.draw_series([cap(lo), cap(hi)])?;
                    }
                    if pts.len() >= MIN_LINE {
                        chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(3)))?;
                    }
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, c.filled())))?;
                    let hollow: Vec<(f64, f64)> = s
                        .hollow
                        .iter()
                        .copied()
                        .filter(finite)
                        .filter(drawn)
                        .collect();
                    chart.draw_series(hollow.iter().map(|&p| Circle::new(p, 5, WHITE.filled())))?;
                    chart.draw_series(
                        hollow.iter().map(|&p| Circle::new(p, 5, c.stroke_width(2))),
                    )?;
                    chart.draw_series(
                        s.marks
                            .iter()
                            .filter(|p| finite(p) && drawn(p))
                            .map(|&p| Circle::new(p, 10, c.stroke_width(3))),
                    )?;
                    let last = pts.iter().chain(&hollow).max_by(|a, b| a.0.total_cmp(&b.0));
                    if let Some(&p) = last {
                        ends.push((i, chart.backend_coord(&p).1));
                    }
                }
            }};
        }
        match (self.x.1.log(), self.y.1.log()) {
            (true, true) => draw!((x0..x1).log_scale(), (y0..y1).log_scale()),
            (true, false) => draw!((x0..x1).log_scale(), y0..y1),
            (false, true) => draw!(x0..x1, (y0..y1).log_scale()),
            (false, false) => draw!(x0..x1, y0..y1),
        }
        self.draw_legend(&side, plot_top, &ends)
    }

    /// The names of the lines beside the plot: a sample of each line and its name.
    fn draw_legend(
        &self,
        side: &DrawingArea<SVGBackend, Shift>,
        plot_top: i32,
        ends: &[(usize, i32)],
    ) -> DrawResult {
        let base = side.get_base_pixel().1;
        let (_, height) = side.dim_in_pixel();
        let mut entries: Vec<(usize, i32)> = match self.legend {
            Legend::Column => (self.series.iter().enumerate())
                .filter(|(_, s)| !s.fitted)
                .enumerate()
                .map(|(row, (i, _))| (i, plot_top - base + 8 + row as i32 * LEGEND_ROW))
                .collect(),
            Legend::AtEnds => {
                let mut at: Vec<(usize, i32)> = ends.iter().map(|&(i, y)| (i, y - base)).collect();
                at.sort_by_key(|e| e.1);
                spread_apart(&mut at, LEGEND_ROW, height as i32 - 56);
                at
            }
        };
        entries.retain(|&(i, _)| !self.series[i].fitted);
        for (i, y) in entries {
            let s = &self.series[i];
            let c = colour(s.colour);
            if s.points.len() >= MIN_LINE {
                side.draw(&PathElement::new(vec![(4, y), (30, y)], c.stroke_width(3)))?;
            }
            side.draw(&Circle::new((17, y), 5, c.filled()))?;
            let style = TextStyle::from(("sans-serif", 15).into_font())
                .pos(Pos::new(HPos::Left, VPos::Center));
            side.draw(&Text::new(s.name.clone(), (36, y), style))?;
        }
        Ok(())
    }

    fn draw_bars(&self, body: &DrawingArea<SVGBackend, Shift>, bars: &Bars) -> DrawResult {
        let n = bars.bars.len().max(1) as f64;
        let top = bars
            .bars
            .iter()
            .map(|(_, [a, b])| a + b)
            .fold(0.0, f64::max);
        let x1 = if top > 0.0 { top * 1.15 } else { 1.0 };
        let xa = self.x.1;
        // The parts' names beside the plot, as for lines; one part needs no legend.
        let named = bars.parts.iter().filter(|p| !p.is_empty()).count();
        let (width, _) = body.dim_in_pixel();
        let (plot, side) = match named > 1 {
            true => body.split_horizontally(width.saturating_sub(LEGEND_WIDTH / 2)),
            false => body.split_horizontally(width),
        };
        let mut chart = ChartBuilder::on(&plot)
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(170)
            .build_cartesian_2d(0.0..x1, -0.6..(n - 0.4))?;
        chart
            .configure_mesh()
            .x_desc(self.x.0.as_str())
            .x_label_formatter(&|v| xa.label(*v))
            .y_label_formatter(&|_| String::new())
            .disable_y_mesh()
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        let shades = [colour(0), colour(1)];
        if named > 1 {
            let top = chart.plotting_area().get_base_pixel().1 - side.get_base_pixel().1;
            for (row, (part, shade)) in bars.parts.iter().zip(shades).enumerate() {
                let y = top + 8 + row as i32 * LEGEND_ROW;
                side.draw(&Rectangle::new([(4, y - 6), (20, y + 6)], shade.filled()))?;
                let style = TextStyle::from(("sans-serif", 15).into_font())
                    .pos(Pos::new(HPos::Left, VPos::Center));
                side.draw(&Text::new(part.clone(), (26, y), style))?;
            }
        }
        for (i, (name, [a, b])) in bars.bars.iter().enumerate() {
            let y = (bars.bars.len() - 1 - i) as f64;
            let (lo, hi) = (y - 0.32, y + 0.32);
            chart.draw_series([
                Rectangle::new([(0.0, lo), (*a, hi)], shades[0].filled()),
                Rectangle::new([(*a, lo), (a + b, hi)], shades[1].filled()),
            ])?;
            let (px, py) = chart.backend_coord(&(0.0, y));
            let (bx, by) = plot.get_base_pixel();
            let style = TextStyle::from(("sans-serif", 15).into_font())
                .pos(Pos::new(HPos::Right, VPos::Center));
            plot.draw(&Text::new(name.clone(), (px - bx - 8, py - by), style))?;
            let total = xa.label(a + b);
            let style = TextStyle::from(("sans-serif", 13).into_font())
                .pos(Pos::new(HPos::Left, VPos::Center));
            chart.draw_series([Text::new(total, (a + b + x1 * 0.01, y), style)])?;
        }
        Ok(())
    }
}

/// What was run, for a chart's caption.
pub fn caption(settings: &Settings) -> String {
    format!(
        "{} mode, {}-byte lines, {} s windows, {} CPUs, {} build",
        settings.mode, settings.size, settings.duration_s, settings.cpus, settings.build
    )
}

/// The models in the order they first appear, for stable colours.
pub fn names<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        if !names.contains(&r.strategy) {
            names.push(r.strategy.clone());
        }
    }
    names
}

/// How far apart, in decades, the markers of neighbouring models are set at one count.
const DODGE: f64 = 0.012;

/// Throughput and p99 against ping-pong clients, a line per model.
pub fn pingpong(settings: &Settings, ping: &[&Row]) -> [Chart; 2] {
    let names = names(ping.iter().copied());
    // Where no model has a curve, the markers of one client count would sit on top of
    // each other: each model's are set a little apart, in the same order at every count.
    let curves = names
        .iter()
        .any(|n| ping.iter().filter(|r| &r.strategy == n).count() >= MIN_LINE);
    let dodge = |i: usize| match curves {
        true => 1.0,
        false => 10f64.powf(DODGE * (i as f64 - (names.len() as f64 - 1.0) / 2.0)),
    };
    let series = |metric: fn(&Row) -> f64| -> Vec<Series> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut points: Vec<(f64, f64)> = ping
                    .iter()
                    .filter(|r| &r.strategy == name)
                    .map(|r| (r.clients as f64 * dodge(i), metric(r)))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series {
                    name: name.clone(),
                    colour: i,
                    points,
                    ..Series::default()
                }
            })
            .collect()
    };
    [
        Chart {
            title: "Throughput, ping-pong".into(),
            caption: caption(settings),
            x: ("clients".into(), Axis::LogCount),
            y: ("messages per second".into(), Axis::Rate),
            series: series(|r| r.msgs_per_s),
            bars: None,
            legend: Legend::Column,
            note: String::new(),
        },
        Chart {
            title: "p99 latency, ping-pong".into(),
            caption: caption(settings),
            x: ("clients".into(), Axis::LogCount),
            y: ("p99 latency".into(), Axis::LogMicros),
            series: series(|r| r.p99_us),
            bars: None,
            legend: Legend::Column,
            note: String::new(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log ranges are widened to whole decades, never to less than one.
    #[test]
    fn log_axes_span_whole_decades() {
        assert_eq!(decades(1.0, 100.0), (1.0, 100.0));
        assert_eq!(decades(150.0, 420.0), (100.0, 1000.0));
        assert_eq!(decades(100.0, 100.0), (100.0, 1000.0));
        let (lo, hi) = decades(0.05, 0.3);
        assert!((lo - 0.01).abs() < 1e-12 && (hi - 1.0).abs() < 1e-12);
    }

    /// Counts are labelled as counts, latencies in their unit.
    #[test]
    fn labels() {
        assert_eq!(Axis::LogCount.label(10.0), "10");
        assert_eq!(Axis::LogMicros.label(100.0), "100µs");
        assert_eq!(Axis::LogMicros.label(1000.0), "1ms");
        assert_eq!(Axis::LogMicros.label(2_500_000.0), "2.5s");
    }

    /// No colour of the palette is pale yellow: each keeps contrast on white.
    #[test]
    fn no_colour_is_faint_on_white() {
        for RGBColor(r, g, b) in PALETTE {
            // Relative luminance (sRGB weights, roughly): yellow is about 0.93.
            let lum = (0.2126 * r as f64 + 0.7152 * g as f64 + 0.0722 * b as f64) / 255.0;
            assert!(lum < 0.7, "({r}, {g}, {b}) is too light on white");
        }
    }

    /// A chart with a log y axis draws more than one tick label on it, integers on
    /// its count axis, and its caption.
    #[test]
    fn a_chart_renders_its_ticks_and_caption() {
        let chart = Chart {
            title: "p99".into(),
            caption: "echo mode, 64-byte lines".into(),
            x: ("clients".into(), Axis::LogCount),
            y: ("p99".into(), Axis::LogMicros),
            series: vec![Series {
                name: "event-loop".into(),
                colour: 0,
                points: vec![(1.0, 150.0), (10.0, 180.0), (100.0, 420.0)],
                ..Series::default()
            }],
            bars: None,
            legend: Legend::Column,
            note: String::new(),
        };
        let svg = chart.svg(800, 480).unwrap();
        // plotters writes each text element's content on a line of its own.
        let texts: Vec<&str> = svg.lines().map(str::trim).collect();
        assert!(texts.contains(&"echo mode, 64-byte lines"), "caption");
        for tick in ["100µs", "1ms", "1", "10", "100"] {
            assert!(texts.contains(&tick), "tick {tick} missing");
        }
        assert!(
            !texts.contains(&"1.0") && !texts.contains(&"10.0"),
            "float counts"
        );
    }

    /// The text elements of an SVG with their x position: plotters writes each text's
    /// content on the line after its `<text x=".." ..>`.
    fn texts(svg: &str) -> Vec<(f64, String)> {
        let lines: Vec<&str> = svg.lines().collect();
        (lines.windows(2))
            .filter(|w| w[0].trim_start().starts_with("<text"))
            .filter_map(|w| {
                let x = w[0].split("x=\"").nth(1)?.split('"').next()?.parse().ok()?;
                Some((x, w[1].trim().to_owned()))
            })
            .collect()
    }

    /// Polylines through three points or more: the lines drawn through data (legend
    /// samples, whiskers and caps have two).
    fn lines(svg: &str) -> usize {
        (svg.split("<polyline").skip(1))
            .filter_map(|p| p.split("points=\"").nth(1)?.split('"').next())
            .filter(|points| points.split_whitespace().count() >= 3)
            .count()
    }

    fn line_chart(series: Vec<Series>, legend: Legend) -> Chart {
        Chart {
            title: "t".into(),
            caption: "c".into(),
            x: ("x".into(), Axis::Rate),
            y: ("y".into(), Axis::LogMicros),
            series,
            bars: None,
            legend,
            note: String::new(),
        }
    }

    /// The names of the lines sit to the right of the plot, never over it; two
    /// measured points get markers and no line, three get a line; disturbed points
    /// are hollow (white inside) and whiskers are drawn.
    #[test]
    fn legend_beside_the_plot_and_lines_only_through_three_points() {
        let two = Series {
            name: "two-points".into(),
            points: vec![(10_000.0, 150.0), (20_000.0, 300.0)],
            ..Series::default()
        };
        let three = Series {
            name: "three-points".into(),
            colour: 1,
            points: vec![(10_000.0, 100.0), (20_000.0, 120.0), (30_000.0, 900.0)],
            hollow: vec![(40_000.0, 5_000.0)],
            whiskers: vec![(20_000.0, 90.0, 400.0)],
            ..Series::default()
        };
        let (width, height) = (860, 480);
        let svg = line_chart(vec![two], Legend::Column)
            .svg(width, height)
            .unwrap();
        assert_eq!(lines(&svg), 0, "a line through two points");
        let legend = texts(&svg)
            .into_iter()
            .find(|t| t.1 == "two-points")
            .unwrap();
        assert!(
            legend.0 > (width - LEGEND_WIDTH) as f64,
            "legend at x {}",
            legend.0
        );
        let svg = line_chart(vec![three], Legend::Column)
            .svg(width, height)
            .unwrap();
        assert_eq!(lines(&svg), 1, "one line, no more");
        assert!(svg.contains(r##"fill="#FFFFFF""##), "no hollow marker");
        // A whisker and its two caps, in the series' colour.
        let vermillion = r##"stroke="#D55E00""##;
        assert!(svg.matches(vermillion).count() >= 4, "{svg}");
    }

    /// Names placed where lines end are pushed apart just enough to be read, and kept
    /// within the chart.
    #[test]
    fn names_at_line_ends_do_not_overlap() {
        let mut at = vec![(0, 100), (1, 104), (2, 106), (3, 300)];
        spread_apart(&mut at, 20, 400);
        assert_eq!(at, [(0, 100), (1, 120), (2, 140), (3, 300)]);
        let mut low = vec![(0, 395), (1, 398)];
        spread_apart(&mut low, 20, 400);
        assert_eq!(low, [(0, 380), (1, 400)]);
        let mut high = vec![(0, -5), (1, 0)];
        spread_apart(&mut high, 20, 400);
        assert_eq!(high, [(0, 10), (1, 30)]);
    }
}
