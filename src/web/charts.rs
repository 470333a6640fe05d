//! Geometry of the server-drawn SVG charts; templates only place what is computed here.

use super::format;

/// Size of the plot area and its margins, in SVG units.
pub const WIDTH: f64 = 960.0;
pub const HEIGHT: f64 = 200.0;
pub const LEFT: f64 = 56.0;
pub const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;
const RIGHT: f64 = 8.0;

/// One axis label.
#[derive(Debug, Clone)]
pub struct Tick {
    pub pos: f64,
    pub label: String,
}

/// A point of the duration scatter plot.
#[derive(Debug, Clone)]
pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub href: String,
    pub title: String,
    pub error: bool,
}

/// A bar of a histogram.
#[derive(Debug, Clone)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub title: String,
    pub color: &'static str,
}

/// A line of a line chart.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub color: &'static str,
    /// SVG `points` attribute.
    pub points: String,
    /// Hover targets: (x, y, text).
    pub marks: Vec<(f64, f64, String)>,
}

/// The chart size for templates.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub width: f64,
    pub height: f64,
    /// x of the y axis.
    pub left: f64,
}

impl Default for Dims {
    fn default() -> Self {
        Dims {
            width: WIDTH,
            height: HEIGHT,
            left: LEFT,
        }
    }
}

/// A chart: its plot area, marks and axis ticks.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub dots: Vec<Dot>,
    pub bars: Vec<Bar>,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    /// Bottom of the plot area (y of the x axis).
    pub axis_y: f64,
    pub lines: Vec<Line>,
    /// x positions of vertical markers (e.g. the start of an error burst), with a label.
    pub markers: Vec<(f64, String)>,
    /// x positions of annotations (deploys, notes) in the window, with their text.
    pub annotations: Vec<(f64, String)>,
    /// The window's events (a deploy, the start of the errors, a recovery): each one's line
    /// x, where its short label starts (x, baseline y), the label and the full text. Labels
    /// that would touch one another (a long window puts a deploy and its errors a few units
    /// apart) go on lines below; one that would run off the right edge sits left of its line.
    pub events: Vec<(f64, f64, f64, &'static str, String)>,
    /// Shaded time spans (an alert's firing): x from, x to, and what they stand for.
    pub bands: Vec<(f64, f64, String)>,
    /// Horizontal lines (an alert rule's threshold): y and a label.
    pub thresholds: Vec<(f64, String)>,
    /// The plot area and what its corners stand for, for a script that turns a region
    /// dragged on a scatter plot back into times and durations (`None` for other charts).
    pub region: Option<PlotRegion>,
}

/// A scatter plot's area in SVG units and the times and durations at its edges.
#[derive(Debug, Clone, Copy)]
pub struct PlotRegion {
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    /// Unix ns at `left` and at `right`.
    pub start: i64,
    pub end: i64,
    /// Duration (ns) at `top`; 0 is at `bottom`.
    pub max: f64,
}

/// Colours for series that have no colour of their own.
pub const SERIES_COLORS: &[&str] = &[
    "#2f6fde", "#d92d20", "#12b76a", "#f79009", "#7a5af8", "#06aed4", "#ee46bc", "#667085",
];

