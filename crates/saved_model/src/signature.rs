//! `SignatureDef`s: the named entry points TensorFlow Serving calls.
//!
//! The builders enforce what TensorFlow Serving checks when a request
//! arrives (FORMATS.md 5.2; `tensorflow_serving/servables/tensorflow/
//! classifier.cc`, `regressor.cc`, `predict_util.cc`), so that a model that
//! builds also serves:
//!
//! * **classify**: one input `inputs`, a `DT_STRING` vector of serialized
//!   `tf.Example`s; outputs `classes` (`DT_STRING [N, C]`) and/or `scores`
//!   (`DT_FLOAT [N, C]`), the same `C` when both;
//! * **regress**: one input `inputs` as above; one output `outputs`,
//!   `DT_FLOAT [N]` or `[N, 1]`;
//! * **predict**: any aliases; `defaults` only for inputs.
//!
//! Every `TensorInfo` carries the full static shape (`-1` for unknown
//! dimensions, `unknown_rank` only when the rank is unknown): an absent
//! shape means *scalar* to `tf.saved_model.load` (FORMATS.md 3.3).

use std::collections::BTreeMap;

use savedmodel_checkpoint::DType;
use savedmodel_proto::tensorflow::{SignatureDef, TensorInfo, tensor_info};

use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::graph::{Output, Shape};

/// `tensorflow/serving/predict`.
pub const PREDICT_METHOD_NAME: &str = "tensorflow/serving/predict";
/// `tensorflow/serving/classify`.
pub const CLASSIFY_METHOD_NAME: &str = "tensorflow/serving/classify";
/// `tensorflow/serving/regress`.
pub const REGRESS_METHOD_NAME: &str = "tensorflow/serving/regress";
/// The signature TensorFlow Serving uses when a request names none.
pub const DEFAULT_SERVING_SIGNATURE_DEF_KEY: &str = "serving_default";
/// The input alias of classify and regress signatures.
pub const CLASSIFY_INPUTS: &str = "inputs";
/// The class-name output of classify signatures.
pub const CLASSIFY_OUTPUT_CLASSES: &str = "classes";
/// The score output of classify signatures.
pub const CLASSIFY_OUTPUT_SCORES: &str = "scores";
/// The input alias of regress signatures.
pub const REGRESS_INPUTS: &str = "inputs";
/// The output alias of regress signatures.
pub const REGRESS_OUTPUTS: &str = "outputs";
/// The signature (and output alias) naming the init op
/// (`kSavedModelInitOpSignatureKey`).
pub const INIT_OP_SIGNATURE_KEY: &str = "__saved_model_init_op";

/// The `TensorInfo` of `output`: its name, dtype and full static shape.
pub fn tensor_info(output: &Output) -> TensorInfo {
    TensorInfo {
        encoding: Some(tensor_info::Encoding::Name(output.name())),
        dtype: output.dtype().as_i32(),
        tensor_shape: Some(output.shape().to_proto()),
    }
}

fn error(key: &str, what: String) -> Error {
    Error::Signature {
        signature: key.to_owned(),
        what,
    }
}

fn check_alias(key: &str, alias: &str) -> Result<()> {
    if alias.is_empty() {
        return Err(error(key, "empty alias".into()));
    }
    Ok(())
}

fn map(key: &str, what: &str, entries: &[(&str, &Output)]) -> Result<BTreeMap<String, TensorInfo>> {
    let mut out = BTreeMap::new();
    for (alias, output) in entries {
        check_alias(key, alias)?;
        if out
            .insert((*alias).to_owned(), tensor_info(output))
            .is_some()
        {
            return Err(error(key, format!("{what} alias '{alias}' is given twice")));
        }
    }
    Ok(out)
}

/// A predict signature (`tensorflow/serving/predict`) from aliases to graph
/// outputs.
pub fn predict_signature(
    key: &str,
    inputs: &[(&str, &Output)],
    outputs: &[(&str, &Output)],
) -> Result<SignatureDef> {
    if outputs.is_empty() {
        return Err(error(
            key,
            "a predict signature needs at least one output".into(),
        ));
    }
    Ok(SignatureDef {
        inputs: map(key, "input", inputs)?,
        outputs: map(key, "output", outputs)?,
        method_name: PREDICT_METHOD_NAME.to_owned(),
        defaults: BTreeMap::new(),
    })
}

