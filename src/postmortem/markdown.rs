//! The Markdown export of a post-mortem. Every piece of user text is escaped: Markdown
//! renderers pass raw HTML through, so `<script>` in a summary must arrive as text.

use std::fmt::Write;

use crate::meta::postmortems::PostMortem;

/// One view of the post-mortem as exported: its charts are files beside the Markdown.
#[derive(Debug, Clone)]
pub struct ExportedView {
    pub name: String,
    /// The page kind as a person calls it ("Trace", "Logs", …).
    pub kind: String,
    pub note: String,
    /// Absolute link back to the view; `None` once the view was deleted.
    pub permalink: Option<String>,
    /// "pinned …: N records" or "live data".
    pub evidence: String,
    /// The view's charts (SVG files beside the Markdown), with their titles and legends.
    pub charts: Vec<ExportedChart>,
    /// The view's tables as the page shows them (key numbers, log lines), first row the
    /// header, each cut to [`MAX_TABLE_ROWS`] rows.
    pub tables: Vec<Vec<Vec<String>>>,
}

/// One chart of an exported view.
#[derive(Debug, Clone)]
pub struct ExportedChart {
    /// Where the SVG file is, relative to the Markdown (or an absolute URL).
    pub file: String,
    /// What the chart shows ("Errors per minute, stacked per service").
    pub title: String,
    /// The chart's legend and caption as text.
    pub caption: String,
}

/// Most rows of a table written into the export (the view's permalink has the rest).
pub const MAX_TABLE_ROWS: usize = 25;

/// A line of the exported timeline.
#[derive(Debug, Clone)]
pub struct TimelineLine {
    pub time: i64,
    pub text: String,
    /// "manual", a suggestion kind, or "annotation".
    pub source: String,
}

/// Escapes text for Markdown: HTML-significant characters as entities, inline Markdown
/// syntax with backslashes, and line starts that would open a list, heading or quote, so the
/// text renders literally.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let indent = line.len() - line.trim_start().len();
        out.push_str(&line[..indent]);
        let body = &line[indent..];
        let digits = body.chars().take_while(char::is_ascii_digit).count();
        if body.starts_with(['-', '+', '=']) {
            out.push('\\');
        }
        for (j, c) in body.chars().enumerate() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '!' | '|' | '{' | '}'
                | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                '.' if digits > 0 && j == digits => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() => {}
                c => out.push(c),
            }
        }
    }
    out
}

/// Escaped text kept on one line (table cells, headings).
fn escape_line(text: &str) -> String {
    escape(&text.replace(['\r', '\n'], " "))
}

/// A table as Markdown: the first row is the header; cells are escaped and `|` kept literal.
fn write_table(md: &mut String, rows: &[Vec<String>]) {
    let Some((header, body)) = rows.split_first() else {
        return;
    };
    let width = header.len().max(1);
    let cell = |text: &str| escape_line(text).replace('|', "\\|");
    let line = |cells: &[String]| {
        let mut out = String::from("|");
        for i in 0..width {
            out.push(' ');
            out.push_str(&cell(cells.get(i).map(String::as_str).unwrap_or("")));
            out.push_str(" |");
        }
        out
    };
    let _ = writeln!(md, "{}", line(header));
    let _ = writeln!(md, "|{}", " --- |".repeat(width));
    for row in body.iter().take(MAX_TABLE_ROWS) {
        let _ = writeln!(md, "{}", line(row));
    }
    if body.len() > MAX_TABLE_ROWS {
        let _ = writeln!(
            md,
            "\n_{} more rows in the view._",
            body.len() - MAX_TABLE_ROWS
        );
    }
    md.push('\n');
}

/// UTC time, to the second.
fn time(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Writes the whole document.
pub fn write(pm: &PostMortem, views: &[ExportedView], timeline: &[TimelineLine]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", escape_line(&pm.title));
    let window = match (pm.incident_start, pm.incident_end) {
        (Some(s), Some(e)) => format!("{} – {} UTC", time(s), time(e)),
        (Some(s), None) => format!("from {} UTC", time(s)),
        _ => "not set".into(),
    };
    let _ = writeln!(
        md,
        "**Status:** {} · **Incident:** {} · **Version:** {}\n",
        pm.status.as_str(),
        window,
        pm.version
    );
    for (heading, text) in [("Summary", &pm.summary), ("Impact", &pm.impact)] {
        let _ = writeln!(md, "## {heading}\n");
        let _ = writeln!(md, "{}\n", or_none(text));
    }
    let _ = writeln!(md, "## Timeline\n");
    if timeline.is_empty() {
        let _ = writeln!(md, "_No entries._\n");
    } else {
        let _ = writeln!(md, "| Time (UTC) | Event | Source |\n|---|---|---|");
        for t in timeline {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                time(t.time),
                escape_line(&t.text),
                escape_line(&t.source)
            );
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Evidence\n");
    if views.is_empty() {
        let _ = writeln!(md, "_No saved views._\n");
    }
    for (i, v) in views.iter().enumerate() {
        let _ = writeln!(md, "### {}. {} ({})\n", i + 1, escape_line(&v.name), v.kind);
        if !v.note.trim().is_empty() {
            let _ = writeln!(md, "{}\n", escape(&v.note));
        }
        for chart in &v.charts {
            let title = match chart.title.trim() {
                "" => escape_line(&v.name),
                t => escape_line(t),
            };
            let _ = writeln!(md, "**{title}**\n\n![{title}]({})\n", chart.file);
            if !chart.caption.trim().is_empty() {
                let _ = writeln!(md, "_{}_\n", escape_line(chart.caption.trim()));
            }
        }
        for table in &v.tables {
            write_table(&mut md, table);
        }
        match &v.permalink {
            Some(link) => {
                let _ = writeln!(
                    md,
                    "[Open this view]({link}) — {}\n",
                    escape_line(&v.evidence)
                );
            }
            None => {
                let _ = writeln!(md, "_This view was deleted._\n");
            }
        }
    }
    let _ = writeln!(md, "## Root cause\n\n{}\n", or_none(&pm.root_cause));
    let _ = writeln!(md, "## Action items\n");
    if pm.action_items.is_empty() {
        let _ = writeln!(md, "_None._");
    }
    for item in &pm.action_items {
        let owner = if item.owner.trim().is_empty() {
            String::new()
        } else {
            format!(" — {}", escape_line(&item.owner))
        };
        let _ = writeln!(
            md,
            "- [{}] {}{owner}",
            if item.done { "x" } else { " " },
            escape_line(&item.text)
        );
    }
    md
}

fn or_none(text: &str) -> String {
    if text.trim().is_empty() {
        "_Not written yet._".into()
    } else {
        escape(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_and_markdown_syntax_arrive_as_text() {
        let e = escape("<script>alert(1)</script> **bold** [x](javascript:y)");
        assert!(
            !e.contains('<') && !e.contains("**") && !e.contains("]("),
            "{e}"
        );
        assert!(e.contains("&lt;script&gt;"));
        assert_eq!(
            escape("- not a list\n1. not either"),
            "\\- not a list\n1\\. not either"
        );
        assert_eq!(escape("2026-11-23 10.5"), "2026-11-23 10.5");
    }
}
