//! A layered layout of the service map, computed on the server: callers left of callees,
//! nodes of one layer stacked without overlap.

use std::collections::{BTreeMap, HashMap};

use crate::query::services::ServiceMap;

/// Node box size and spacing, in SVG units.
pub const NODE_W: f64 = 150.0;
pub const NODE_H: f64 = 46.0;
const GAP_X: f64 = 200.0;
const GAP_Y: f64 = 28.0;
const MARGIN: f64 = 20.0;

/// Where a node goes.
#[derive(Debug, Clone)]
pub struct Placed {
    pub name: String,
    pub x: f64,
    pub y: f64,
}

/// Layers by longest path from a node without callers (cycles are cut after `n` rounds).
pub fn layout(map: &ServiceMap) -> (Vec<Placed>, f64, f64) {
    let mut layer: HashMap<&str, usize> = map.nodes.iter().map(|n| (n.name.as_str(), 0)).collect();
    for _ in 0..map.nodes.len() {
        let mut changed = false;
        for e in &map.edges {
            if e.caller == e.callee {
                continue;
            }
            let from = layer.get(e.caller.as_str()).copied().unwrap_or(0);
            let to = layer.entry(e.callee.as_str()).or_insert(0);
            if *to < from + 1 && from + 1 < map.nodes.len() {
                *to = from + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut by_layer: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for n in &map.nodes {
        by_layer
            .entry(layer[n.name.as_str()])
            .or_default()
            .push(&n.name);
    }
    let mut placed = Vec::new();
    let mut height: f64 = 0.0;
    for (l, names) in &by_layer {
        for (i, name) in names.iter().enumerate() {
            let y = MARGIN + i as f64 * (NODE_H + GAP_Y);
            placed.push(Placed {
                name: name.to_string(),
                x: MARGIN + *l as f64 * (NODE_W + GAP_X),
                y,
            });
            height = height.max(y + NODE_H + MARGIN);
        }
    }
    let width = MARGIN * 2.0 + by_layer.len() as f64 * (NODE_W + GAP_X) - GAP_X;
    (placed, width.max(300.0), height.max(100.0))
}
