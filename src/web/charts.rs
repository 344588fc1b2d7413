//! Charts drawn on the server as HTML with inline SVG bars: no script, nothing fetched. The
//! text of a chart (category labels, figures, legend, days) is HTML laid out by the
//! stylesheet's grid, so it keeps its size and never runs into a bar at any width; only the
//! bars are SVG, each scaled to its share of the bars' column (`width="…%"`). Every bar is a
//! `rect` of class `bar`, every label of class `label`, every figure of class `value`.
//!
//! Each chart is an image to assistive technology (`role="img"`, named by its title and
//! described by its description); the page puts the same figures in a table beside it. Colours
//! come from classes (`series-0`, `series-1`, …) that the stylesheet sets, so print and dark
//! themes can change them.

use std::fmt::Write as _;

/// Longest label drawn in full; longer ones end in "…" (the table has them whole).
const LABEL_CHARS: usize = 48;
/// Width of one day's slot in a daily strip, in the strip's own units; the bar leaves a gap.
const SLOT: f64 = 10.0;
const SLOT_BAR: f64 = 8.0;
/// Height of a daily strip in its own units, and the least a day with posts is drawn.
const STRIP_H: f64 = 24.0;
const STRIP_MIN: f64 = 2.0;

/// One category of a bar chart: its label and one value per series.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: String,
    pub values: Vec<u64>,
}

/// How several series of one category are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// End to end in one bar (parts of a whole).
    Stacked,
    /// One bar each, under each other (figures to compare).
    Grouped,
}

/// What every chart carries for assistive technology.
pub struct Labels<'a> {
    /// Unique on the page: the ids of the title and description derive from it.
    pub id: &'a str,
    pub title: &'a str,
    pub desc: &'a str,
}

/// Escapes text for HTML and SVG element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= LABEL_CHARS {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(LABEL_CHARS - 1).collect();
        t.push('…');
        t
    }
}

/// Length of a bar for `value` when `max` fills `span`, to a tenth; 0 when there is nothing
/// to draw.
pub fn scale(value: u64, max: u64, span: f64) -> f64 {
    if max == 0 { 0.0 } else { (value as f64 / max as f64 * span * 10.0).round() / 10.0 }
}

/// Where each part of a stacked bar starts and how long it is, in the bar's own units (one
/// per counted item), leaving out empty parts: (series, x, width).
pub fn stack(values: &[u64]) -> Vec<(usize, u64, u64)> {
    let mut x = 0;
    let mut parts = Vec::new();
    for (i, &v) in values.iter().enumerate() {
        if v > 0 {
            parts.push((i, x, v));
            x += v;
        }
    }
    parts
}

/// The column of day `d` in a daily strip: (x, width) in the strip's units.
pub fn day_column(d: usize) -> (f64, f64) {
    (d as f64 * SLOT + (SLOT - SLOT_BAR) / 2.0, SLOT_BAR)
}

/// Height of a day's column for `value` posts when `max` fills the strip; a day with posts
/// is never drawn lower than [`STRIP_MIN`], so that it shows.
pub fn day_height(value: u64, max: u64) -> f64 {
    if value == 0 { 0.0 } else { scale(value, max, STRIP_H).max(STRIP_MIN) }
}

fn open(out: &mut String, labels: &Labels, kind: &str) {
    let id = escape(labels.id);
    let _ = write!(
        out,
        "<div class=\"chart {kind}\" id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\">\
         <span id=\"{id}-title\" hidden>{}</span><span id=\"{id}-desc\" hidden>{}</span>",
        escape(labels.title),
        escape(labels.desc)
    );
}

fn legend(out: &mut String, series: &[&str]) {
    out.push_str("<ul class=\"legend\">");
    for (i, name) in series.iter().enumerate() {
        let _ = write!(
            out,
            "<li><svg class=\"key\" viewBox=\"0 0 1 1\" aria-hidden=\"true\"><rect class=\"series-{i}\" width=\"1\" height=\"1\"/></svg>\
             <span class=\"legend-entry\">{}</span></li>",
            escape(name)
        );
    }
    out.push_str("</ul>");
}