/// Adds a default for input `alias` of a predict signature
/// (`SignatureDef.defaults`), so requests may leave it out.
pub fn with_default(
    key: &str,
    mut signature: SignatureDef,
    alias: &str,
    value: &Tensor,
) -> Result<SignatureDef> {
    let info = signature
        .inputs
        .get(alias)
        .ok_or_else(|| error(key, format!("default for '{alias}', which is not an input")))?;
    if info.dtype != value.dtype().as_i32() {
        return Err(error(
            key,
            format!(
                "default for '{alias}' is {}, the input is {}",
                value.dtype(),
                dtype_name(info.dtype)
            ),
        ));
    }
    let shape = info
        .tensor_shape
        .as_ref()
        .map(Shape::from_proto)
        .unwrap_or_else(Shape::scalar);
    if !shape.is_compatible_with(&Shape::new(value.shape())) {
        return Err(error(
            key,
            format!(
                "default for '{alias}' has shape {:?}, the input {shape}",
                value.shape()
            ),
        ));
    }
    signature
        .defaults
        .insert(alias.to_owned(), value.to_proto());
    Ok(signature)
}

fn dtype_name(n: i32) -> String {
    DType::from_i32(n).map_or_else(|| format!("DataType {n}"), |d| d.name().to_owned())
}

fn expect_examples_input(key: &str, input: &TensorInfo) -> Result<()> {
    if input.dtype != DType::String.as_i32() {
        return Err(error(
            key,
            format!(
                "input '{CLASSIFY_INPUTS}' is {}; TensorFlow Serving feeds it a DT_STRING vector of serialized tf.Examples",
                dtype_name(input.dtype)
            ),
        ));
    }
    let shape = input
        .tensor_shape
        .as_ref()
        .map(Shape::from_proto)
        .unwrap_or_else(Shape::scalar);
    if shape.rank().is_some_and(|r| r != 1) {
        return Err(error(
            key,
            format!(
                "input '{CLASSIFY_INPUTS}' has shape {shape}; TensorFlow Serving feeds a vector [N]"
            ),
        ));
    }
    Ok(())
}

fn info_shape(info: &TensorInfo) -> Shape {
    info.tensor_shape
        .as_ref()
        .map(Shape::from_proto)
        .unwrap_or_else(Shape::scalar)
}

/// Checks a signature against TensorFlow Serving's classify rules
/// (`PreProcessClassification`/`PostProcessClassificationResult`).
pub fn check_classify(key: &str, sig: &SignatureDef) -> Result<()> {
    if sig.inputs.len() != 1 {
        return Err(error(
            key,
            format!(
                "a classify signature has exactly one input, this has {}",
                sig.inputs.len()
            ),
        ));
    }
    let input = sig.inputs.get(CLASSIFY_INPUTS).ok_or_else(|| {
        error(
            key,
            format!("the input of a classify signature must be named '{CLASSIFY_INPUTS}'"),
        )
    })?;
    expect_examples_input(key, input)?;
    if sig.outputs.is_empty() || sig.outputs.len() > 2 {
        return Err(error(
            key,
            format!(
                "a classify signature has 1 or 2 outputs, this has {}",
                sig.outputs.len()
            ),
        ));
    }
    let classes = sig.outputs.get(CLASSIFY_OUTPUT_CLASSES);
    let scores = sig.outputs.get(CLASSIFY_OUTPUT_SCORES);
    if classes.is_none() && scores.is_none() {
        return Err(error(
            key,
            format!(
                "a classify signature needs output '{CLASSIFY_OUTPUT_CLASSES}' or '{CLASSIFY_OUTPUT_SCORES}'"
            ),
        ));
    }
    let mut widths = Vec::new();
    for (alias, info, dtype) in [
        (CLASSIFY_OUTPUT_CLASSES, classes, DType::String),
        (CLASSIFY_OUTPUT_SCORES, scores, DType::Float),
    ] {
        let Some(info) = info else { continue };
        if info.dtype != dtype.as_i32() {
            return Err(error(
                key,
                format!(
                    "output '{alias}' must be {dtype}, is {}",
                    dtype_name(info.dtype)
                ),
            ));
        }
        let shape = info_shape(info);
        if shape.rank() != Some(2) {
            return Err(error(
                key,
                format!("output '{alias}' must have shape [N, C], has {shape}"),
            ));
        }
        widths.push((alias, shape.dim(1), shape.dim(0)));
    }
    if let [(a, wa, ba), (b, wb, bb)] = widths[..] {
        if wa >= 0 && wb >= 0 && wa != wb {
            return Err(error(
                key,
                format!("outputs '{a}' ({wa} classes) and '{b}' ({wb}) differ in width"),
            ));
        }
        if ba >= 0 && bb >= 0 && ba != bb {
            return Err(error(
                key,
                format!("outputs '{a}' and '{b}' differ in batch size ({ba} vs {bb})"),
            ));
        }
    }
    Ok(())
}

