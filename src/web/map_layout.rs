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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::services::{MapEdge, MapNode};

    fn node(name: &str) -> MapNode {
        MapNode {
            name: name.into(),
            instrumented: true,
            red: None,
            down_instances: 0,
        }
    }

    fn edge(caller: &str, callee: &str) -> MapEdge {
        MapEdge {
            caller: caller.into(),
            callee: callee.into(),
            kind: "rpc".into(),
            calls: 1,
            errors: 0,
            calls_per_second: 0.0,
            error_rate: 0.0,
            p95_nano: None,
        }
    }

    fn placed<'a>(nodes: &'a [Placed], name: &str) -> &'a Placed {
        nodes.iter().find(|p| p.name == name).unwrap()
    }

    #[test]
    fn callers_sit_left_of_callees_and_a_layer_stacks_without_overlap() {
        let map = ServiceMap {
            nodes: ["frontend", "cart", "payment", "postgresql"]
                .map(node)
                .into(),
            edges: vec![
                edge("frontend", "cart"),
                edge("frontend", "payment"),
                edge("cart", "payment"),
                edge("payment", "postgresql"),
            ],
        };
        let (nodes, width, height) = layout(&map);
        assert_eq!(nodes.len(), 4);
        let x = |n: &str| placed(&nodes, n).x;
        // The longest path decides the layer: payment is called by cart, so it sits right
        // of cart although frontend calls it too.
        assert!(x("frontend") < x("cart"));
        assert!(x("cart") < x("payment"));
        assert!(x("payment") < x("postgresql"));
        for p in &nodes {
            assert!(
                p.x + NODE_W <= width && p.y + NODE_H <= height,
                "{p:?} inside"
            );
        }
    }

    #[test]
    fn a_cycle_still_places_every_node_once() {
        let map = ServiceMap {
            nodes: ["a", "b"].map(node).into(),
            edges: vec![edge("a", "b"), edge("b", "a"), edge("a", "a")],
        };
        let (nodes, _, _) = layout(&map);
        let mut names: Vec<&str> = nodes.iter().map(|p| p.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["a", "b"]);
        let (a, b) = (placed(&nodes, "a"), placed(&nodes, "b"));
        assert!(a.x != b.x || a.y != b.y, "no two nodes on one spot");
    }
}
