//! The export of a post-mortem: Markdown plus each view's charts as standalone SVG files
//! (the page's own SVG charts, and for a trace view a waterfall drawn for the export).

use askama::Template;

use super::views_page::ViewRow;
use super::{view_render, WebState};
use crate::meta::views::{PageAddress, SavedView, ViewKind};
use crate::meta::MetaError;
use crate::postmortem::markdown::{self, ExportedChart, ExportedView, TimelineLine};
use crate::query::StitchedTrace;

/// A post-mortem ready to write: the Markdown and its files (name, SVG text).
pub struct Export {
    pub markdown: String,
    pub files: Vec<(String, String)>,
}

/// Builds the export of post-mortem `id`. Chart links in the Markdown are `file_prefix` +
/// file name; permalinks start with `base` (e.g. `http://127.0.0.1:8080`).
pub async fn export(
    state: &WebState,
    id: i64,
    base: &str,
    file_prefix: &str,
) -> Result<Export, MetaError> {
    let meta = &state.notebook;
    let pm = meta.postmortem(id).await?;
    let mut files = Vec::new();
    let mut views = Vec::new();
    for (i, entry) in pm.views.iter().enumerate() {
        let view = match entry.view_id {
            Some(v) => meta.view(v).await.ok(),
            None => None,
        };
        let Some(view) = view else {
            views.push(ExportedView {
                name: entry.view_name.clone(),
                kind: "deleted".into(),
                note: entry.note.clone(),
                permalink: None,
                evidence: String::new(),
                charts: Vec::new(),
                tables: Vec::new(),
            });
            continue;
        };
        let mut charts = Vec::new();
        if view.kind == ViewKind::Trace {
            charts.extend(trace_waterfall(state, &view).await.map(|svg| PageChart {
                svg,
                title: "Waterfall of the trace".into(),
                caption: String::new(),
            }));
        }
        let rendered = view_render::render(state, &view).await;
        charts.extend(page_charts(rendered.content()));
        let mut exported = Vec::new();
        for (k, chart) in charts.into_iter().enumerate() {
            let name = format!("view-{}-chart-{}.svg", i + 1, k + 1);
            exported.push(ExportedChart {
                file: format!("{file_prefix}{name}"),
                title: chart.title,
                caption: chart.caption,
            });
            files.push((name, chart.svg));
        }
        views.push(ExportedView {
            name: view.name.clone(),
            kind: view.kind.label().to_string(),
            note: crate::postmortem::evidence_note(&view.note, &entry.note),
            permalink: Some(format!("{base}/views/{}/open", view.id)),
            evidence: ViewRow::of(&view).evidence,
            charts: exported,
            tables: page_tables(rendered.content()),
        });
    }
    let mut timeline: Vec<TimelineLine> = pm
        .timeline
        .iter()
        .map(|e| TimelineLine {
            time: e.time,
            text: e.text.clone(),
            source: e.source.clone(),
        })
        .collect();
    if let (Some(s), Some(e)) = (pm.incident_start, pm.incident_end) {
        for a in meta.annotations(s, e, None).await? {
            timeline.push(TimelineLine {
                time: a.time,
                text: match a.service {
                    Some(svc) => format!("{svc}: {}", a.text),
                    None => a.text,
                },
                source: "annotation".into(),
            });
        }
    }
    timeline.sort_by_key(|t| t.time);
    Ok(Export {
        markdown: markdown::write(&pm, &views, &timeline),
        files,
    })
}

/// Styles the charts need outside the page (the page's CSS is not there).
const SVG_STYLE: &str = "<style>text{font:11px sans-serif;fill:#475467}.axis{stroke:#98a2b3}\
.line{fill:none;stroke-width:1.5}.bar{fill:#2f6fde}.dot{fill:#2f6fde;opacity:.7}\
.dot.err{fill:#d92d20}.burst line,.annotation line{stroke:#f79009;stroke-dasharray:3 3}\
.edge{fill:none;stroke:#98a2b3}.edge.err{stroke:#d92d20}.node rect{fill:#fff;stroke:#475467}\
.spark{fill:none;stroke:#2f6fde}</style>";