/// Checks a signature against TensorFlow Serving's regress rules
/// (`PreProcessRegression`/`PostProcessRegressionResult`).
pub fn check_regress(key: &str, sig: &SignatureDef) -> Result<()> {
    if sig.inputs.len() != 1 {
        return Err(error(
            key,
            format!(
                "a regress signature has exactly one input, this has {}",
                sig.inputs.len()
            ),
        ));
    }
    let input = sig.inputs.get(REGRESS_INPUTS).ok_or_else(|| {
        error(
            key,
            format!("the input of a regress signature must be named '{REGRESS_INPUTS}'"),
        )
    })?;
    expect_examples_input(key, input)?;
    if sig.outputs.len() != 1 {
        return Err(error(
            key,
            format!(
                "a regress signature has exactly one output, this has {}",
                sig.outputs.len()
            ),
        ));
    }
    let output = sig.outputs.get(REGRESS_OUTPUTS).ok_or_else(|| {
        error(
            key,
            format!("the output of a regress signature must be named '{REGRESS_OUTPUTS}'"),
        )
    })?;
    if output.dtype != DType::Float.as_i32() {
        return Err(error(
            key,
            format!(
                "output '{REGRESS_OUTPUTS}' must be DT_FLOAT, is {}",
                dtype_name(output.dtype)
            ),
        ));
    }
    let shape = info_shape(output);
    let ok = match shape.dims() {
        Some([_]) => true,
        Some([_, one]) => *one == 1 || *one < 0,
        _ => false,
    };
    if !ok {
        return Err(error(
            key,
            format!("output '{REGRESS_OUTPUTS}' must have shape [N] or [N, 1], has {shape}"),
        ));
    }
    Ok(())
}

/// A classify signature (`tensorflow/serving/classify`): `input` is the
/// `DT_STRING` vector of serialized `tf.Example`s, `classes` and/or `scores`
/// the outputs.
pub fn classify_signature(
    key: &str,
    input: &Output,
    classes: Option<&Output>,
    scores: Option<&Output>,
) -> Result<SignatureDef> {
    let mut outputs = Vec::new();
    if let Some(c) = classes {
        outputs.push((CLASSIFY_OUTPUT_CLASSES, c));
    }
    if let Some(s) = scores {
        outputs.push((CLASSIFY_OUTPUT_SCORES, s));
    }
    let sig = SignatureDef {
        inputs: map(key, "input", &[(CLASSIFY_INPUTS, input)])?,
        outputs: map(key, "output", &outputs)?,
        method_name: CLASSIFY_METHOD_NAME.to_owned(),
        defaults: BTreeMap::new(),
    };
    check_classify(key, &sig)?;
    Ok(sig)
}

/// A regress signature (`tensorflow/serving/regress`).
pub fn regress_signature(key: &str, input: &Output, output: &Output) -> Result<SignatureDef> {
    let sig = SignatureDef {
        inputs: map(key, "input", &[(REGRESS_INPUTS, input)])?,
        outputs: map(key, "output", &[(REGRESS_OUTPUTS, output)])?,
        method_name: REGRESS_METHOD_NAME.to_owned(),
        defaults: BTreeMap::new(),
    };
    check_regress(key, &sig)?;
    Ok(sig)
}