/// One bar of the bars' column, `percent` of it long, made of `parts` (series, x, width) in a
/// space `units` wide; an empty placeholder keeps the grid's cells in order when there is
/// nothing to draw.
fn track(out: &mut String, percent: f64, units: u64, parts: &[(usize, u64, u64)]) {
    if percent <= 0.0 || units == 0 {
        out.push_str("<span class=\"track\"></span>");
        return;
    }
    let _ = write!(
        out,
        "<svg class=\"track\" width=\"{percent}%\" viewBox=\"0 0 {units} 1\" preserveAspectRatio=\"none\" aria-hidden=\"true\">"
    );
    for &(i, x, w) in parts {
        let _ = write!(out, "<rect class=\"bar series-{i}\" x=\"{x}\" width=\"{w}\" height=\"1\"/>");
    }
    out.push_str("</svg>");
}

/// A horizontal bar chart with one row per category (its label beside its bars, above them
/// on a narrow screen) and a legend when there are several series.
pub fn bars(labels: &Labels, series: &[&str], rows: &[Row], layout: Layout) -> String {
    let max = rows
        .iter()
        .map(|r| match layout {
            Layout::Stacked => r.values.iter().sum(),
            Layout::Grouped => r.values.iter().copied().max().unwrap_or(0),
        })
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    open(&mut out, labels, "bars");
    if series.len() > 1 {
        legend(&mut out, series);
    }
    if rows.is_empty() {
        out.push_str("<p class=\"empty\">Nothing yet</p></div>");
        return out;
    }
    out.push_str("<div class=\"rows\">");
    for row in rows {
        let _ = write!(out, "<span class=\"label\">{}</span><span class=\"lanes\">", escape(&shorten(&row.label)));
        match layout {
            Layout::Stacked => {
                let total: u64 = row.values.iter().sum();
                track(&mut out, scale(total, max, 100.0), total, &stack(&row.values));
                let _ = write!(out, "<span class=\"value\">{total}</span>");
            }
            Layout::Grouped => {
                for (i, &v) in row.values.iter().enumerate() {
                    track(&mut out, scale(v, max, 100.0), 1, &[(i, 0, 1)]);
                    let _ = write!(out, "<span class=\"value\">{v}</span>");
                }
            }
        }
        out.push_str("</span>");
    }
    out.push_str("</div></div>");
    out
}