/// A named, coloured series of (Unix ns, value) points.
pub type LineSeries = (String, &'static str, Vec<(i64, f64)>);

/// Time series as lines over `[start, end]`; `fmt` writes values with their unit.
pub fn lines(series: &[LineSeries], start: i64, end: i64, fmt: &dyn Fn(f64) -> String) -> Chart {
    lines_reaching(series, start, end, fmt, 0.0).0
}

/// An alert rule's values as lines with its `threshold` drawn across and the `firing` spans
/// (from, to or still firing, label) shaded; the value axis always reaches the threshold.
pub fn threshold_lines(
    series: &[LineSeries],
    threshold: f64,
    firing: &[(i64, Option<i64>, String)],
    start: i64,
    end: i64,
    fmt: &dyn Fn(f64) -> String,
) -> Chart {
    let (mut chart, top) = lines_reaching(series, start, end, fmt, threshold * 1.25);
    chart.thresholds = vec![(
        TOP + plot_h() * (1.0 - threshold / top),
        format!("threshold {}", fmt(threshold)),
    )];
    chart.bands = firing
        .iter()
        .map(|(from, to, label)| {
            (
                x_of(*from, start, end),
                x_of(to.unwrap_or(end), start, end),
                label.clone(),
            )
        })
        .collect();
    chart
}

/// [`lines`] with a value axis reaching at least `at_least`; also returns the axis' top.
fn lines_reaching(
    series: &[LineSeries],
    start: i64,
    end: i64,
    fmt: &dyn Fn(f64) -> String,
    at_least: f64,
) -> (Chart, f64) {
    let max = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(at_least.max(0.0), f64::max);
    let (max, ticks) = value_axis(max, 0.0);
    let y_of = |v: f64| TOP + plot_h() * (1.0 - v / max);
    let chart = Chart {
        lines: series
            .iter()
            .map(|(label, color, points)| Line {
                label: label.clone(),
                color,
                points: points
                    .iter()
                    .map(|(t, v)| format!("{:.1},{:.1}", x_of(*t, start, end), y_of(*v)))
                    .collect::<Vec<_>>()
                    .join(" "),
                marks: points
                    .iter()
                    .map(|(t, v)| {
                        (
                            x_of(*t, start, end),
                            y_of(*v),
                            format!("{label}: {} at {}", fmt(*v), format::clock(*t)),
                        )
                    })
                    .collect(),
            })
            .collect(),
        x_ticks: time_ticks(start, end),
        y_ticks: ticks
            .into_iter()
            .map(|v| Tick {
                pos: y_of(v),
                label: fmt(v),
            })
            .collect(),
        axis_y: TOP + plot_h(),
        ..Chart::default()
    };
    (chart, max)
}

/// Per-minute counts stacked per series, from `start`.
pub fn stacked(
    series: &[(String, &'static str, Vec<u64>)],
    start: i64,
    bucket_nano: i64,
    markers: &[usize],
) -> Chart {
    let n = series.iter().map(|s| s.2.len()).max().unwrap_or(0).max(1);
    let totals: Vec<u64> = (0..n)
        .map(|i| {
            series
                .iter()
                .map(|s| s.2.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let (max, ticks) = value_axis(totals.iter().copied().max().unwrap_or(0) as f64, 1.0);
    let w = plot_w() / n as f64;
    let mut bars = Vec::new();
    for i in 0..n {
        let mut y = TOP + plot_h();
        for (label, color, values) in series {
            let v = values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let h = plot_h() * v as f64 / max;
            y -= h;
            bars.push(Bar {
                x: LEFT + w * i as f64,
                y,
                w: (w - 1.0).max(1.0),
                h,
                title: format!(
                    "{label}: {v} at {}",
                    format::clock(start + bucket_nano * i as i64)
                ),
                color,
            });
        }
    }
    let end = start + bucket_nano * n as i64;
    Chart {
        bars,
        x_ticks: time_ticks(start, end),
        y_ticks: count_ticks(max, ticks),
        axis_y: TOP + plot_h(),
        markers: markers
            .iter()
            .map(|i| {
                (
                    LEFT + w * *i as f64,
                    format!(
                        "error burst starts {}",
                        format::clock(start + bucket_nano * *i as i64)
                    ),
                )
            })
            .collect(),
        ..Chart::default()
    }
}

/// `points` of a small sparkline (100×24) for per-minute values.
pub fn sparkline(values: &[u64]) -> String {
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = values.len().max(2) - 1;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                100.0 * i as f64 / n as f64,
                23.0 - 22.0 * *v as f64 / max
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn plot_w() -> f64 {
    WIDTH - LEFT - RIGHT
}

fn plot_h() -> f64 {
    HEIGHT - TOP - BOTTOM
}

/// Labels of a count axis up to `max`: 0, the middle when it is a whole number, the top.
/// A round step (1, 2 or 5 times a power of ten, at least `floor`) that cuts `max` into
/// about four parts.
fn round_step(max: f64, floor: f64) -> f64 {
    let rough = (max / 4.0).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    step.max(floor)
}

/// The top of a value axis holding `max` (a whole number of round steps above it) and its
/// ticks at every step from 0.
pub fn value_axis(max: f64, floor: f64) -> (f64, Vec<f64>) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let step = round_step(max, floor);
    let steps = (max / step).ceil().max(1.0) as usize;
    let top = step * steps as f64;
    (top, (0..=steps).map(|i| step * i as f64).collect())
}

/// Ticks of a count axis at `values` (from [`value_axis`]), whose top is `top`.
fn count_ticks(top: f64, values: Vec<f64>) -> Vec<Tick> {
    values
        .into_iter()
        .map(|v| Tick {
            pos: TOP + plot_h() * (1.0 - v / top),
            label: format!("{v}"),
        })
        .collect()
}

/// Time labels on whole minutes, hours or days across `[start, end]`: the step is the first
/// of the usual ones that gives at most six labels.
fn time_ticks(start: i64, end: i64) -> Vec<Tick> {
    const MINUTE: i64 = 60_000_000_000;
    const STEPS: [i64; 14] = [
        1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080,
    ];
    let span = (end - start).max(1);
    let step = STEPS
        .iter()
        .map(|m| m * MINUTE)
        .find(|s| span / s <= 6)
        .unwrap_or(span.max(MINUTE));
    let first = start.div_euclid(step) * step + if start.rem_euclid(step) == 0 { 0 } else { step };
    let label = |t: i64| {
        let at = chrono::DateTime::from_timestamp_nanos(t);
        if step >= 1440 * MINUTE {
            at.format("%b %d").to_string()
        } else {
            at.format("%H:%M").to_string()
        }
    };
    (0..)
        .map(|i| first + step * i)
        .take_while(|t| *t <= end)
        .map(|t| Tick {
            pos: x_of(t, start, end),
            label: label(t),
        })
        .collect()
}

/// x of time `t` on a chart spanning `[start, end]`.
pub fn x_of(t: i64, start: i64, end: i64) -> f64 {
    let span = (end - start).max(1) as f64;
    LEFT + plot_w() * ((t - start) as f64 / span).clamp(0.0, 1.0)
}

/// Trace durations over time; each dot links to its trace.
pub fn scatter(points: &[(i64, i64, String, String, bool)], start: i64, end: i64) -> Chart {
    let (max, ticks) = value_axis(points.iter().map(|p| p.1).max().unwrap_or(1) as f64, 1.0);
    let y_of = |d: i64| TOP + plot_h() * (1.0 - d as f64 / max);
    Chart {
        dots: points
            .iter()
            .map(|(t, d, href, title, error)| Dot {
                x: x_of(*t, start, end),
                y: y_of(*d),
                href: href.clone(),
                title: title.clone(),
                error: *error,
            })
            .collect(),
        bars: Vec::new(),
        x_ticks: time_ticks(start, end),
        y_ticks: ticks
            .into_iter()
            .map(|d| Tick {
                pos: y_of(d as i64),
                label: format::duration(d as i64),
            })
            .collect(),
        axis_y: TOP + plot_h(),
        region: Some(PlotRegion {
            left: LEFT,
            right: LEFT + plot_w(),
            top: TOP,
            bottom: TOP + plot_h(),
            start,
            end,
            max,
        }),
        ..Chart::default()
    }
}

/// Counts per equal time bucket starting at `start`.
pub fn histogram(counts: &[u64], start: i64, bucket_nano: i64) -> Chart {
    let (max, ticks) = value_axis(counts.iter().copied().max().unwrap_or(0) as f64, 1.0);
    let n = counts.len().max(1) as f64;
    let w = plot_w() / n;
    let end = start + bucket_nano * counts.len() as i64;
    Chart {
        bars: counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let h = plot_h() * *c as f64 / max;
                let t = start + bucket_nano * i as i64;
                Bar {
                    x: LEFT + w * i as f64,
                    y: TOP + plot_h() - h,
                    w: (w - 1.0).max(1.0),
                    h,
                    title: format!("{c} records from {}", format::clock(t)),
                    color: "var(--accent)",
                }
            })
            .collect(),
        x_ticks: time_ticks(start, end),
        y_ticks: count_ticks(max, ticks),
        axis_y: TOP + plot_h(),
        ..Chart::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_have_round_ticks() {
        assert_eq!(
            value_axis(2992.0, 0.0),
            (3000.0, vec![0.0, 1000.0, 2000.0, 3000.0])
        );
        assert_eq!(value_axis(4.0, 1.0), (4.0, vec![0.0, 1.0, 2.0, 3.0, 4.0]));
        assert_eq!(value_axis(1.0, 1.0), (1.0, vec![0.0, 1.0]));
        assert_eq!(value_axis(0.0, 1.0).0, 1.0);
        assert_eq!(
            value_axis(0.37, 0.0),
            (0.4, vec![0.0, 0.1, 0.2, 0.30000000000000004, 0.4])
        );
        // An hour starting 25 s past a minute: labels on whole 10 minutes.
        let start = 1_767_225_625_000_000_000;
        let labels: Vec<String> = time_ticks(start, start + 3_600_000_000_000)
            .into_iter()
            .map(|t| t.label)
            .collect();
        assert_eq!(
            labels,
            ["00:10", "00:20", "00:30", "00:40", "00:50", "01:00"]
        );
    }

    #[test]
    fn times_map_into_the_plot_and_never_out_of_it() {
        assert_eq!(x_of(0, 0, 100), LEFT);
        assert_eq!(x_of(100, 0, 100), LEFT + plot_w());
        assert_eq!(x_of(50, 0, 100), LEFT + plot_w() / 2.0);
        // Outside the window, a mark sits on the edge instead of outside the SVG.
        assert_eq!(x_of(-5, 0, 100), LEFT);
        assert_eq!(x_of(500, 0, 100), LEFT + plot_w());
        // An empty window does not divide by zero.
        assert!(x_of(7, 7, 7).is_finite());
    }

    #[test]
    fn histogram_bars_are_as_tall_as_their_counts() {
        let chart = histogram(&[0, 5, 10], 0, 60_000_000_000);
        assert_eq!(chart.bars.len(), 3);
        assert_eq!(chart.bars[0].h, 0.0);
        assert_eq!(
            chart.bars[2].h,
            plot_h(),
            "the largest count fills the plot"
        );
        assert_eq!(chart.bars[1].h, plot_h() / 2.0);
        assert!(
            chart.bars.windows(2).all(|b| b[0].x < b[1].x),
            "left to right"
        );
        assert!(chart.bars[1].title.starts_with("5 records from "));
        // Count labels are whole numbers only: 0, 5, 10.
        let labels: Vec<&str> = chart.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "5", "10"]);
        let odd = histogram(&[3], 0, 1);
        let labels: Vec<&str> = odd.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "1", "2", "3"], "whole steps, no 1.5 label");
    }

    #[test]
    fn a_sparkline_has_a_point_per_minute_and_peaks_at_the_top() {
        let points = sparkline(&[0, 4, 2]);
        let xy: Vec<(f64, f64)> = points
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(xy, [(0.0, 23.0), (50.0, 1.0), (100.0, 12.0)]);
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn lines_draw_each_series_with_its_colour() {
        let series: Vec<LineSeries> = vec![
            ("p50".into(), "#111111", vec![(0, 1.0), (10, 2.0)]),
            ("p99".into(), "#222222", vec![(0, 4.0)]),
        ];
        let chart = lines(&series, 0, 10, &|v| format!("{v} ms"));
        assert_eq!(chart.lines.len(), 2);
        assert_eq!(chart.lines[0].color, "#111111");
        assert_eq!(chart.lines[1].label, "p99");
        assert_eq!(chart.lines[0].marks.len(), 2, "a hover mark per point");
    }
}
