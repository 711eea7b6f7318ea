//! SVG: the layered layout drawn as boxes, arrows and shape labels.

use std::fmt::Write as _;

use crate::layout::{Layout, layout};
use crate::model::{GraphView, NodeKind, ViewNode};

const CHAR_WIDTH: f64 = 7.2;
const LINE_HEIGHT: f64 = 15.0;
const MAX_LABEL: usize = 36;

/// The two lines of a node's box.
pub(crate) fn lines(node: &ViewNode) -> (String, String) {
    let short = |name: &str| {
        let tail = name.trim_end_matches('/');
        let tail = tail.rsplit('/').next().unwrap_or(tail);
        truncate(tail)
    };
    match &node.kind {
        NodeKind::Op => (short(&node.name), node.op.clone()),
        NodeKind::Variable => (short(&node.name), format!("{} (variable)", node.op)),
        NodeKind::Input(aliases) => (
            format!("input {}", truncate(&aliases.join(", "))),
            format!("{} {}", node.op, short(&node.name)),
        ),
        NodeKind::Output(alias) => (format!("output {}", truncate(alias)), String::new()),
        NodeKind::Scope(count) => (
            truncate(&node.name),
            format!("scope, {count} node{}", if *count == 1 { "" } else { "s" }),
        ),
    }
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_LABEL {
        return text.to_owned();
    }
    let tail: String = text.chars().rev().take(MAX_LABEL - 1).collect();
    format!("…{}", tail.chars().rev().collect::<String>())
}

fn size(node: &ViewNode) -> (f64, f64) {
    let (a, b) = lines(node);
    let chars = a.chars().count().max(b.chars().count()) as f64;
    let rows = if b.is_empty() { 1.0 } else { 2.0 };
    (chars * CHAR_WIDTH + 20.0, rows * LINE_HEIGHT + 12.0)
}

/// The layout of `view`'s boxes.
pub(crate) fn layout_of(view: &GraphView) -> Layout {
    let sizes: Vec<(f64, f64)> = view.nodes.iter().map(size).collect();
    let edges: Vec<(usize, usize)> = view.edges.iter().map(|e| (e.from, e.to)).collect();
    layout(&sizes, &edges)
}

/// Escapes text for XML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

fn style(kind: &NodeKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        NodeKind::Op => ("op", "#eef3fb", "#4a6fa5"),
        NodeKind::Variable => ("variable", "#fff2cc", "#b8860b"),
        NodeKind::Input(_) => ("input", "#e2f4e2", "#2e7d32"),
        NodeKind::Output(_) => ("output", "#fde2e2", "#c62828"),
        NodeKind::Scope(_) => ("scope", "#f2f2f2", "#666666"),
    }
}

/// The view as a standalone SVG document.
pub fn svg(view: &GraphView) -> String {
    let layout = layout_of(view);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.1} {h:.1}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12">"#,
        w = layout.width,
        h = layout.height,
    );
    let _ = writeln!(out, "<title>{}</title>", escape(&view.title));
    out.push_str(concat!(
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">"##,
        r##"<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>"##,
        "\n",
        r##"<rect class="background" x="0" y="0" width="100%" height="100%" fill="#ffffff"/>"##,
        "\n<g class=\"edges\">\n"
    ));
    for (edge, points) in view.edges.iter().zip(&layout.edges) {
        let Some(&(x0, y0)) = points.first() else {
            continue;
        };
        let mut d = format!("M {x0:.1} {y0:.1}");
        for &(x, y) in &points[1..] {
            let _ = write!(d, " L {x:.1} {y:.1}");
        }
        let dash = if edge.control {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r##"<path class="edge" d="{d}" fill="none" stroke="#555" stroke-width="1.2"{dash} marker-end="url(#arrow)"/>"##
        );
        if !edge.label.is_empty() {
            let (x1, y1) = points.get(1).copied().unwrap_or((x0, y0));
            let (lx, ly) = (
                (x0 + x1) / 2.0 + 4.0,
                y0 + 18.0_f64.min((y1 - y0) / 2.0 + 4.0),
            );
            let _ = writeln!(
                out,
                r##"<text class="shape" x="{lx:.1}" y="{ly:.1}" fill="#777" font-size="10">{}</text>"##,
                escape(&edge.label)
            );
        }
    }
    out.push_str("</g>\n<g class=\"nodes\">\n");
    for (i, (node, &(cx, cy))) in view.nodes.iter().zip(&layout.centers).enumerate() {
        let (w, h) = size(node);
        let (class, fill, stroke) = style(&node.kind);
        let (a, b) = lines(node);
        let dash = if matches!(node.kind, NodeKind::Scope(_)) {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let rx = if matches!(node.kind, NodeKind::Input(_) | NodeKind::Output(_)) {
            14
        } else {
            4
        };
        let _ = writeln!(
            out,
            r#"<g class="node {class}" id="n{i}" data-name="{name}" data-op="{op}"><title>{name} ({op})</title><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="{rx}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>"#,
            name = escape(&node.name),
            op = escape(&node.op),
            x = cx - w / 2.0,
            y = cy - h / 2.0,
        );
        let first_y = if b.is_empty() { cy + 4.0 } else { cy - 3.0 };
        let _ = writeln!(
            out,
            r#"<text class="label" x="{cx:.1}" y="{first_y:.1}" text-anchor="middle" font-weight="bold">{}</text>"#,
            escape(&a)
        );
        if !b.is_empty() {
            let _ = writeln!(
                out,
                r##"<text class="op" x="{cx:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
                cy + LINE_HEIGHT - 3.0,
                escape(&b)
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n</svg>\n");
    out
}
