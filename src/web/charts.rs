//! Charts drawn on the server as inline SVG: no script, nothing fetched. Each chart is an
//! image to assistive technology (`role="img"`, named by its `<title>` and described by its
//! `<desc>`); the page puts the same figures in a table beside it. Colours come from classes
//! (`series-0`, `series-1`, …) that the stylesheet sets, so print and dark themes can change them.

use std::fmt::Write as _;

/// The drawing's width in SVG user units; the page scales it to the column.
const WIDTH: f64 = 640.0;
/// Room for the category labels left of the bars.
const LABEL_W: f64 = 200.0;
/// Room right of the longest bar for its value.
const VALUE_W: f64 = 56.0;
const BAR_H: f64 = 16.0;
const GAP: f64 = 8.0;
const LEGEND_H: f64 = 24.0;
/// Longest label drawn in full; longer ones end in "…" (the table has them whole).
const LABEL_CHARS: usize = 28;

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

/// Escapes text for SVG element content and attribute values.
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

fn open(out: &mut String, labels: &Labels, height: f64) {
    let id = escape(labels.id);
    let _ = write!(
        out,
        "<svg class=\"chart\" id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" \
         viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        escape(labels.title),
        escape(labels.desc)
    );
}

fn legend(out: &mut String, series: &[&str], y: f64) {
    let mut x = LABEL_W;
    for (i, name) in series.iter().enumerate() {
        let _ = write!(
            out,
            "<rect class=\"series-{i}\" x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            y + 2.0,
            x + 16.0,
            y + 12.0,
            escape(name)
        );
        x += 24.0 + 8.0 * name.chars().count() as f64;
    }
}

/// Length of a bar for `value` when `max` fills `span`; 0 when there is nothing to draw.
pub fn scale(value: u64, max: u64, span: f64) -> f64 {
    if max == 0 { 0.0 } else { (value as f64 / max as f64 * span * 10.0).round() / 10.0 }
}

/// A horizontal bar chart with one row per category and a legend when there are several series.
pub fn bars(labels: &Labels, series: &[&str], rows: &[Row], layout: Layout) -> String {
    let lanes = match layout {
        Layout::Stacked => 1,
        Layout::Grouped => series.len().max(1),
    };
    let row_h = BAR_H * lanes as f64 + GAP;
    let top = if series.len() > 1 { LEGEND_H } else { 0.0 };
    let height = top + row_h * rows.len().max(1) as f64 + GAP;
    let span = WIDTH - LABEL_W - VALUE_W;
    let max = rows
        .iter()
        .map(|r| match layout {
            Layout::Stacked => r.values.iter().sum(),
            Layout::Grouped => r.values.iter().copied().max().unwrap_or(0),
        })
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    open(&mut out, labels, height);
    if series.len() > 1 {
        legend(&mut out, series, 0.0);
    }
    if rows.is_empty() {
        let _ = write!(out, "<text x=\"{LABEL_W}\" y=\"{}\">Nothing yet</text>", top + BAR_H);
    }
    for (n, row) in rows.iter().enumerate() {
        let y = top + GAP + row_h * n as f64;
        let _ = write!(
            out,
            "<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LABEL_W - 8.0,
            y + BAR_H * lanes as f64 / 2.0 + 4.0,
            escape(&shorten(&row.label))
        );
        let mut x = LABEL_W;
        for (i, &v) in row.values.iter().enumerate() {
            let w = scale(v, max, span);
            let lane_y = match layout {
                Layout::Stacked => y,
                Layout::Grouped => y + BAR_H * i as f64,
            };
            if w > 0.0 {
                let _ = write!(
                    out,
                    "<rect class=\"series-{i}\" x=\"{x}\" y=\"{lane_y}\" width=\"{w}\" height=\"{}\"/>",
                    BAR_H - 2.0
                );
            }
            match layout {
                Layout::Stacked => x += w,
                Layout::Grouped => {
                    let _ = write!(out, "<text x=\"{}\" y=\"{}\">{v}</text>", x + w + 4.0, lane_y + BAR_H - 4.0);
                }
            }
        }
        if layout == Layout::Stacked {
            let total: u64 = row.values.iter().sum();
            let _ = write!(out, "<text x=\"{}\" y=\"{}\">{total}</text>", x + 4.0, y + BAR_H - 4.0);
        }
    }
    out.push_str("</svg>");
    out
}