/// A chart of a page: its SVG made standalone, its title and its caption as text.
struct PageChart {
    svg: String,
    title: String,
    caption: String,
}

/// Every `<svg>…</svg>` of a page's content (our own templates), made standalone, titled by
/// its `aria-label` and captioned by the `<figcaption>` that follows it.
fn page_charts(content: &str) -> Vec<PageChart> {
    let mut out = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find("<svg") {
        let Some(len) = rest[start..].find("</svg>") else {
            break;
        };
        let svg = &rest[start..start + len + "</svg>".len()];
        rest = &rest[start + len + "</svg>".len()..];
        let next_svg = rest.find("<svg").unwrap_or(rest.len());
        let caption = rest[..next_svg]
            .find("<figcaption>")
            .and_then(|at| {
                let from = at + "<figcaption>".len();
                rest[from..next_svg]
                    .find("</figcaption>")
                    .map(|len| text_of(&rest[from..from + len]))
            })
            .unwrap_or_default();
        out.push(PageChart {
            svg: standalone(svg),
            title: attribute(svg, "aria-label").unwrap_or_default(),
            caption,
        });
    }
    out
}

/// The value of attribute `name` in the first tag of `html`, unescaped.
fn attribute(html: &str, name: &str) -> Option<String> {
    let tag_end = html.find('>')?;
    let tag = &html[..tag_end];
    let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let len = tag[at..].find('"')?;
    Some(unescape(&tag[at..at + len]))
}

