//! `savedmodel diff`: versions of a model built with the library, differing
//! in a bias, an asset, an added output, a narrowed input and a removed
//! signature; the report (library and `--json`) and the exit statuses
//! (0 identical, 1 compatible, 3 breaking, 2 error) of the real binary.

use std::fs;
use std::path::Path;
use std::process::Command;

use savedmodel::{DType, Graph, MetaGraphBuilder, SavedModelBuilder, Tensor};
use savedmodel_diff::{Area, ChangeKind, DiffOptions, Verdict, diff};
use savedmodel_tests::paths::savedmodel_bin;
use serde_json::Value;

/// What differs between the versions written by [`write_model`].
#[derive(Clone, Copy)]
struct Version {
    bias: f32,
    batch: i64,
    vocab: &'static str,
    extra_output: bool,
    second_signature: bool,
}

const V1: Version = Version {
    bias: 0.5,
    batch: -1,
    vocab: "a\nb\n",
    extra_output: false,
    second_signature: true,
};

/// `y = x W + b` with a vocabulary asset, an `assets.extra` note and
/// optionally a second signature and a second output.
fn write_model(dir: &Path, v: Version) {
    let scratch = tempfile::tempdir().unwrap();
    let vocab = scratch.path().join("vocab.txt");
    fs::write(&vocab, v.vocab).unwrap();
    let mut g = Graph::new();
    let x = g.placeholder("x", DType::Float, [v.batch, 2]).unwrap();
    let w = g
        .variable(
            "dense/kernel",
            Tensor::new(&[2, 2], &[1.0f32, 0.0, 0.0, 1.0]).unwrap(),
        )
        .unwrap();
    let b = g
        .variable(
            "dense/bias",
            Tensor::new(&[2], &[v.bias, 2.0 * v.bias]).unwrap(),
        )
        .unwrap();
    g.asset("vocab_path", &vocab).unwrap();
    let xw = g.matmul("dense/MatMul", &x, w.value()).unwrap();
    let y = g.add("y", &xw, b.value()).unwrap();
    let mut outputs = vec![("y", &y)];
    let z;
    if v.extra_output {
        z = g.relu("z", &y).unwrap();
        outputs.push(("z", &z));
    }
    let mut meta = MetaGraphBuilder::new(g, &["serve"]);
    meta.predict_signature("serving_default", &[("x", &x)], &outputs)
        .unwrap();
    if v.second_signature {
        meta.predict_signature("raw", &[("x", &x)], &[("y", &y)])
            .unwrap();
    }
    let mut builder = SavedModelBuilder::new();
    builder.add_meta_graph(meta).unwrap();
    builder.asset_extra("notes.txt", v.vocab).unwrap();
    builder.write_to(dir).unwrap();
}

/// A base path with version 1 (V1), 2 (compatible changes) and 3 (breaking
/// ones), and a copy of version 1 built again outside it.
fn models(root: &Path) {
    let base = root.join("m");
    write_model(&base.join("1"), V1);
    write_model(
        &base.join("2"),
        Version {
            bias: 0.75,
            vocab: "a\nb\nc\n",
            extra_output: true,
            ..V1
        },
    );
    write_model(
        &base.join("3"),
        Version {
            bias: 0.75,
            batch: 8,
            vocab: "a\nb\nc\n",
            extra_output: true,
            second_signature: false,
        },
    );
    write_model(&root.join("again"), V1);
}

