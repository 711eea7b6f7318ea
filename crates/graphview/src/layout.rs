//! A layered (Sugiyama-style) layout, written here rather than taken from a
//! crate so the drawing needs no Graphviz and we control its cost on large
//! graphs: cycles broken by reversing DFS back edges, longest-path layering,
//! long edges split by dummy nodes, barycenter sweeps against crossings,
//! and a simple coordinate assignment (each node pulled to the mean of its
//! neighbours, overlaps pushed apart in layer order).

/// Horizontal gap between boxes of a layer.
const GAP_X: f64 = 24.0;
/// Vertical gap between layers (room for the shape labels).
const GAP_Y: f64 = 48.0;
/// Margin around the drawing.
pub(crate) const MARGIN: f64 = 20.0;
/// Width given to a dummy node (a bend of a long edge).
const DUMMY_WIDTH: f64 = 8.0;
/// Barycenter sweeps (down and up) and coordinate passes.
const SWEEPS: usize = 8;
/// At most this many dummy nodes: an edge spanning many layers gets one per
/// layer, so a hostile graph (one node feeding thousands of later layers)
/// would otherwise need edges x layers of them. Past the budget, edges are
/// drawn straight.
pub(crate) const MAX_DUMMIES: usize = 200_000;

/// Where everything goes: node centers, edge polylines, the drawing's size.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    pub(crate) centers: Vec<(f64, f64)>,
    pub(crate) edges: Vec<Vec<(f64, f64)>>,
    pub(crate) width: f64,
    pub(crate) height: f64,
}

