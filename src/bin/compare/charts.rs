//! Charts a teacher could put on a slide, drawn with `plotters` as SVG text: one line
//! per model in colours that read on white (no yellow), counts labelled as counts,
//! log axes that span whole decades so they carry more than one tick, and a caption
//! that says what was run.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::model::{Row, Settings};

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
}

impl Axis {
    fn log(self) -> bool {
        matches!(self, Axis::LogCount | Axis::LogMicros)
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
        }
    }

    /// The range drawn for values in `lo..=hi`.
    fn range(self, lo: f64, hi: f64) -> (f64, f64) {
        match self.log() {
            true => decades(lo, hi),
            false => (0.0, if hi > 0.0 { hi * 1.1 } else { 1.0 }),
        }
    }
}

/// `1.5` as `1.5`, `2.0` as `2`.
fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// The whole decades around `lo..=hi` (positive values): at least one decade, so a log
/// axis always has a tick at each end.
pub fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let lo = if lo > 0.0 && lo.is_finite() { lo } else { 1.0 };
    let hi = if hi >= lo && hi.is_finite() { hi } else { lo };
    let bottom = 10f64.powf(lo.log10().floor());
    let mut top = 10f64.powf(hi.log10().ceil());
    if top <= bottom {
        top = bottom * 10.0;
    }
    (bottom, top)
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
    }
}

/// One line on a chart.
pub struct Series {
    /// The model's name, in the legend.
    pub name: String,
    /// Its colour's index ([`colour`]).
    pub colour: usize,
    /// The points, in x order.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed and without markers (a fitted line), and left out of the legend.
    pub fitted: bool,
    /// Points marked with a larger ring (the knee of a curve).
    pub marks: Vec<(f64, f64)>,
}

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
        let values = |f: fn(&(f64, f64)) -> f64| {
            let all = self.series.iter().flat_map(|s| s.points.iter().map(f));
            let positive: Vec<f64> = all.filter(|v| v.is_finite() && *v > 0.0).collect();
            let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = positive.iter().copied().fold(0.0, f64::max);
            (lo, hi)
        };
        let (xl, xh) = values(|p| p.0);
        let (yl, yh) = values(|p| p.1);
        let (x0, x1) = self.x.1.range(xl, xh);
        let (y0, y1) = self.y.1.range(yl, yh);
        let mut builder = ChartBuilder::on(&body);
        builder
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(78);
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
                for s in &self.series {
                    let c = colour(s.colour);
                    let pts: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .copied()
                        .filter(|&(x, y)| (!xa.log() || x > 0.0) && (!ya.log() || y > 0.0))
                        .collect();
                    if s.fitted {
                        chart.draw_series(DashedLineSeries::new(
                            pts.clone(),
                            6,
                            4,
                            c.stroke_width(2),
                        ))?;
                        continue;
                    }
                    chart
                        .draw_series(LineSeries::new(pts.clone(), c.stroke_width(3)))?
                        .label(s.name.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 22, y)], c.stroke_width(3))
                        });
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
                    chart.draw_series(
                        s.marks
                            .iter()
                            .map(|&p| Circle::new(p, 9, c.stroke_width(3))),
                    )?;
                }
                // Latency rises with load: its lower right is where the lines are not.
                let corner = match (xa, ya) {
                    (Axis::Rate, Axis::LogMicros) => SeriesLabelPosition::LowerRight,
                    _ => SeriesLabelPosition::UpperLeft,
                };
                chart
                    .configure_series_labels()
                    .position(corner)
                    .label_font(("sans-serif", 15))
                    .background_style(WHITE.mix(0.9))
                    .border_style(RGBColor(160, 160, 160))
                    .draw()?;
            }};
        }
        match (self.x.1.log(), self.y.1.log()) {
            (true, true) => draw!((x0..x1).log_scale(), (y0..y1).log_scale()),
            (true, false) => draw!((x0..x1).log_scale(), y0..y1),
            (false, true) => draw!(x0..x1, (y0..y1).log_scale()),
            (false, false) => draw!(x0..x1, y0..y1),
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
        let mut chart = ChartBuilder::on(body)
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
        for (part, shade) in bars.parts.iter().zip(shades) {
            if part.is_empty() {
                continue;
            }
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
                .label(part.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 16, y + 6)], shade.filled())
                });
        }
        for (i, (name, [a, b])) in bars.bars.iter().enumerate() {
            let y = (bars.bars.len() - 1 - i) as f64;
            let (lo, hi) = (y - 0.32, y + 0.32);
            chart.draw_series([
                Rectangle::new([(0.0, lo), (*a, hi)], shades[0].filled()),
                Rectangle::new([(*a, lo), (a + b, hi)], shades[1].filled()),
            ])?;
            let (px, py) = chart.backend_coord(&(0.0, y));
            let (bx, by) = body.get_base_pixel();
            let style = TextStyle::from(("sans-serif", 15).into_font())
                .pos(Pos::new(HPos::Right, VPos::Center));
            body.draw(&Text::new(name.clone(), (px - bx - 8, py - by), style))?;
            let total = xa.label(a + b);
            let style = TextStyle::from(("sans-serif", 13).into_font())
                .pos(Pos::new(HPos::Left, VPos::Center));
            chart.draw_series([Text::new(total, (a + b + x1 * 0.01, y), style)])?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(160, 160, 160))
            .draw()?;
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

/// Throughput and p99 against ping-pong clients, a line per model.
pub fn pingpong(settings: &Settings, ping: &[&Row]) -> [Chart; 2] {
    let names = names(ping.iter().copied());
    let series = |metric: fn(&Row) -> f64| -> Vec<Series> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut points: Vec<(f64, f64)> = ping
                    .iter()
                    .filter(|r| &r.strategy == name)
                    .map(|r| (r.clients as f64, metric(r)))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series {
                    name: name.clone(),
                    colour: i,
                    points,
                    fitted: false,
                    marks: Vec::new(),
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
        },
        Chart {
            title: "p99 latency, ping-pong".into(),
            caption: caption(settings),
            x: ("clients".into(), Axis::LogCount),
            y: ("p99 latency".into(), Axis::LogMicros),
            series: series(|r| r.p99_us),
            bars: None,
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
                fitted: false,
                marks: vec![],
            }],
            bars: None,
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
}
