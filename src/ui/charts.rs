//! Charts as inline SVG, drawn on the server: a bar chart over time, a line chart of several
//! series over time, and horizontal bars for a breakdown. Colours are SVG attributes, not CSS,
//! so the content security policy needs no inline style.

use std::fmt::Write;

use super::html::{self, esc};

const W: f64 = 600.0;
const H: f64 = 180.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;

pub const BLUE: &str = "#2f6fde";
pub const RED: &str = "#d92d20";
pub const GREEN: &str = "#079455";
pub const ORANGE: &str = "#dc6803";

/// One series: label, colour, `(x, y)` points (x in epoch ms; `None` y is a gap).
pub struct Series<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub points: Vec<(i64, Option<f64>)>,
}

fn frame(id: &str, title: &str, inner: &str, legend: &str) -> String {
    format!(
        "<div class=\"chart\" id=\"{id}\"><h3>{}</h3><svg viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"{0}\" xmlns=\"http://www.w3.org/2000/svg\">{inner}</svg>{legend}</div>",
        esc(title)
    )
}

fn axes(out: &mut String, x0: i64, x1: i64, y_max: f64, fmt: &dyn Fn(f64) -> String) {
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b}\" stroke=\"#c5ccd8\"/>\
         <line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{W}\" y2=\"{b}\" stroke=\"#c5ccd8\"/>\
         <text x=\"{tx}\" y=\"{ty}\" font-size=\"10\" text-anchor=\"end\" fill=\"#5d6778\">{}</text>\
         <text x=\"{tx}\" y=\"{b}\" font-size=\"10\" text-anchor=\"end\" fill=\"#5d6778\">0</text>\
         <text x=\"{LEFT}\" y=\"{H}\" font-size=\"10\" fill=\"#5d6778\">{}</text>\
         <text x=\"{W}\" y=\"{H}\" font-size=\"10\" text-anchor=\"end\" fill=\"#5d6778\">{}</text>",
        esc(&fmt(y_max)),
        html::ts(x0).get(5..16).unwrap_or_default(),
        html::ts(x1).get(5..16).unwrap_or_default(),
        b = H - BOTTOM,
        tx = LEFT - 4.0,
        ty = TOP + 8.0,
    );
}

fn x_of(x: i64, x0: i64, x1: i64) -> f64 {
    let span = (x1 - x0).max(1) as f64;
    LEFT + (x - x0) as f64 / span * (W - LEFT - 4.0)
}

fn y_of(y: f64, max: f64) -> f64 {
    let plot = H - BOTTOM - TOP;
    H - BOTTOM - if max > 0.0 { y / max * plot } else { 0.0 }
}

/// Bars over time, one per `step_ms` bucket from `x0` to `x1`.
pub fn bars(
    id: &str,
    title: &str,
    points: &[(i64, f64)],
    (x0, x1, step_ms): (i64, i64, i64),
    color: &str,
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let max = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let mut inner = String::new();
    axes(&mut inner, x0, x1, max, fmt);
    let width = ((W - LEFT) * step_ms as f64 / (x1 - x0).max(1) as f64 - 1.0).max(1.0);
    for (x, y) in points {
        let (px, py) = (x_of(*x, x0, x1), y_of(*y, max));
        let _ = write!(
            inner,
            "<rect x=\"{px:.1}\" y=\"{py:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{color}\">\
             <title>{} · {}</title></rect>",
            (H - BOTTOM - py).max(0.0),
            html::ts(*x),
            esc(&fmt(*y))
        );
    }
    frame(id, title, &inner, "")
}

/// Lines over time.
pub fn lines(
    id: &str,
    title: &str,
    series: &[Series<'_>],
    (x0, x1): (i64, i64),
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .fold(0.0, f64::max);
    let mut inner = String::new();
    axes(&mut inner, x0, x1, max, fmt);
    let mut legend = String::from("<p class=\"hint\">");
    for s in series {
        let mut path = String::new();
        let mut dots = String::new();
        let mut pen_down = false;
        for (x, y) in &s.points {
            match y {
                Some(y) => {
                    let (px, py) = (x_of(*x, x0, x1), y_of(*y, max));
                    let cmd = if pen_down { 'L' } else { 'M' };
                    let _ = write!(path, "{cmd}{px:.1},{py:.1} ");
                    // A dot per point, so a lone point (one hour of data) shows too.
                    let _ = write!(
                        dots,
                        "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"2\" fill=\"{}\"><title>{} · {}</title></circle>",
                        s.color,
                        html::ts(*x),
                        esc(&fmt(*y))
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(
            inner,
            "<path d=\"{path}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>{dots}",
            s.color
        );
        let _ = write!(
            legend,
            "<svg width=\"10\" height=\"10\" viewBox=\"0 0 10 10\"><rect width=\"10\" height=\"10\" \
             fill=\"{}\"/></svg> {} &nbsp; ",
            s.color,
            esc(s.label)
        );
    }
    legend.push_str("</p>");
    frame(id, title, &inner, &legend)
}

/// Horizontal bars, one per `(label, value)`, longest first as given.
pub fn hbars(id: &str, title: &str, rows: &[(String, f64)], fmt: &dyn Fn(f64) -> String) -> String {
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    let row_h = 18.0;
    let height = (rows.len() as f64 * row_h).max(row_h);
    let mut inner = String::new();
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = i as f64 * row_h;
        let w = if max > 0.0 { v / max * 330.0 } else { 0.0 };
        let shown: String = label.chars().take(28).collect();
        let _ = write!(
            inner,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"11\" fill=\"#1d2330\">{}</text>\
             <rect x=\"190\" y=\"{:.1}\" width=\"{w:.1}\" height=\"12\" fill=\"{BLUE}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#5d6778\">{}</text>",
            y + 12.0,
            esc(&shown),
            y + 2.0,
            194.0 + w,
            y + 12.0,
            esc(&fmt(*v))
        );
    }
    format!(
        "<div class=\"chart\" id=\"{id}\"><h3>{}</h3><svg viewBox=\"0 0 {W} {height}\" role=\"img\" \
         aria-label=\"{0}\" xmlns=\"http://www.w3.org/2000/svg\">{inner}</svg></div>",
        esc(title)
    )
}
