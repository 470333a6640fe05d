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

/// Edge labels' font size is 10 px; a character is at most this wide on average, so a label's
/// box is `chars × LABEL_CHAR_W` wide and `LABEL_H` tall around its baseline.
const LABEL_CHAR_W: f64 = 6.0;
const LABEL_H: f64 = 13.0;

/// An edge's curve (the cubic Bézier the map draws from caller to callee) and its label.
#[derive(Debug, Clone)]
pub struct EdgeCurve {
    pub from: (f64, f64),
    pub to: (f64, f64),
    pub label_chars: usize,
}

impl EdgeCurve {
    /// The curve's control points sit at the middle of the gap, level with each end.
    fn mid_x(&self) -> f64 {
        (self.from.0 + self.to.0) / 2.0
    }

    /// The SVG path of the curve.
    pub fn path(&self) -> String {
        let ((sx, sy), (tx, ty), mid) = (self.from, self.to, self.mid_x());
        format!("M{sx:.1},{sy:.1} C{mid:.1},{sy:.1} {mid:.1},{ty:.1} {tx:.1},{ty:.1}")
    }

    /// The point at `t` (0 at the caller, 1 at the callee) on the curve.
    fn at(&self, t: f64) -> (f64, f64) {
        let u = 1.0 - t;
        let (a, b, c) = (u * u * u, 3.0 * u * u * t + 3.0 * u * t * t, t * t * t);
        (
            a * self.from.0 + b * self.mid_x() + c * self.to.0,
            (a + 3.0 * u * u * t) * self.from.1 + (3.0 * u * t * t + c) * self.to.1,
        )
    }
}

/// A box in SVG units: left, top, right, bottom.
type Rect = (f64, f64, f64, f64);

fn overlaps(a: &Rect, b: &Rect) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// Where each edge's label goes (centre x, baseline y), so that no two labels overlap, no
/// label covers a node and, wherever the map leaves room, no other edge crosses a label: the
/// first spot beside the edge's own curve (its middle first, then outwards) that is free,
/// else the middle moved up or down a line at a time. Labels stay by their curve wherever
/// they can, so a reader can tell which edge a label names.
pub fn label_spots(curves: &[EdgeCurve], nodes: &[Placed]) -> Vec<(f64, f64)> {
    const SAMPLES: usize = 80;
    let mut taken: Vec<Rect> = nodes
        .iter()
        .map(|n| (n.x, n.y, n.x + NODE_W, n.y + NODE_H))
        .collect();
    // Points along every curve, to keep other edges from running through a label.
    let traced: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|c| {
            (0..=SAMPLES)
                .map(|i| c.at(i as f64 / SAMPLES as f64))
                .collect()
        })
        .collect();
    let mut spots = Vec::with_capacity(curves.len());
    for (own, curve) in curves.iter().enumerate() {
        let half = curve.label_chars as f64 * LABEL_CHAR_W / 2.0;
        let box_at = |(x, y): (f64, f64)| (x - half, y - LABEL_H + 3.0, x + half, y + 3.0);
        let (mx, my) = curve.at(0.5);
        // Along the curve from its middle outwards (t = 0.5, 0.45, 0.55, … 0.15, 0.85),
        // just above the line or just below it.
        let on_curve = || {
            (0..=14).flat_map(move |i| {
                let t = 0.5 + if i % 2 == 0 { 1.0 } else { -1.0 } * f64::from((i + 1) / 2) * 0.05;
                let (x, y) = curve.at(t);
                [(x, y - 4.0), (x, y + LABEL_H - 1.0)]
            })
        };
        let stacked = (1..=40).flat_map(|step| {
            let dy = step as f64 * LABEL_H;
            [(mx, my - 4.0 - dy), (mx, my - 4.0 + dy)]
        });
        let clear_of_boxes = |b: &Rect| !taken.iter().any(|t| overlaps(b, t));
        let clear_of_edges = |b: &Rect| {
            traced
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != own)
                .all(|(_, points)| !points.iter().any(|p| inside(p, b)))
        };
        // On the curve and clear of everything; else on the curve where only other edges
        // cross it (the label's halo keeps it readable); else stacked off the middle.
        let spot = on_curve()
            .find(|spot| {
                let b = box_at(*spot);
                clear_of_boxes(&b) && clear_of_edges(&b)
            })
            .or_else(|| on_curve().find(|spot| clear_of_boxes(&box_at(*spot))))
            .or_else(|| stacked.clone().find(|spot| clear_of_boxes(&box_at(*spot))))
            .unwrap_or((mx, my - 4.0));
        taken.push(box_at(spot));
        spots.push(spot);
    }
    spots
}

fn inside(p: &(f64, f64), r: &Rect) -> bool {
    r.0 <= p.0 && p.0 <= r.2 && r.1 <= p.1 && p.1 <= r.3
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

    #[test]
    fn edge_labels_never_overlap_each_other_or_a_node() {
        // A fan-out and a fan-in through one gap: every label's middle spot is the same
        // column, and several would land on one another.
        let callees = ["cart", "payment", "shipping", "search", "ads"];
        let mut names = vec!["frontend", "gateway"];
        names.extend(callees);
        let mut edges: Vec<MapEdge> = callees.iter().map(|c| edge("frontend", c)).collect();
        edges.extend(callees.iter().map(|c| edge("gateway", c)));
        edges.push(edge("frontend", "gateway"));
        let map = ServiceMap {
            nodes: names.iter().map(|n| node(n)).collect(),
            edges,
        };
        let (nodes, _, _) = layout(&map);
        let at = |n: &str| placed(&nodes, n);
        let curves: Vec<EdgeCurve> = map
            .edges
            .iter()
            .map(|e| EdgeCurve {
                from: (at(&e.caller).x + NODE_W, at(&e.caller).y + NODE_H / 2.0),
                to: (at(&e.callee).x, at(&e.callee).y + NODE_H / 2.0),
                label_chars: "1.2k/min · 12.5% · p95 1.25 s".chars().count(),
            })
            .collect();
        let spots = label_spots(&curves, &nodes);
        assert_eq!(spots.len(), curves.len());
        let boxes: Vec<Rect> = spots
            .iter()
            .zip(&curves)
            .map(|((x, y), c)| {
                let half = c.label_chars as f64 * LABEL_CHAR_W / 2.0;
                (x - half, y - LABEL_H + 3.0, x + half, y + 3.0)
            })
            .collect();
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                assert!(!overlaps(a, b), "labels {a:?} and {b:?} overlap");
            }
            for n in &nodes {
                let node_box = (n.x, n.y, n.x + NODE_W, n.y + NODE_H);
                assert!(!overlaps(a, &node_box), "label {a:?} covers {}", n.name);
            }
        }
        // A lone edge's label sits on the middle of its curve.
        let lone = &curves[..1];
        let (x, y) = label_spots(lone, &[])[0];
        let (mx, my) = lone[0].at(0.5);
        assert_eq!((x, y), (mx, my - 4.0));
    }
}