/// The text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed.
fn text_of(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    unescape(&text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decodes the entities askama's HTML escaping writes.
fn unescape(text: &str) -> String {
    text.replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// `html` without its `<details>` elements (what a page hides until opened), nested or not.
fn without_details(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut depth = 0usize;
    let mut rest = html;
    while !rest.is_empty() {
        let open = rest.find("<details");
        let close = rest.find("</details>");
        match (open, close) {
            (Some(o), c) if c.is_none_or(|c| o < c) => {
                if depth == 0 {
                    out.push_str(&rest[..o]);
                }
                depth += 1;
                rest = &rest[o + "<details".len()..];
            }
            (_, Some(c)) => {
                if depth == 0 {
                    out.push_str(&rest[..c]);
                }
                depth = depth.saturating_sub(1);
                rest = &rest[c + "</details>".len()..];
            }
            _ => {
                if depth == 0 {
                    out.push_str(rest);
                }
                break;
            }
        }
    }
    out
}

/// The result tables of a page (`<table class="results …">`: RED rows, log lines, trace
/// rows, error groups) as rows of cell texts, header first.
fn page_tables(content: &str) -> Vec<Vec<Vec<String>>> {
    let mut tables = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find("<table class=\"results") {
        let Some(len) = rest[start..].find("</table>") else {
            break;
        };
        let table = without_details(&rest[start..start + len]);
        rest = &rest[start + len..];
        let rows: Vec<Vec<String>> = table
            .split("<tr")
            .skip(1)
            .map(|row| {
                row.split("<t")
                    .skip(1)
                    .filter(|cell| cell.starts_with('d') || cell.starts_with('h'))
                    .map(|cell| text_of(cell.split_once('>').map_or("", |(_, inner)| inner)))
                    .collect()
            })
            .filter(|cells: &Vec<String>| !cells.is_empty())
            .collect();
        if rows.len() > 1 {
            tables.push(rows);
        }
    }
    tables
}

fn standalone(svg: &str) -> String {
    let svg = svg.replace("var(--accent)", "#2f6fde");
    let body = svg.strip_prefix("<svg").unwrap_or(&svg);
    let close = body.find('>').unwrap_or(0);
    let (attrs, inner) = body.split_at(close + 1);
    let xmlns = if attrs.contains("xmlns=") {
        ""
    } else {
        " xmlns=\"http://www.w3.org/2000/svg\""
    };
    format!("<svg{xmlns}{attrs}{SVG_STYLE}{inner}")
}

/// A bar of the exported waterfall.
struct WaterfallBar {
    y: f64,
    x: f64,
    w: f64,
    label: String,
    color: &'static str,
    error: bool,
}

#[derive(Template)]
#[template(path = "waterfall.svg", escape = "html")]
struct Waterfall {
    width: f64,
    height: f64,
    title: String,
    bars: Vec<WaterfallBar>,
}

/// Most spans drawn in an exported waterfall.
const MAX_WATERFALL_SPANS: usize = 300;

/// The waterfall of a trace view, from its evidence when pinned.
async fn trace_waterfall(state: &WebState, view: &SavedView) -> Option<String> {
    let engine = if view.pin.is_some() {
        state.notebook.pinned_engine(view.id).ok()?
    } else {
        state.engine.clone()
    };
    let id = PageAddress::parse(&view.url).ok()?.trace_id()?.ok()?;
    let stitched = engine.stitched_trace(id).await.ok()??;
    Some(waterfall_svg(&stitched))
}

fn waterfall_svg(stitched: &StitchedTrace) -> String {
    let mut spans: Vec<&crate::model::SpanRow> = std::iter::once(&stitched.trace)
        .chain(stitched.linked.iter().map(|l| &l.trace))
        .flat_map(|t| t.spans.iter())
        .collect();
    spans.sort_by_key(|s| s.start_time_unix_nano);
    spans.truncate(MAX_WATERFALL_SPANS);
    let start = spans
        .iter()
        .map(|s| s.start_time_unix_nano)
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .map(|s| s.end_time_unix_nano)
        .max()
        .unwrap_or(start);
    let len = (end - start).max(1) as f64;
    let (label_w, plot_w, row_h) = (320.0, 640.0, 18.0);
    let bars = spans
        .iter()
        .enumerate()
        .map(|(i, s)| WaterfallBar {
            y: 24.0 + i as f64 * row_h,
            x: label_w + plot_w * (s.start_time_unix_nano - start) as f64 / len,
            w: (plot_w * (s.end_time_unix_nano - s.start_time_unix_nano) as f64 / len).max(1.0),
            label: format!(
                "{}: {} ({})",
                s.resource.service_name,
                s.name,
                super::format::duration(s.end_time_unix_nano - s.start_time_unix_nano)
            ),
            color: super::format::service_color(&s.resource.service_name),
            error: s.is_error(),
        })
        .collect();
    Waterfall {
        width: label_w + plot_w + 8.0,
        height: 32.0 + spans.len() as f64 * row_h,
        title: format!(
            "Trace {} — {} spans, {}",
            stitched.trace.trace_id,
            spans.len(),
            super::format::duration(end - start)
        ),
        bars,
    }
    .render()
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_keep_their_titles_and_tables_their_rows() {
        let page = r#"<figure><svg viewBox="0 0 10 10" aria-label="Errors per minute &#38; more"><rect></rect></svg>
<figcaption>Error spans: <span class="svc">cart</span> <b>a&lt;b</b></figcaption></figure>
<table class="results logs"><thead><tr><th>Time</th><th>Message</th></tr></thead>
<tbody><tr class="log-row"><td class="time">10:00</td><td>charge | failed<details class="record"><summary>details</summary>
<table class="attrs"><tr><th>k</th><td>v<details class="full"><pre>x</pre></details></td></tr></table></details></td></tr></tbody></table>"#;
        let charts = page_charts(page);
        assert_eq!(charts.len(), 1);
        assert_eq!(charts[0].title, "Errors per minute & more");
        assert_eq!(charts[0].caption, "Error spans: cart a<b");
        assert!(charts[0].svg.contains("xmlns="));
        let tables = page_tables(page);
        assert_eq!(
            tables,
            vec![vec![
                vec!["Time".to_string(), "Message".to_string()],
                vec!["10:00".to_string(), "charge | failed".to_string()],
            ]]
        );
    }
}
