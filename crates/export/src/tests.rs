//! Unit tests of the export pipeline: spec + in-memory weights -> checked
//! model -> SavedModel, read back with this crate's reader and validator.
//! (TensorFlow itself judges the same exports in `tests/it/export.rs`.)

use super::*;
use crate::error::Error;

fn softmax_spec(extra: &str) -> ExportSpec {
    ExportSpec::from_toml(
        &format!(
            r#"
            [model]
            architecture = "softmax_classifier"
            input_width = 3
            {extra}
            [[layers]]
            kernel = "w"
            bias = "b"
            "#
        ),
        "/specs/m.toml",
    )
    .unwrap()
}

fn weights(kernel_shape: &[i64]) -> Weights {
    let mut w = Weights::new();
    let n: i64 = kernel_shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| i as f32 * 0.1 - 0.3).collect();
    w.insert_f32("w", kernel_shape, &values).unwrap();
    w.insert_f32("b", &[2], &[0.5, -0.5]).unwrap();
    w
}

#[test]
fn missing_tensor_is_named_with_suggestions() {
    let spec = softmax_spec("");
    let mut w = Weights::new();
    w.insert_f32("dense/w", &[3, 2], &[0.0; 6]).unwrap();
    let err = PreparedModel::prepare(&spec, &w).unwrap_err();
    assert!(matches!(err, Error::MissingWeight { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "weights <in memory>: no tensor 'w' (the kernel of layer 1); did you mean 'dense/w'?"
    );
}

#[test]
fn shape_mismatches_explain_the_layout() {
    let spec = softmax_spec("");
    let err = PreparedModel::prepare(&spec, &weights(&[2, 3])).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("tensor 'w' (the kernel of layer 1) has shape [2, 3]"),
        "{text}"
    );
    assert!(text.contains("set layout = \"out_in\""), "{text}");
    let err = PreparedModel::prepare(&spec, &weights(&[4, 2])).unwrap_err();
    assert!(
        err.to_string()
            .contains("layout \"in_out\" needs [3, units]"),
        "{err}"
    );
    let mut w = weights(&[3, 2]);
    w.insert_f32("b", &[3], &[0.0; 3]).unwrap();
    let err = PreparedModel::prepare(&spec, &w).unwrap_err();
    assert!(
        err.to_string()
            .contains("(the bias of layer 1) has shape [3] but layer 1 has 2 units: expected [2]"),
        "{err}"
    );
    let spec = softmax_spec("[classes]\nlabels = [\"a\", \"b\", \"c\"]");
    let err = PreparedModel::prepare(&spec, &weights(&[3, 2])).unwrap_err();
    assert!(
        err.to_string()
            .contains("[classes] has 3 labels but the model scores 2 classes"),
        "{err}"
    );
    let mut w = weights(&[3, 2]);
    w.insert_bytes(
        "w",
        savedmodel_checkpoint::DType::Int32,
        &[3, 2],
        vec![0; 24],
    )
    .unwrap();
    let err = PreparedModel::prepare(&softmax_spec(""), &w).unwrap_err();
    assert!(err.to_string().contains("has dtype DT_INT32"), "{err}");
}

#[test]
fn pytorch_layout_predicts_like_the_transposed_kernel() {
    let spec_in = softmax_spec("");
    let spec_out = softmax_spec("layout = \"out_in\"");
    let w_in = weights(&[3, 2]);
    // The same matrix stored [out, in].
    let k = w_in.tensor("w").unwrap().unwrap();
    let k: Vec<f32> = k
        .data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut t = vec![0f32; 6];
    for i in 0..3 {
        for j in 0..2 {
            t[j * 3 + i] = k[i * 2 + j];
        }
    }
    let mut w_out = Weights::new();
    w_out.insert_f32("w", &[2, 3], &t).unwrap();
    w_out.insert_f32("b", &[2], &[0.5, -0.5]).unwrap();
    let a = PreparedModel::prepare(&spec_in, &w_in).unwrap();
    let b = PreparedModel::prepare(&spec_out, &w_out).unwrap();
    let x = [1.0, 2.0, -1.0, 0.5, 0.0, 3.0];
    let pa = a.predict(&x).unwrap();
    assert_eq!(pa, b.predict(&x).unwrap());
    assert_eq!(pa.len(), 4);
    assert!((pa[0] + pa[1] - 1.0).abs() < 1e-6);
    assert_eq!(a.labels(), ["0", "1"]);
}

#[test]
fn export_writes_a_valid_classifier() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("labels.txt");
    std::fs::write(&vocab, "cat\ndog\n").unwrap();
    let spec = ExportSpec::from_toml(
        r#"
        [model]
        architecture = "mlp"
        task = "classifier"
        input_width = 3
        feature = "f"
        [classes]
        vocabulary = "labels.txt"
        [normalization]
        mean = [0, 1, 2]
        std = [1, 2, 4]
        [[layers]]
        kernel = "h"
        activation = "tanh"
        [[layers]]
        name = "head"
        kernel = "w"
        bias = "b"
        activation = "softmax"
        "#,
        dir.path().join("spec.toml"),
    )
    .unwrap();
    let mut w = weights(&[4, 2]);
    w.insert_f32("h", &[3, 4], &[0.1; 12]).unwrap();
    let model = PreparedModel::prepare(&spec, &w).unwrap();
    assert_eq!(model.labels(), ["cat", "dog"]);
    assert_eq!(model.num_parameters(), 12 + 8 + 2);
    let options = ExportOptions {
        warmup: WarmupExamples::Generated(3),
        ..Default::default()
    };
    let export = model.into_export(&options).unwrap();
    let summary = export.summary().clone();
    assert_eq!(summary.warmup_records, 6);
    assert_eq!(
        summary
            .variables
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["dense/kernel", "head/kernel", "head/bias"]
    );
    let keys: Vec<&str> = summary.signatures.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["predict", "serving_default"]);
    let text = summary.signatures[1].to_string();
    assert_eq!(
        text,
        "serving_default (tensorflow/serving/classify): inputs: DT_STRING [-1] -> classes: DT_STRING [-1, 2], scores: DT_FLOAT [-1, 2]"
    );
    assert_eq!(
        summary.signatures[0].to_string(),
        "predict (tensorflow/serving/predict): inputs: DT_FLOAT [-1, 3] -> classes: DT_INT64 [-1], scores: DT_FLOAT [-1, 2]"
    );
    let out = dir.path().join("1");
    export.write_to(&out).unwrap();
    assert!(out.join("assets/labels.txt").is_file());
    assert!(
        out.join("assets.extra/tf_serving_warmup_requests")
            .is_file()
    );
    let opened = savedmodel::SavedModel::open(&out).unwrap();
    drop(opened);
    let report =
        savedmodel::validate::validate(&out, &savedmodel::validate::ValidateOptions::default());
    assert!(report.is_clean(), "{report}");
}

