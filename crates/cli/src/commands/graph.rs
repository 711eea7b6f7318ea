//! `savedmodel graph`: draw the graph a signature runs as SVG, DOT or
//! self-contained HTML ([`savedmodel_graphview`] does the work).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use savedmodel::SavedModel;
use savedmodel_graphview::{Format, GraphView, Selection, render};
use savedmodel_staged::StagedFile;

use crate::commands::show::parse_tag_set;

const GRAPH_HELP: &str = "\
Draws the nodes the signature's outputs depend on (--all for every node),
with op types, shapes on the edges, variables marked and the signature's
inputs and outputs labelled. Name scopes deeper than --depth parts are
collapsed into one box each (graphs over 300 nodes are collapsed
automatically). The format follows the output's extension: .svg (laid out
here, no Graphviz needed), .dot (for Graphviz), .html (one self-contained
file: pan, zoom, click a node for its attrs; nothing loaded from the
network).

Examples:
  savedmodel graph /models/x/1 -o graph.svg
  savedmodel graph /models/x/1 --signature predict_images -o graph.html
  savedmodel graph /models/x/1 --all --depth 2 -o graph.dot";

/// `savedmodel graph`.
#[derive(Debug, Args)]
#[command(after_help = GRAPH_HELP)]
pub(crate) struct GraphArgs {
    /// The SavedModel directory.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The output file: .svg, .dot or .html.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// The signature to draw (default serving_default, else the first).
    #[arg(long, value_name = "KEY")]
    signature: Option<String>,
    /// The MetaGraph, by its comma-separated tags.
    #[arg(long = "tag-set", visible_alias = "tag_set", default_value = "serve")]
    tag_set: String,
    /// Draw every node of the graph, not only what the signature runs.
    #[arg(long)]
    all: bool,
    /// Collapse name scopes deeper than this many `/`-separated parts.
    #[arg(long, value_name = "N")]
    depth: Option<usize>,
}

/// Runs `savedmodel graph`, writing a one-line summary to `out`.
pub(crate) fn run(args: GraphArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let format = Format::from_path(&args.output)?;
    let model =
        SavedModel::open(&args.dir).with_context(|| format!("opening {}", args.dir.display()))?;
    let tags = parse_tag_set(&args.tag_set)?;
    let meta = model.meta_graph(&tags)?;
    let mut selection = Selection::default().with_all(args.all);
    if let Some(key) = args.signature {
        selection = selection.with_signature(key);
    }
    if let Some(depth) = args.depth {
        selection = selection.with_depth(depth);
    }
    let view = GraphView::from_meta_graph(&meta, &selection)?;
    let text = render(&view, format);
    let staged = StagedFile::create(&args.output)?;
    let mut file = staged.file();
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", args.output.display()))?;
    staged.commit(true)?;
    writeln!(
        out,
        "{}: {} nodes, {} edges ({}) -> {}",
        args.dir.display(),
        view.nodes.len(),
        view.edges.len(),
        view.title,
        args.output.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
