//! `SignatureDef`s: the named entry points TensorFlow Serving calls.
//!
//! The builders enforce what TensorFlow Serving checks when a request
//! arrives (the rules of [`crate::serving`]; docs/formats.md, section 19), so
//! that a model that builds also serves:
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
//! shape means *scalar* to `tf.saved_model.load`.

use std::collections::BTreeMap;

use savedmodel_checkpoint::DType;
use savedmodel_proto::tensorflow::{SignatureDef, TensorInfo, tensor_info};

use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::graph::{Output, Shape};
use crate::serving;

use crate::reader::INIT_OP_SIGNATURE_KEY;
use crate::serving::{
    CLASSIFY_INPUTS, CLASSIFY_METHOD_NAME, CLASSIFY_OUTPUT_CLASSES, CLASSIFY_OUTPUT_SCORES,
    PREDICT_METHOD_NAME, REGRESS_INPUTS, REGRESS_METHOD_NAME, REGRESS_OUTPUTS,
};

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
pub fn signature_with_default(
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

/// Refuses `sig` when TensorFlow Serving's rules for its API find anything
/// ([`crate::serving::signature_rules`]): errors, and the warnings that
/// leave only the Predict API able to use it, since a signature built for
/// an API should serve it.
fn refuse_problems(key: &str, sig: &SignatureDef) -> Result<()> {
    match serving::signature_rules(sig, None).into_iter().next() {
        Some(problem) => Err(error(key, problem.message)),
        None => Ok(()),
    }
}

/// Checks a signature against TensorFlow Serving's classify rules
/// ([`crate::serving::classify_rules`]), refusing any problem they find.
pub fn check_classify(key: &str, sig: &SignatureDef) -> Result<()> {
    if sig.method_name != CLASSIFY_METHOD_NAME {
        return Err(error(
            key,
            format!("method '{}' is not {CLASSIFY_METHOD_NAME}", sig.method_name),
        ));
    }
    refuse_problems(key, sig)
}

/// Checks a signature against TensorFlow Serving's regress rules
/// ([`crate::serving::regress_rules`]), refusing any problem they find.
pub fn check_regress(key: &str, sig: &SignatureDef) -> Result<()> {
    if sig.method_name != REGRESS_METHOD_NAME {
        return Err(error(
            key,
            format!("method '{}' is not {REGRESS_METHOD_NAME}", sig.method_name),
        ));
    }
    refuse_problems(key, sig)
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
        let with = signature_with_default(
            "p",
            sig.clone(),
            "x",
            &Tensor::new(&[1, 1], &[0.5f32]).unwrap(),
        )
        .unwrap();
        assert_eq!(with.defaults.len(), 1);
        assert!(signature_with_default("p", sig.clone(), "x", &Tensor::scalar(1i64)).is_err());
        assert!(signature_with_default("p", sig, "nope", &Tensor::scalar(1f32)).is_err());
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