/// Small multiples over days: one strip per row, one column per day, all on one scale, with
/// the row's total beside it. `first_label` and `last_label` name the first and last day under
/// the strips (once when they are the same day).
pub fn daily(labels: &Labels, rows: &[Row], first_label: &str, last_label: &str) -> String {
    let days = rows.iter().map(|r| r.values.len()).max().unwrap_or(0).max(1);
    let width = days as f64 * SLOT;
    let max = rows.iter().flat_map(|r| r.values.iter().copied()).max().unwrap_or(0);
    let mut out = String::new();
    open(&mut out, labels, "daily");
    if rows.is_empty() {
        out.push_str("<p class=\"empty\">Nothing yet</p></div>");
        return out;
    }
    out.push_str("<div class=\"rows\">");
    for row in rows {
        let _ = write!(
            out,
            "<span class=\"label\">{}</span>\
             <svg class=\"strip\" viewBox=\"0 0 {width} {STRIP_H}\" preserveAspectRatio=\"none\" aria-hidden=\"true\">\
             <line class=\"axis\" x1=\"0\" x2=\"{width}\" y1=\"{STRIP_H}\" y2=\"{STRIP_H}\" vector-effect=\"non-scaling-stroke\"/>",
            escape(&shorten(&row.label))
        );
        for (d, &v) in row.values.iter().enumerate() {
            let h = day_height(v, max);
            if h > 0.0 {
                let (x, w) = day_column(d);
                let _ = write!(
                    out,
                    "<rect class=\"bar series-0\" x=\"{x}\" y=\"{}\" width=\"{w}\" height=\"{h}\"/>",
                    STRIP_H - h
                );
            }
        }
        let total: u64 = row.values.iter().sum();
        let _ = write!(out, "</svg><span class=\"value\">{total}</span>");
    }
    out.push_str("<span class=\"days\">");
    let _ = write!(out, "<span class=\"tick\">{}</span>", escape(first_label));
    if last_label != first_label {
        let _ = write!(out, "<span class=\"tick\">{}</span>", escape(last_label));
    }
    out.push_str("</span></div></div>");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn labels() -> Labels<'static> {
        Labels { id: "c", title: "Posts <per> day", desc: "Learners' posts" }
    }

    /// The `width` attributes of the bars' tracks, in order.
    fn tracks(html: &str) -> Vec<String> {
        html.split("<svg class=\"track\" width=\"").skip(1).map(|s| s.split('"').next().unwrap().to_string()).collect()
    }

    /// The texts of the elements of class `class`, in order.
    fn texts(html: &str, class: &str) -> Vec<String> {
        html.split(&format!("class=\"{class}\">")).skip(1).map(|s| s.split('<').next().unwrap().to_string()).collect()
    }

    #[test]
    fn a_chart_is_an_image_named_by_its_escaped_title_and_description() {
        let html = bars(&labels(), &["Posts"], &[Row { label: "A & B".into(), values: vec![1] }], Layout::Stacked);
        assert!(
            html.starts_with("<div class=\"chart bars\" id=\"c\" role=\"img\" aria-labelledby=\"c-title c-desc\">")
        );
        assert!(html.contains("<span id=\"c-title\" hidden>Posts &lt;per&gt; day</span>"));
        assert!(html.contains("<span id=\"c-desc\" hidden>Learners&#39; posts</span>"));
        assert_eq!(texts(&html, "label"), ["A &amp; B"]);
        assert!(html.ends_with("</div></div>"));
        assert_eq!(html.matches("<div").count(), html.matches("</div>").count());
        assert_eq!(html.matches("<span").count(), html.matches("</span>").count());
    }

    #[test]
    fn the_largest_value_fills_the_bars_column_and_others_are_in_proportion() {
        assert_eq!(scale(10, 10, 100.0), 100.0);
        assert_eq!(scale(5, 10, 100.0), 50.0);
        assert_eq!(scale(1, 3, 100.0), 33.3);
        assert_eq!(scale(0, 10, 100.0), 0.0);
        assert_eq!(scale(0, 0, 100.0), 0.0);
        let rows = vec![Row { label: "a".into(), values: vec![4] }, Row { label: "b".into(), values: vec![1] }];
        let html = bars(&labels(), &["x"], &rows, Layout::Grouped);
        assert_eq!(tracks(&html), ["100%", "25%"]);
        assert_eq!(texts(&html, "value"), ["4", "1"]);
    }

    #[test]
    fn grouped_series_draw_one_bar_each_with_its_figure_and_a_legend() {
        let rows = vec![Row { label: "m".into(), values: vec![2, 1] }];
        let html = bars(&labels(), &["With a post", "With a badge"], &rows, Layout::Grouped);
        assert_eq!(tracks(&html), ["100%", "50%"]);
        assert!(html.contains("<rect class=\"bar series-0\"") && html.contains("<rect class=\"bar series-1\""));
        assert_eq!(texts(&html, "value"), ["2", "1"]);
        assert_eq!(texts(&html, "legend-entry"), ["With a post", "With a badge"]);
    }

    #[test]
    fn stacked_parts_sit_end_to_end_and_the_total_is_written() {
        assert_eq!(stack(&[3, 0, 1]), [(0, 0, 3), (2, 3, 1)]);
        assert_eq!(stack(&[0, 0]), []);
        let rows = vec![Row { label: "t".into(), values: vec![3, 1] }, Row { label: "u".into(), values: vec![0, 2] }];
        let html = bars(&labels(), &["Recorded", "Pending"], &rows, Layout::Stacked);
        assert_eq!(tracks(&html), ["100%", "50%"]);
        assert!(html.contains("viewBox=\"0 0 4 1\" preserveAspectRatio=\"none\" aria-hidden=\"true\"><rect class=\"bar series-0\" x=\"0\" width=\"3\" height=\"1\"/><rect class=\"bar series-1\" x=\"3\" width=\"1\" height=\"1\"/></svg>"), "{html}");
        assert_eq!(texts(&html, "value"), ["4", "2"]);
        assert_eq!(texts(&html, "legend-entry"), ["Recorded", "Pending"], "a legend names the series");
    }

    #[test]
    fn zero_values_draw_no_bar_but_keep_their_cell_and_an_empty_chart_says_so() {
        let html = bars(&labels(), &["x"], &[Row { label: "a".into(), values: vec![0] }], Layout::Grouped);
        assert!(!html.contains("<rect") && !html.contains("<svg"));
        assert!(html.contains("<span class=\"track\"></span><span class=\"value\">0</span>"));
        assert!(bars(&labels(), &["x"], &[], Layout::Grouped).contains("<p class=\"empty\">Nothing yet</p>"));
        assert!(daily(&labels(), &[], "a", "b").contains("<p class=\"empty\">Nothing yet</p>"));
    }

    #[test]
    fn long_labels_are_shortened_in_the_drawing() {
        let long = "x".repeat(60);
        let html = bars(&labels(), &["x"], &[Row { label: long.clone(), values: vec![1] }], Layout::Grouped);
        assert!(!html.contains(&long));
        assert_eq!(texts(&html, "label"), [format!("{}…", "x".repeat(LABEL_CHARS - 1))]);
    }

    #[test]
    fn days_sit_in_equal_slots_with_a_gap_and_a_day_with_posts_always_shows() {
        assert_eq!(day_column(0), (1.0, 8.0));
        assert_eq!(day_column(59), (591.0, 8.0));
        assert_eq!(day_height(10, 10), STRIP_H);
        assert_eq!(day_height(5, 10), STRIP_H / 2.0);
        assert_eq!(day_height(1, 1000), STRIP_MIN, "one post among many still shows");
        assert_eq!(day_height(0, 10), 0.0);
    }

    #[test]
    fn daily_strips_draw_one_column_per_day_with_posts_on_one_scale() {
        let rows = vec![
            Row { label: "#intro".into(), values: vec![0, 2, 0, 4] },
            Row { label: "#data".into(), values: vec![1, 0, 0, 0] },
        ];
        let html = daily(&labels(), &rows, "1 May", "4 May");
        assert!(html.starts_with("<div class=\"chart daily\""));
        assert_eq!(html.matches("viewBox=\"0 0 40 24\"").count(), 2, "a strip of four slots per row");
        assert_eq!(html.matches("<rect").count(), 3);
        assert!(html.contains("<rect class=\"bar series-0\" x=\"11\" y=\"12\" width=\"8\" height=\"12\"/>"), "{html}");
        assert!(html.contains("<rect class=\"bar series-0\" x=\"31\" y=\"0\" width=\"8\" height=\"24\"/>"));
        assert!(html.contains("<rect class=\"bar series-0\" x=\"1\" y=\"18\" width=\"8\" height=\"6\"/>"));
        assert_eq!(texts(&html, "value"), ["6", "1"], "each strip's total");
        assert_eq!(texts(&html, "tick"), ["1 May", "4 May"]);
    }

    #[test]
    fn a_single_day_is_named_once_under_the_strips() {
        let rows = vec![Row { label: "#intro".into(), values: vec![3] }];
        let html = daily(&labels(), &rows, "7 May", "7 May");
        assert_eq!(texts(&html, "tick"), ["7 May"]);
        assert_eq!(html.matches("<rect").count(), 1);
    }
}