#[test]
fn regressor_and_warmup_limits() {
    let spec = ExportSpec::from_toml(
        "[model]\narchitecture = \"linear_regression\"\ninput_width = 2\n[[layers]]\nkernel = \"w\"\nbias = \"b\"\n",
        INLINE_SPEC_PATH,
    )
    .unwrap();
    let mut w = Weights::new();
    w.insert_f32("w", &[2, 1], &[2.0, -1.0]).unwrap();
    w.insert_f32("b", &[1], &[0.5]).unwrap();
    let model = PreparedModel::prepare(&spec, &w).unwrap();
    assert_eq!(model.predict(&[1.0, 1.0, 0.0, 2.0]).unwrap(), [1.5, -1.5]);
    let err = model
        .warmup_inputs(&WarmupExamples::Generated(MAX_WARMUP_EXAMPLES + 1))
        .unwrap_err();
    assert!(err.to_string().contains("allows 1000"), "{err}");
    let err = model
        .warmup_inputs(&WarmupExamples::Given(vec![vec![1.0]]))
        .unwrap_err();
    assert!(
        err.to_string().contains("has 1 values, the model takes 2"),
        "{err}"
    );
    let export = model.into_export(&ExportOptions::default()).unwrap();
    let s = export.summary();
    assert_eq!(s.warmup_records, 0);
    assert_eq!(
        s.signatures[1].to_string(),
        "serving_default (tensorflow/serving/regress): inputs: DT_STRING [-1] -> outputs: DT_FLOAT [-1]"
    );
    // A wrong-width regressor.
    let mut w2 = Weights::new();
    w2.insert_f32("w", &[2, 2], &[0.0; 4]).unwrap();
    w2.insert_f32("b", &[2], &[0.0; 2]).unwrap();
    let err = PreparedModel::prepare(&spec, &w2).unwrap_err();
    assert!(
        err.to_string()
            .contains("a regressor outputs one number per example, but layer 1 has 2 units"),
        "{err}"
    );
}