/// Small multiples over days: one strip per row, one column per day, all on one scale.
/// `first_label` and `last_label` name the first and last day under the strips.
pub fn daily(labels: &Labels, rows: &[Row], first_label: &str, last_label: &str) -> String {
    let strip_h = 28.0;
    let height = strip_h * rows.len().max(1) as f64 + 24.0;
    let days = rows.iter().map(|r| r.values.len()).max().unwrap_or(0);
    let span = WIDTH - LABEL_W - VALUE_W;
    let col = if days == 0 { 0.0 } else { span / days as f64 };
    let max = rows.iter().flat_map(|r| r.values.iter().copied()).max().unwrap_or(0);
    let mut out = String::new();
    open(&mut out, labels, height);
    if rows.is_empty() {
        let _ = write!(out, "<text x=\"{LABEL_W}\" y=\"{BAR_H}\">Nothing yet</text>");
    }
    for (n, row) in rows.iter().enumerate() {
        let base = strip_h * (n as f64 + 1.0);
        let _ = write!(
            out,
            "<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <line class=\"axis\" x1=\"{LABEL_W}\" x2=\"{}\" y1=\"{base}\" y2=\"{base}\"/>",
            LABEL_W - 8.0,
            base - 6.0,
            escape(&shorten(&row.label)),
            LABEL_W + span
        );
        for (d, &v) in row.values.iter().enumerate() {
            let h = scale(v, max, strip_h - 4.0);
            if h > 0.0 {
                let x = (LABEL_W + col * d as f64 * 10.0).round() / 10.0;
                let _ = write!(
                    out,
                    "<rect class=\"series-0\" x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{h}\"/>",
                    base - h,
                    ((col - 1.0).max(1.0) * 10.0).round() / 10.0
                );
            }
        }
        let total: u64 = row.values.iter().sum();
        let _ = write!(out, "<text x=\"{}\" y=\"{}\">{total}</text>", LABEL_W + span + 4.0, base - 6.0);
    }
    let y = height - 6.0;
    let _ = write!(
        out,
        "<text x=\"{LABEL_W}\" y=\"{y}\">{}</text><text x=\"{}\" y=\"{y}\" text-anchor=\"end\">{}</text></svg>",
        escape(first_label),
        LABEL_W + span,
        escape(last_label)
    );
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn labels() -> Labels<'static> {
        Labels { id: "c", title: "Posts <per> day", desc: "Learners' posts" }
    }

    fn widths(svg: &str) -> Vec<f64> {
        svg.split("width=\"").skip(2).filter_map(|s| s.split('"').next()?.parse().ok()).collect()
    }

    #[test]
    fn a_chart_is_an_image_named_by_its_escaped_title_and_description() {
        let svg = bars(&labels(), &["Posts"], &[Row { label: "A & B".into(), values: vec![1] }], Layout::Stacked);
        assert!(svg.starts_with("<svg class=\"chart\" id=\"c\" role=\"img\" aria-labelledby=\"c-title c-desc\""));
        assert!(svg.contains("<title id=\"c-title\">Posts &lt;per&gt; day</title>"));
        assert!(svg.contains("<desc id=\"c-desc\">Learners&#39; posts</desc>"));
        assert!(svg.contains(">A &amp; B</text>"));
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn the_largest_value_fills_the_span_and_others_are_in_proportion() {
        let span = WIDTH - LABEL_W - VALUE_W;
        assert_eq!(scale(10, 10, span), span);
        assert_eq!(scale(5, 10, span), span / 2.0);
        assert_eq!(scale(0, 10, span), 0.0);
        assert_eq!(scale(0, 0, span), 0.0);
        let rows = vec![Row { label: "a".into(), values: vec![4] }, Row { label: "b".into(), values: vec![1] }];
        let svg = bars(&labels(), &["x"], &rows, Layout::Grouped);
        assert_eq!(widths(&svg), vec![span, span / 4.0]);
    }

    #[test]
    fn stacked_parts_sit_end_to_end_and_the_total_is_written() {
        let rows = vec![Row { label: "t".into(), values: vec![3, 1] }];
        let svg = bars(&labels(), &["Recorded", "Pending"], &rows, Layout::Stacked);
        let span = WIDTH - LABEL_W - VALUE_W;
        assert!(svg.contains(&format!("class=\"series-1\" x=\"{}\"", LABEL_W + span * 0.75)), "{svg}");
        assert!(svg.contains(">4</text>"));
        assert!(svg.contains(">Recorded</text>") && svg.contains(">Pending</text>"), "a legend names the series");
    }

    #[test]
    fn zero_values_draw_no_bar_and_an_empty_chart_says_so() {
        let svg = bars(&labels(), &["x"], &[Row { label: "a".into(), values: vec![0] }], Layout::Grouped);
        assert!(!svg.contains("<rect"));
        assert!(bars(&labels(), &["x"], &[], Layout::Grouped).contains("Nothing yet"));
        assert!(daily(&labels(), &[], "a", "b").contains("Nothing yet"));
    }

    #[test]
    fn long_labels_are_shortened_in_the_drawing() {
        let long = "x".repeat(40);
        let svg = bars(&labels(), &["x"], &[Row { label: long.clone(), values: vec![1] }], Layout::Grouped);
        assert!(!svg.contains(&long));
        assert!(svg.contains(&format!("{}…", "x".repeat(LABEL_CHARS - 1))));
    }

    #[test]
    fn daily_strips_draw_one_column_per_day_with_posts() {
        let rows = vec![Row { label: "#intro".into(), values: vec![0, 2, 0, 4] }];
        let svg = daily(&labels(), &rows, "1 May", "4 May");
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains(">6</text>"), "the strip's total");
        assert!(svg.contains(">1 May</text>") && svg.contains(">4 May</text>"));
    }
}