fn run(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(savedmodel_bin())
        .arg("diff")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn diff_reports_changes_with_breaking_classification() {
    let tmp = tempfile::tempdir().unwrap();
    models(tmp.path());
    let base = tmp.path().join("m");

    let same = diff(
        &base.join("1"),
        &tmp.path().join("again"),
        DiffOptions::default(),
    )
    .unwrap();
    assert_eq!(same.verdict, Verdict::Identical, "{same}");
    assert!(same.changes.is_empty());

    let compatible = diff(
        &base.join("1"),
        &base.join("2"),
        DiffOptions::default().with_values(true),
    )
    .unwrap();
    assert_eq!(compatible.verdict, Verdict::Compatible, "{compatible}");
    let subjects: Vec<(Area, ChangeKind, &str)> = compatible
        .changes
        .iter()
        .map(|c| (c.area, c.kind, c.subject.as_str()))
        .collect();
    assert_eq!(
        subjects,
        [
            (
                Area::Signature,
                ChangeKind::Added,
                "serve/serving_default output z"
            ),
            (Area::Variable, ChangeKind::Changed, "dense/bias"),
            (Area::Op, ChangeKind::Added, "serve/Relu"),
            (Area::Asset, ChangeKind::Changed, "vocab.txt"),
            (Area::AssetExtra, ChangeKind::Changed, "notes.txt"),
        ],
        "{compatible}"
    );
    let bias = compatible.in_area(Area::Variable).next().unwrap();
    let values = bias.values.unwrap();
    assert_eq!((values.elements, values.differing), (2, 2));
    assert_eq!(values.max_abs, 0.5);
    assert!((values.max_rel - 1.0 / 3.0).abs() < 1e-12, "{values:?}");

    let breaking = diff(&base.join("2"), &base.join("3"), DiffOptions::default()).unwrap();
    assert_eq!(breaking.verdict, Verdict::Breaking, "{breaking}");
    let flagged: Vec<(&str, bool)> = breaking
        .changes
        .iter()
        .map(|c| (c.subject.as_str(), c.breaking))
        .collect();
    assert_eq!(
        flagged,
        [
            ("serve/raw", true),
            ("serve/serving_default input x", true),
            // Outputs follow the batch: narrowed, which clients accept.
            ("serve/serving_default output y", false),
            ("serve/serving_default output z", false),
        ],
        "{breaking}"
    );
    let x = &breaking.changes[1];
    assert_eq!(x.detail, "shape (-1, 2) -> (8, 2) (narrowed)");
    // The same change read the other way widens the input: compatible.
    let back = diff(&base.join("3"), &base.join("2"), DiffOptions::default()).unwrap();
    let x = back
        .changes
        .iter()
        .find(|c| c.subject == "serve/serving_default input x")
        .unwrap();
    assert!(!x.breaking && x.detail.ends_with("(widened)"), "{back}");
}

#[test]
fn diff_exit_status_is_0_1_3_or_2() {
    let tmp = tempfile::tempdir().unwrap();
    models(tmp.path());
    let base = tmp.path().join("m");
    let os = |p: &Path| p.as_os_str().to_owned();

    let (code, text, _) = run(&[&os(&base.join("1")), &os(&tmp.path().join("again"))]);
    assert_eq!(code, 0, "{text}");
    assert!(text.ends_with("identical\n"), "{text}");

    let (code, text, _) = run(&[&os(&base), "1".as_ref(), "2".as_ref(), "--values".as_ref()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("~ variable     dense/bias: value changed"),
        "{text}"
    );
    assert!(text.contains("max abs 5.000000e-1"), "{text}");

    let (code, text, _) = run(&[&os(&base), "--latest".as_ref(), "--json".as_ref()]);
    assert_eq!(code, 3, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["verdict"], "breaking");
    assert_eq!(json["old"], base.join("2").to_str().unwrap());
    assert_eq!(json["new"], base.join("3").to_str().unwrap());
    let raw = &json["changes"][0];
    assert_eq!(
        (
            &raw["area"],
            &raw["kind"],
            &raw["subject"],
            &raw["breaking"]
        ),
        (
            &Value::from("signature"),
            &Value::from("removed"),
            &Value::from("serve/raw"),
            &Value::from(true)
        )
    );

    let (code, _, err) = run(&[&os(&base), "1".as_ref(), "9".as_ref()]);
    assert_eq!(code, 2);
    assert!(err.contains("has no version 9"), "{err}");
    let (code, _, err) = run(&[&os(&base.join("1")), &os(&tmp.path().join("missing"))]);
    assert_eq!(code, 2);
    assert!(err.contains("missing"), "{err}");
}