#[test]
fn logistic_regression_scores_two_classes() {
    let spec = ExportSpec::from_toml(
        "[model]\narchitecture = \"logistic_regression\"\ninput_width = 1\n[classes]\nlabels = [\"no\", \"yes\"]\n[[layers]]\nkernel = \"w\"\n",
        INLINE_SPEC_PATH,
    )
    .unwrap();
    let mut w = Weights::new();
    w.insert_f32("w", &[1, 1], &[1.0]).unwrap();
    let model = PreparedModel::prepare(&spec, &w).unwrap();
    let p = model.predict(&[0.0]).unwrap();
    assert_eq!(p, [0.5, 0.5]);
    assert_eq!(model.output_width(), 2);
    // A softmax over one unit is refused.
    let spec = ExportSpec::from_toml(
        "[model]\narchitecture = \"softmax_classifier\"\ninput_width = 1\n[[layers]]\nkernel = \"w\"\n",
        INLINE_SPEC_PATH,
    )
    .unwrap();
    let err = PreparedModel::prepare(&spec, &w).unwrap_err();
    assert!(
        err.to_string()
            .contains("softmax over one unit is always 1"),
        "{err}"
    );
}

#[test]
fn vocabulary_problems_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let spec_for = |file: &str| {
        ExportSpec::from_toml(
            &format!("[model]\narchitecture = \"softmax_classifier\"\ninput_width = 3\n[classes]\nvocabulary = \"{file}\"\n[[layers]]\nkernel = \"w\"\nbias = \"b\"\n"),
            dir.path().join("spec.toml"),
        )
        .unwrap()
    };
    std::fs::write(dir.path().join("crlf.txt"), "a\r\nb\r\n").unwrap();
    std::fs::write(dir.path().join("three.txt"), "a\nb\nc\n").unwrap();
    std::fs::write(dir.path().join("dup.txt"), "a\na").unwrap();
    let e = PreparedModel::prepare(&spec_for("crlf.txt"), &weights(&[3, 2])).unwrap_err();
    assert!(e.to_string().contains("CRLF"), "{e}");
    let e = PreparedModel::prepare(&spec_for("three.txt"), &weights(&[3, 2])).unwrap_err();
    assert!(
        e.to_string()
            .contains("three.txt has 3 lines but the model scores 2 classes"),
        "{e}"
    );
    let e = PreparedModel::prepare(&spec_for("dup.txt"), &weights(&[3, 2])).unwrap_err();
    assert!(e.to_string().contains("appears twice"), "{e}");
    let e = PreparedModel::prepare(&spec_for("missing.txt"), &weights(&[3, 2])).unwrap_err();
    assert!(e.to_string().contains("missing.txt"), "{e}");
}

#[test]
fn a_vocabulary_outside_the_spec_directory_is_refused_unless_allowed() {
    let root = tempfile::tempdir().unwrap();
    let spec_dir = root.path().join("spec");
    std::fs::create_dir(&spec_dir).unwrap();
    let secret = root.path().join("passwd");
    std::fs::write(&secret, "root\ndaemon\n").unwrap();
    // By a relative path up, by an absolute path, and by a symbolic link
    // inside the spec's directory that leads out of it.
    #[cfg(unix)]
    std::os::unix::fs::symlink(&secret, spec_dir.join("labels.txt")).unwrap();
    let mut names = vec!["../passwd".to_owned(), secret.display().to_string()];
    if cfg!(unix) {
        names.push("labels.txt".to_owned());
    }
    for name in names {
        let mut spec = ExportSpec::from_toml(
            &format!("[model]\narchitecture = \"softmax_classifier\"\ninput_width = 3\n[classes]\nvocabulary = \"{name}\"\n[[layers]]\nkernel = \"w\"\nbias = \"b\"\n"),
            spec_dir.join("spec.toml"),
        )
        .unwrap();
        let e = PreparedModel::prepare(&spec, &weights(&[3, 2])).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("outside the spec's directory")
                && text.contains("--allow-paths-outside-spec")
                && text.contains(&name),
            "{text}"
        );
        spec.allow_paths_outside_spec_dir = true;
        let model = PreparedModel::prepare(&spec, &weights(&[3, 2])).unwrap();
        assert_eq!(model.labels(), ["root", "daemon"]);
    }
}
