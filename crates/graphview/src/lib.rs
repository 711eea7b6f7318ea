#![doc = include_str!("../README.md")]

mod dot;
mod error;
mod html;
mod layout;
mod model;
mod svg;

use std::path::Path;

pub use dot::dot;
pub use error::{Error, Result};
pub use html::html;
pub use model::{
    AUTO_COLLAPSE_NODES, DEFAULT_SIGNATURE, GraphView, NodeKind, Selection, ViewEdge, ViewNode,
};
pub use svg::svg;

/// The file formats [`render`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SVG, laid out in Rust.
    Svg,
    /// Graphviz DOT.
    Dot,
    /// A self-contained HTML page (SVG inline, pan, zoom, attrs on click).
    Html,
}

impl Format {
    /// The format a file name's extension asks for (`.svg`, `.dot` or
    /// `.gv`, `.html` or `.htm`).
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("dot" | "gv") => Ok(Format::Dot),
            Some("html" | "htm") => Ok(Format::Html),
            _ => Err(Error::UnknownFormat {
                name: path.display().to_string(),
            }),
        }
    }
}

/// `view` in `format`.
pub fn render(view: &GraphView, format: Format) -> String {
    match format {
        Format::Svg => svg(view),
        Format::Dot => dot(view),
        Format::Html => html(view),
    }
}