/// The `__saved_model_init_op` signature as `tf.saved_model.save` writes it:
/// one output of the same name whose `TensorInfo` names the init op (a node
/// name, no `:0`), with an unknown-rank shape and no dtype.
pub fn init_op_signature(op_name: &str) -> SignatureDef {
    let mut outputs = BTreeMap::new();
    outputs.insert(
        INIT_OP_SIGNATURE_KEY.to_owned(),
        TensorInfo {
            encoding: Some(tensor_info::Encoding::Name(op_name.to_owned())),
            dtype: 0,
            tensor_shape: Some(Shape::unknown().to_proto()),
        },
    );
    SignatureDef {
        inputs: BTreeMap::new(),
        outputs,
        method_name: String::new(),
        defaults: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Graph;

    fn graph() -> (Graph, Output, Output, Output, Output) {
        let mut g = Graph::new();
        let ex = g.placeholder("tf_example", DType::String, [-1]).unwrap();
        let scores = g.placeholder("scores", DType::Float, [-1, 3]).unwrap();
        let classes = g.placeholder("classes", DType::String, [-1, 3]).unwrap();
        let y = g.placeholder("y", DType::Float, [-1, 1]).unwrap();
        (g, ex, scores, classes, y)
    }

    #[test]
    fn classify_rules() {
        let (mut g, ex, scores, classes, y) = graph();
        let sig =
            classify_signature("serving_default", &ex, Some(&classes), Some(&scores)).unwrap();
        assert_eq!(sig.method_name, CLASSIFY_METHOD_NAME);
        assert_eq!(
            sig.inputs["inputs"].tensor_shape.as_ref().unwrap().dim[0].size,
            -1
        );
        assert!(classify_signature("k", &ex, None, None).is_err());
        // Scores must be float [N, C], classes string [N, C].
        assert!(classify_signature("k", &ex, Some(&scores), None).is_err());
        assert!(classify_signature("k", &ex, None, Some(&classes)).is_err());
        let narrow = g.placeholder("narrow", DType::String, [-1, 2]).unwrap();
        let err = classify_signature("k", &ex, Some(&narrow), Some(&scores)).unwrap_err();
        assert!(err.to_string().contains("differ in width"), "{err}");
        // The input must be a string vector.
        assert!(classify_signature("k", &y, None, Some(&scores)).is_err());
        let scalar = g.placeholder("s", DType::String, Shape::scalar()).unwrap();
        assert!(classify_signature("k", &scalar, None, Some(&scores)).is_err());
    }

    #[test]
    fn regress_rules() {
        let (mut g, ex, scores, _, y) = graph();
        assert!(regress_signature("r", &ex, &y).is_ok());
        assert!(regress_signature("r", &ex, &scores).is_err());
        let v = g.placeholder("v", DType::Float, [-1]).unwrap();
        assert!(regress_signature("r", &ex, &v).is_ok());
        let i = g.placeholder("i", DType::Int64, [-1]).unwrap();
        assert!(regress_signature("r", &ex, &i).is_err());
    }

    #[test]
    fn predict_and_defaults() {
        let (_, ex, scores, _, y) = graph();
        let sig = predict_signature("p", &[("x", &y)], &[("s", &scores)]).unwrap();
        assert_eq!(
            sig.inputs["x"].tensor_shape,
            Some(Shape::new(&[-1, 1]).to_proto())
        );
        assert!(predict_signature("p", &[("x", &y), ("x", &ex)], &[("s", &scores)]).is_err());
        let with = with_default(
            "p",
            sig.clone(),
            "x",
            &Tensor::new(&[1, 1], &[0.5f32]).unwrap(),
        )
        .unwrap();
        assert_eq!(with.defaults.len(), 1);
        assert!(with_default("p", sig.clone(), "x", &Tensor::scalar(1i64)).is_err());
        assert!(with_default("p", sig, "nope", &Tensor::scalar(1f32)).is_err());
    }

    #[test]
    fn init_op_signature_matches_tensorflow() {
        let sig = init_op_signature("main_op");
        let info = &sig.outputs[INIT_OP_SIGNATURE_KEY];
        assert_eq!(
            info.encoding,
            Some(tensor_info::Encoding::Name("main_op".into()))
        );
        assert!(info.tensor_shape.as_ref().unwrap().unknown_rank);
        assert!(sig.method_name.is_empty());
    }
}
