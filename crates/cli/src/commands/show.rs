//! `savedmodel show`: a drop-in for `saved_model_cli show`.
//!
//! Same flags (`--dir DIR`, `--all`, `--tag_set`, `--signature_def`,
//! `--list_ops`; a positional DIR too), same text line for line (the library's
//! [`savedmodel::show`] documents the two differences), plus `--json`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use savedmodel::SavedModel;
use savedmodel::proto::tensorflow::{TensorInfo, tensor_info::Encoding};
use savedmodel::reader::MetaGraph;
use savedmodel::show;
use serde_json::{Map, Value, json};

const SHOW_HELP: &str = "\
Prints what `saved_model_cli show` prints for the same flags, without
TensorFlow. The op set is printed sorted; the TensorFlow 2 \"Concrete
Functions\" section of --all, which saved_model_cli produces by loading the
model into TensorFlow, is rebuilt from the object graph (best effort).

Examples:
  savedmodel show /models/mnist/1
  savedmodel show --dir /models/mnist/1 --tag_set serve
  savedmodel show --dir /models/mnist/1 --tag_set serve --signature_def serving_default
  savedmodel show --dir /models/mnist/1 --all
  savedmodel show /models/mnist/1 --all --json";

/// `savedmodel show`.
#[derive(Debug, Args)]
#[command(after_help = SHOW_HELP)]
pub(crate) struct ShowArgs {
    /// The SavedModel directory (or use --dir); also s3://bucket/prefix/N
    /// or gs://..., downloaded to a temporary directory first.
    #[arg(value_name = "DIR", conflicts_with = "dir_flag")]
    dir: Option<PathBuf>,
    /// The SavedModel directory.
    #[arg(long = "dir", value_name = "DIR", id = "dir_flag")]
    dir_flag: Option<PathBuf>,
    /// Show everything: every MetaGraph, its signatures and its ops.
    #[arg(long)]
    all: bool,
    /// The MetaGraph to show, by its comma-separated tags (all of them).
    #[arg(long = "tag_set", visible_alias = "tag-set", value_name = "TAGS")]
    tag_set: Option<String>,
    /// The signature to show inputs and outputs of (needs --tag_set).
    #[arg(
        long = "signature_def",
        visible_alias = "signature-def",
        value_name = "KEY",
        requires = "tag_set"
    )]
    signature_def: Option<String>,
    /// Also list the ops the MetaGraph uses (needs --tag_set or --all).
    #[arg(long = "list_ops", visible_alias = "list-ops")]
    list_ops: bool,
    /// Print JSON instead of saved_model_cli's text.
    #[arg(long)]
    json: bool,
}

