//! `/map`: the service map as a layered SVG graph.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::format;
use super::map_layout::{label_spots, layout, EdgeCurve, NODE_H, NODE_W};
use super::{message, render};
use crate::model::time::now_ns;
use crate::model::window::{TimeParams, TimeWindow, RANGES};
use crate::query::QueryEngine;

/// A node as drawn.
pub struct NodeView {
    pub name: String,
    pub x: f64,
    pub y: f64,
    pub href: Option<String>,
    pub color: &'static str,
    pub subtitle: String,
    pub down: bool,
}

/// An edge as drawn.
pub struct EdgeView {
    pub path: String,
    pub erroring: bool,
    pub async_hop: bool,
    pub label_x: f64,
    pub label_y: f64,
    pub label: String,
    pub title: String,
    pub caller: String,
    pub callee: String,
}

#[derive(Template)]
#[template(path = "map.html")]
struct MapPage {
    title: String,
    active: &'static str,
    save: Option<super::SaveForm>,
    window: TimeWindow,
    ranges: &'static [(&'static str, i64)],
    width: f64,
    height: f64,
    node_w: f64,
    node_h: f64,
    nodes: Vec<NodeView>,
    edges: Vec<EdgeView>,
    events: Vec<super::events::TriageEvent>,
}

pub async fn handler(
    State(engine): State<QueryEngine>,
    chrome: super::chrome::PageChrome,
    Query(params): Query<TimeParams>,
) -> Response {
    let now = now_ns();
    let window = match super::window_or_error(&params, now) {
        Ok(w) => w,
        Err(page) => return *page,
    };
    let now = window.as_of(now);
    let map = match engine.service_map(window.start, window.end, now).await {
        Ok(m) => m,
        Err(e) => {
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Query failed",
                e.to_string(),
            )
        }
    };
    let events = super::events::of_window(&engine, &window, None).await;
    let (placed, width, height) = layout(&map);
    let at: HashMap<&str, (f64, f64)> = placed
        .iter()
        .map(|p| (p.name.as_str(), (p.x, p.y)))
        .collect();
    let nodes = map
        .nodes
        .iter()
        .filter_map(|n| {
            let (x, y) = at.get(n.name.as_str())?;
            Some(NodeView {
                name: n.name.clone(),
                x: *x,
                y: *y,
                href: n.instrumented.then(|| {
                    super::url_in(
                        &window,
                        &format!("/services/{}", super::path_segment(&n.name)),
                        &[],
                    )
                }),
                color: if n.instrumented {
                    format::service_color(&n.name)
                } else {
                    "#98a2b3"
                },
                subtitle: match &n.red {
                    Some(red) => format!(
                        "{} · {} err",
                        format::rate(red.rate),
                        format::percent(red.error_rate)
                    ),
                    None => "not instrumented".into(),
                },
                down: n.down_instances > 0,
            })
        })
        .collect();
    // Edges with both ends placed, their curves, then one free spot per label.
    let drawn: Vec<(&crate::query::services::MapEdge, String, EdgeCurve)> = map
        .edges
        .iter()
        .filter_map(|e| {
            let (x1, y1) = at.get(e.caller.as_str())?;
            let (x2, y2) = at.get(e.callee.as_str())?;
            let label = edge_label(e);
            let curve = EdgeCurve {
                from: (x1 + NODE_W, y1 + NODE_H / 2.0),
                to: (*x2, y2 + NODE_H / 2.0),
                label_chars: label.chars().count(),
            };
            Some((e, label, curve))
        })
        .collect();
    let curves: Vec<EdgeCurve> = drawn.iter().map(|(_, _, c)| c.clone()).collect();
    let spots = label_spots(&curves, &placed);
    let edges = drawn
        .iter()
        .zip(spots)
        .map(|((e, label, curve), (label_x, label_y))| EdgeView {
            path: curve.path(),
            erroring: e.errors > 0,
            async_hop: e.kind == "messaging",
            label_x,
            label_y,
            label: label.clone(),
            title: format!(
                "{} → {} ({}): {} calls, {} errors",
                e.caller, e.callee, e.kind, e.calls, e.errors
            ),
            caller: e.caller.clone(),
            callee: e.callee.clone(),
        })
        .collect();
    render(
        &MapPage {
            title: "Service map".into(),
            active: "map",
            save: chrome.save_form(window.start, window.end),
            window,
            ranges: RANGES,
            width,
            height,
            node_w: NODE_W,
            node_h: NODE_H,
            nodes,
            edges,
            events,
        },
        StatusCode::OK,
    )
}

/// What an edge's label reads: calls per minute · error % · p95.
fn edge_label(e: &crate::query::services::MapEdge) -> String {
    format!(
        "{} · {} · p95 {}",
        format::rate(e.calls_per_second),
        format::percent(e.error_rate),
        format::opt_duration(e.p95_nano)
    )
}
