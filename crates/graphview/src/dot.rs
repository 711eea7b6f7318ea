//! DOT, for users who have Graphviz (`dot -Tpng graph.dot`).

use std::fmt::Write as _;

use crate::model::{GraphView, NodeKind};
use crate::svg::lines;

/// Quotes a DOT ID: `"` and `\` escaped, newlines kept as `\n`.
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The view as a Graphviz `digraph`.
pub fn dot(view: &GraphView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph savedmodel {{");
    let _ = writeln!(out, "  label={};", quote(&view.title));
    let _ = writeln!(out, "  rankdir=TB;");
    let _ = writeln!(
        out,
        "  node [shape=box, style=\"rounded,filled\", fontname=\"monospace\", fontsize=10];"
    );
    let _ = writeln!(out, "  edge [fontname=\"monospace\", fontsize=9];");
    for (i, node) in view.nodes.iter().enumerate() {
        let (a, b) = lines(node);
        let label = if b.is_empty() { a } else { format!("{a}\n{b}") };
        let (fill, extra) = match node.kind {
            NodeKind::Op => ("#eef3fb", ""),
            NodeKind::Variable => ("#fff2cc", ""),
            NodeKind::Input(_) => ("#e2f4e2", ", shape=ellipse"),
            NodeKind::Output(_) => ("#fde2e2", ", shape=ellipse"),
            NodeKind::Scope(_) => ("#f2f2f2", ", style=\"dashed,filled\""),
        };
        let _ = writeln!(
            out,
            "  n{i} [label={}, tooltip={}, fillcolor=\"{fill}\"{extra}];",
            quote(&label),
            quote(&node.name)
        );
    }
    for edge in &view.edges {
        let mut attrs = Vec::new();
        if !edge.label.is_empty() {
            attrs.push(format!("label={}", quote(&edge.label)));
        }
        if edge.control {
            attrs.push("style=dashed".to_owned());
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(out, "  n{} -> n{}{attrs};", edge.from, edge.to);
    }
    out.push_str("}\n");
    out
}