/// Runs `savedmodel show`, writing to `out`.
pub(crate) fn run(args: ShowArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let Some(dir) = args.dir.as_ref().or(args.dir_flag.as_ref()) else {
        bail!("give the SavedModel directory, as DIR or --dir DIR");
    };
    // A directory in a bucket is downloaded to a temporary one first.
    let (local, _download) = super::remote::local_saved_model(dir)?;
    let model = SavedModel::open(&local).with_context(|| format!("opening {}", dir.display()))?;
    if args.json {
        let value = json_output(&args, &model)?;
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.all {
        out.write_all(show::all(&model).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(tag_set) = &args.tag_set else {
        if args.list_ops {
            writeln!(
                out,
                "--list_ops must be paired with a tag-set or with --all."
            )?;
        }
        out.write_all(show::tag_sets(&model).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    };
    let tags = parse_tag_set(tag_set)?;
    let meta_graph = model.meta_graph(&tags)?;
    if args.list_ops {
        out.write_all(show::ops(&meta_graph).as_bytes())?;
    }
    match &args.signature_def {
        None => out.write_all(show::signature_keys(&meta_graph).as_bytes())?,
        Some(key) => out.write_all(show::signature(&meta_graph, key)?.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Splits `--tag_set` at commas, trimming each tag and dropping empty ones,
/// as saved_model_cli does; at least one tag must remain.
pub(crate) fn parse_tag_set(text: &str) -> anyhow::Result<Vec<String>> {
    let tags: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if tags.is_empty() {
        bail!("--tag_set must contain at least one non-empty tag");
    }
    Ok(tags)
}

fn json_output(args: &ShowArgs, model: &SavedModel) -> anyhow::Result<Value> {
    if args.all {
        let mut meta_graphs = model.meta_graphs();
        meta_graphs.sort_by(|a, b| a.tags().cmp(b.tags()));
        let list: Vec<Value> = meta_graphs.iter().map(meta_graph_json).collect();
        return Ok(json!({ "meta_graphs": list }));
    }
    let Some(tag_set) = &args.tag_set else {
        let mut sets = model.tag_sets();
        sets.sort();
        for set in &mut sets {
            set.sort();
        }
        return Ok(json!({ "tag_sets": sets }));
    };
    let meta_graph = model.meta_graph(&parse_tag_set(tag_set)?)?;
    let mut value = Map::new();
    value.insert("tags".into(), json!(meta_graph.tags()));
    if args.list_ops {
        value.insert("ops".into(), json!(meta_graph.ops_used()));
    }
    match &args.signature_def {
        None => {
            value.insert("signature_keys".into(), json!(meta_graph.signature_keys()));
        }
        Some(key) => {
            let signature = meta_graph.signature(key)?;
            value.insert("signature_def".into(), json!(key));
            value.insert("signature".into(), signature_json(&signature));
        }
    }
    Ok(Value::Object(value))
}

fn meta_graph_json(meta_graph: &MetaGraph<'_>) -> Value {
    let signatures: Map<String, Value> = meta_graph
        .signatures()
        .map(|s| (s.key().to_owned(), signature_json(&s)))
        .collect();
    json!({
        "tags": meta_graph.tags(),
        "signature_defs": signatures,
        "ops": meta_graph.ops_used(),
    })
}

fn signature_json(signature: &savedmodel::reader::Signature<'_>) -> Value {
    let def = signature.def();
    let tensors = |map: &std::collections::BTreeMap<String, TensorInfo>| -> Map<String, Value> {
        map.iter()
            .map(|(alias, info)| (alias.clone(), tensor_info_json(info)))
            .collect()
    };
    json!({
        "inputs": tensors(&def.inputs),
        "outputs": tensors(&def.outputs),
        "method_name": def.method_name,
    })
}

fn tensor_info_json(info: &TensorInfo) -> Value {
    let shape = match &info.tensor_shape {
        Some(s) if s.unknown_rank => Value::Null,
        Some(s) => json!(s.dim.iter().map(|d| d.size).collect::<Vec<_>>()),
        None => json!([]),
    };
    let mut value = Map::new();
    value.insert("dtype".into(), json!(show::dtype_name(info.dtype)));
    value.insert("shape".into(), shape);
    match &info.encoding {
        Some(Encoding::Name(name)) => {
            value.insert("name".into(), json!(name));
        }
        Some(Encoding::CooSparse(coo)) => {
            value.insert(
                "coo_sparse".into(),
                json!({
                    "values_tensor_name": coo.values_tensor_name,
                    "indices_tensor_name": coo.indices_tensor_name,
                    "dense_shape_tensor_name": coo.dense_shape_tensor_name,
                }),
            );
        }
        Some(Encoding::CompositeTensor(composite)) => {
            let components: Vec<Value> =
                composite.components.iter().map(tensor_info_json).collect();
            value.insert(
                "composite_tensor".into(),
                json!({ "components": components }),
            );
        }
        None => {}
    }
    Value::Object(value)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    /// `saved_model_half_plus_two_cpu/00000123` of the shared fixtures
    /// (`$SAVEDMODEL_FIXTURES`, else `../shared/fixtures/tensorflow_serving`
    /// beside the workspace).
    pub(crate) fn fixture() -> PathBuf {
        let base = std::env::var_os("SAVEDMODEL_FIXTURES").map_or_else(
            || {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/fixtures/tensorflow_serving")
            },
            PathBuf::from,
        );
        base.join("saved_model_half_plus_two_cpu/00000123")
    }

    fn run_args(args: &[&str]) -> anyhow::Result<String> {
        let cli = Cli::try_parse_from(args)?;
        let Command::Show(show) = cli.command else {
            panic!("not a show command");
        };
        let mut out = Vec::new();
        run(show, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn modes_print_what_the_library_renders() {
        let dir = fixture();
        let d = dir.to_str().unwrap();
        let model = SavedModel::open(&dir).unwrap();
        assert_eq!(
            run_args(&["savedmodel", "show", d]).unwrap(),
            show::tag_sets(&model)
        );
        assert_eq!(
            run_args(&["savedmodel", "show", "--dir", d, "--all"]).unwrap(),
            show::all(&model)
        );
        let serve = model.meta_graph(&["serve"]).unwrap();
        assert_eq!(
            run_args(&["savedmodel", "show", "--dir", d, "--tag_set", " serve,"]).unwrap(),
            show::signature_keys(&serve)
        );
        assert_eq!(
            run_args(&[
                "savedmodel",
                "show",
                d,
                "--tag_set",
                "serve",
                "--signature_def",
                "serving_default"
            ])
            .unwrap(),
            show::signature(&serve, "serving_default").unwrap()
        );
        let with_ops =
            run_args(&["savedmodel", "show", d, "--tag_set", "serve", "--list_ops"]).unwrap();
        assert!(with_ops.starts_with("The MetaGraph with tag set ['serve'] contains"));
    }

    #[test]
    fn errors_name_what_is_missing() {
        let dir = fixture();
        let d = dir.to_str().unwrap();
        let err = run_args(&["savedmodel", "show", d, "--tag_set", "gpu"]).unwrap_err();
        assert!(format!("{err:#}").contains("no meta graph with tag set { gpu }"));
        let err = run_args(&[
            "savedmodel",
            "show",
            d,
            "--tag_set",
            "serve",
            "--signature_def",
            "nope",
        ])
        .unwrap_err();
        assert!(format!("{err:#}").contains("no signature 'nope'"));
        let err = run_args(&["savedmodel", "show", d, "--tag_set", " , "]).unwrap_err();
        assert!(format!("{err:#}").contains("at least one non-empty tag"));
        assert!(run_args(&["savedmodel", "show", d, "--dir", d]).is_err());
        assert!(run_args(&["savedmodel", "show"]).is_err());
    }

    #[test]
    fn json_output_has_the_same_content() {
        let dir = fixture();
        let d = dir.to_str().unwrap();
        let text = run_args(&["savedmodel", "show", d, "--all", "--json"]).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let meta_graph = &value["meta_graphs"][0];
        assert_eq!(meta_graph["tags"], json!(["serve"]));
        let x = &meta_graph["signature_defs"]["serving_default"]["inputs"]["x"];
        assert_eq!(
            x,
            &json!({"dtype": "DT_FLOAT", "shape": [-1, 1], "name": "x:0"})
        );
        assert_eq!(
            meta_graph["signature_defs"]["classify_x_to_y"]["inputs"]["inputs"]["shape"],
            Value::Null
        );
        assert!(
            meta_graph["ops"]
                .as_array()
                .unwrap()
                .contains(&json!("RestoreV2"))
        );
        let text = run_args(&["savedmodel", "show", d, "--json"]).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"tag_sets": [["serve"]]})
        );
    }
}
