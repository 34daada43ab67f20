//! Line plots drawn here as SVG: canary against baseline over a rollout's looks. Pure; every
//! text in the SVG is a number or a fixed label, so it needs no escaping.

use std::fmt::Write;

/// One line: its label, its CSS colour and its points (x in ms, y a ratio 0..=1).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Series {
    pub label: &'static str,
    pub colour: &'static str,
    pub points: Vec<(u64, f64)>,
}

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 140.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 20.0;

/// An SVG of `series` on shared axes: x from the first to the last point (seconds from the
/// first), y from 0 to the largest value (at least 0.05, so a flat line stays readable).
pub(super) fn svg(title: &'static str, series: &[Series]) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((u64::MAX, 0), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.05_f64, f64::max)
        .min(1.0);
    let span = x1.saturating_sub(x0).max(1) as f64;
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - BOTTOM - 8.0;
    let at = |(x, y): (u64, f64)| {
        let px = LEFT + (x.saturating_sub(x0)) as f64 / span * plot_w;
        let py = 8.0 + plot_h - (y / y_max).clamp(0.0, 1.0) * plot_h;
        (px, py)
    };
    let mut out = axes(title, y_max, span);
    for (i, line) in series.iter().enumerate() {
        let points: Vec<String> = line
            .points
            .iter()
            .map(|p| {
                let (x, y) = at(*p);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{}\" \
             stroke-width=\"2\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"9\" fill=\"{}\">{}</text>",
            line.label,
            line.colour,
            points.join(" "),
            LEFT + 8.0 + 90.0 * i as f64,
            HEIGHT - 4.0,
            line.colour,
            line.label
        );
    }
    out.push_str("</svg>");
    out
}

/// The frame: the title, both axes, the largest y and the time span.
fn axes(title: &str, y_max: f64, span: f64) -> String {
    let plot_h = HEIGHT - BOTTOM - 8.0;
    let mut out = format!(
        "<svg class=\"plot\" role=\"img\" aria-label=\"{title}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    let _ = write!(
        out,
        "<text x=\"{LEFT}\" y=\"7\" font-size=\"9\">{title}</text>\
         <line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/>\
         <line x1=\"{LEFT}\" y1=\"8\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"#888\"/>\
         <text x=\"2\" y=\"14\" font-size=\"9\">{y_max:.2}</text>\
         <text x=\"2\" y=\"{}\" font-size=\"9\">0</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"end\">{:.0} s</text>",
        8.0 + plot_h,
        WIDTH - 8.0,
        8.0 + plot_h,
        8.0 + plot_h,
        8.0 + plot_h,
        WIDTH - 8.0,
        HEIGHT - 4.0,
        span / 1000.0,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_series_is_a_polyline_scaled_to_the_axes() {
        let canary = Series {
            label: "canary",
            colour: "#c00",
            points: vec![(1_000, 0.0), (2_000, 1.0)],
        };
        let baseline = Series {
            label: "baseline",
            colour: "#06c",
            points: vec![(1_000, 0.0), (2_000, 0.0)],
        };
        let svg = svg("5xx ratio", &[canary, baseline]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        // The canary rises from the x axis (y = 120) to the top (y = 8) across the width.
        assert!(svg.contains("points=\"44.0,120.0 552.0,8.0\""), "{svg}");
        assert!(svg.contains("points=\"44.0,120.0 552.0,120.0\""), "{svg}");
        assert!(svg.contains(">1 s</text>"), "{svg}");
    }

    #[test]
    fn no_points_is_still_a_drawing() {
        let svg = svg("slow share", &[]);
        assert!(svg.contains("slow share") && !svg.contains("<polyline"));
    }
}