/// Lays out nodes of the given `(width, height)` with directed `edges`.
pub(crate) fn layout(sizes: &[(f64, f64)], edges: &[(usize, usize)]) -> Layout {
    let n = sizes.len();
    if n == 0 {
        return Layout {
            width: 2.0 * MARGIN,
            height: 2.0 * MARGIN,
            ..Layout::default()
        };
    }
    let edges: Vec<(usize, usize)> = edges
        .iter()
        .copied()
        .filter(|&(a, b)| a < n && b < n && a != b)
        .collect();
    let reversed = back_edges(n, &edges);
    let dag: Vec<(usize, usize)> = edges
        .iter()
        .zip(&reversed)
        .map(|(&(a, b), &r)| if r { (b, a) } else { (a, b) })
        .collect();
    let layer = longest_path_layers(n, &dag);

    // Dummy nodes: every edge becomes a chain of vertices one layer apart.
    let mut width: Vec<f64> = sizes.iter().map(|s| s.0).collect();
    let mut vlayer = layer.clone();
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(dag.len());
    for &(a, b) in &dag {
        let mut chain = vec![a];
        let span = layer[b].saturating_sub(layer[a] + 1);
        let budget_left = width.len() - n + span <= MAX_DUMMIES;
        for l in (layer[a] + 1..layer[b]).filter(|_| budget_left) {
            chain.push(width.len());
            width.push(DUMMY_WIDTH);
            vlayer.push(l);
        }
        chain.push(b);
        chains.push(chain);
    }
    let total = width.len();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); total];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); total];
    for chain in &chains {
        for pair in chain.windows(2) {
            succs[pair[0]].push(pair[1]);
            preds[pair[1]].push(pair[0]);
        }
    }
    let layers_count = vlayer.iter().max().map_or(1, |m| m + 1);
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layers_count];
    for v in 0..total {
        layers[vlayer[v]].push(v);
    }

    // Crossing reduction.
    let mut pos = vec![0usize; total];
    let set_positions = |layers: &Vec<Vec<usize>>, pos: &mut Vec<usize>| {
        for l in layers {
            for (i, &v) in l.iter().enumerate() {
                pos[v] = i;
            }
        }
    };
    set_positions(&layers, &mut pos);
    for sweep in 0..SWEEPS {
        let down = sweep % 2 == 0;
        let order: Vec<usize> = if down {
            (1..layers_count).collect()
        } else {
            (0..layers_count.saturating_sub(1)).rev().collect()
        };
        for l in order {
            let neighbours = if down { &preds } else { &succs };
            let mut keyed: Vec<(f64, usize)> = layers[l]
                .iter()
                .map(|&v| {
                    let ns = &neighbours[v];
                    let key = if ns.is_empty() {
                        pos[v] as f64
                    } else {
                        ns.iter().map(|&u| pos[u] as f64).sum::<f64>() / ns.len() as f64
                    };
                    (key, v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            layers[l] = keyed.into_iter().map(|(_, v)| v).collect();
            for (i, &v) in layers[l].iter().enumerate() {
                pos[v] = i;
            }
        }
    }

    // Coordinates: y by layer, x packed, then pulled toward neighbours.
    let mut layer_height = vec![0.0f64; layers_count];
    for v in 0..n {
        layer_height[vlayer[v]] = layer_height[vlayer[v]].max(sizes[v].1);
    }
    let mut y_of_layer = Vec::with_capacity(layers_count);
    let mut y = MARGIN;
    for h in &layer_height {
        y_of_layer.push(y + h / 2.0);
        y += h + GAP_Y;
    }
    let mut x = vec![0.0f64; total];
    for l in &layers {
        let mut cursor = 0.0;
        for &v in l {
            x[v] = cursor + width[v] / 2.0;
            cursor += width[v] + GAP_X;
        }
    }
    for pass in 0..SWEEPS {
        let neighbours = if pass % 2 == 0 { &preds } else { &succs };
        for l in &layers {
            let desired: Vec<f64> = l
                .iter()
                .map(|&v| {
                    let ns = &neighbours[v];
                    if ns.is_empty() {
                        x[v]
                    } else {
                        ns.iter().map(|&u| x[u]).sum::<f64>() / ns.len() as f64
                    }
                })
                .collect();
            // Push right to remove overlaps, then shift the layer so its
            // mean displacement from the desired places is zero.
            let mut placed = desired.clone();
            for i in 1..l.len() {
                let min = placed[i - 1] + width[l[i - 1]] / 2.0 + GAP_X + width[l[i]] / 2.0;
                if placed[i] < min {
                    placed[i] = min;
                }
            }
            let shift = desired.iter().zip(&placed).map(|(d, p)| d - p).sum::<f64>()
                / l.len().max(1) as f64;
            for (i, &v) in l.iter().enumerate() {
                x[v] = placed[i] + shift;
            }
        }
    }
    let min_x = (0..total)
        .map(|v| x[v] - width[v] / 2.0)
        .fold(f64::INFINITY, f64::min);
    let max_x = (0..total)
        .map(|v| x[v] + width[v] / 2.0)
        .fold(f64::NEG_INFINITY, f64::max);
    let offset = MARGIN - min_x;
    let center = |v: usize| (x[v] + offset, y_of_layer[vlayer[v]]);

    let centers: Vec<(f64, f64)> = (0..n).map(center).collect();
    let edge_points = chains
        .iter()
        .zip(&reversed)
        .map(|(chain, &rev)| {
            let mut points: Vec<(f64, f64)> = Vec::with_capacity(chain.len());
            for (i, &v) in chain.iter().enumerate() {
                let (cx, cy) = center(v);
                if v < n {
                    let half = sizes[v].1 / 2.0;
                    // Leave the source at its bottom, enter the target at its top.
                    let dy = if i == 0 { half } else { -half };
                    points.push((cx, cy + dy));
                } else {
                    points.push((cx, cy));
                }
            }
            if rev {
                points.reverse();
            }
            points
        })
        .collect();
    Layout {
        centers,
        edges: edge_points,
        width: (max_x - min_x) + 2.0 * MARGIN,
        height: y - GAP_Y + MARGIN,
    }
}

/// The edges a depth-first search finds going back to a node on its stack:
/// reversing them leaves a DAG. Iterative, so deep graphs do not overflow.
fn back_edges(n: usize, edges: &[(usize, usize)]) -> Vec<bool> {
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (i, &(a, b)) in edges.iter().enumerate() {
        out[a].push((b, i));
    }
    // 0 unvisited, 1 on the stack, 2 done.
    let mut state = vec![0u8; n];
    let mut back = vec![false; edges.len()];
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if let Some(&(w, e)) = out[v].get(*next) {
                *next += 1;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => back[e] = true,
                    _ => {}
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    back
}

/// Each node's layer: the length of the longest path reaching it; then a
/// source (a constant, a variable) moves down to just above its first
/// consumer instead of waiting in the top layer.
fn longest_path_layers(n: usize, dag: &[(usize, usize)]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in dag {
        indegree[b] += 1;
        out[a].push(b);
    }
    let mut layer = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
    while let Some(v) = ready.pop() {
        for &w in &out[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.push(w);
            }
        }
    }
    let mut has_pred = vec![false; n];
    for &(_, b) in dag {
        has_pred[b] = true;
    }
    for v in (0..n).filter(|&v| !has_pred[v]) {
        if let Some(first) = out[v].iter().map(|&w| layer[w]).min() {
            layer[v] = first.saturating_sub(1);
        }
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_goes_down_and_a_cycle_is_still_laid_out() {
        let sizes = vec![(40.0, 20.0); 3];
        let l = layout(&sizes, &[(0, 1), (1, 2), (2, 0)]);
        assert!(l.centers[0].1 < l.centers[1].1 && l.centers[1].1 < l.centers[2].1);
        assert_eq!(l.edges.len(), 3);
        // The reversed edge still ends at node 0 (at its bottom).
        let last = *l.edges[2].last().unwrap_or(&(0.0, 0.0));
        assert!((last.1 - (l.centers[0].1 + 10.0)).abs() < 1e-9);
    }

    #[test]
    fn boxes_of_a_layer_do_not_overlap() {
        let sizes = vec![(100.0, 20.0); 5];
        let l = layout(&sizes, &[(0, 1), (0, 2), (0, 3), (0, 4)]);
        let mut xs: Vec<f64> = (1..5).map(|i| l.centers[i].0).collect();
        xs.sort_by(f64::total_cmp);
        assert!(xs.windows(2).all(|w| w[1] - w[0] >= 100.0 + GAP_X - 1e-9));
    }
}
