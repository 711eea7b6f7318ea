//! TensorFlow Serving's rules for classify and regress signatures, written
//! once: the builder refuses what they find, `validate` reports it.
//!
//! Sources: `tensorflow_serving/servables/tensorflow/classifier.cc`
//! (`PreProcessClassification`, `PostProcessClassificationResult`),
//! `regressor.cc` (`PreProcessRegression`, `PostProcessRegressionResult`),
//! `predict_util.cc` (`VerifySignature`: the Predict API takes classify and
//! regress signatures too); docs/formats.md, section 19 "TensorFlow Serving:
//! signatures at request time".
//!
//! Breaking what Serving checks on the `SignatureDef` before it runs
//! anything (one input `inputs`; one or two outputs among `classes` and
//! `scores`; one output `outputs`) is an [`Severity::Error`]. What it checks
//! on the tensors at run time (a `DT_STRING` vector input fed serialized
//! `tf.Example`s; the outputs' data types, ranks, batch sizes and widths) is
//! judged from the declared `TensorInfo`s and is a [`Severity::Warning`]: the
//! Classify or Regress API fails, but the Predict API can still use the
//! signature, and Serving's own test models have such signatures
//! (`saved_model_half_plus_two`'s `regress_x2_to_y3`). An absent or
//! unknown-rank shape says nothing (TF1 exporters leave shapes out), and a
//! dimension of `-1` matches any size.

use std::collections::BTreeMap;

use crate::proto::tensorflow::{DataType, SignatureDef, TensorInfo, TensorShapeProto};
use crate::show::dtype_name;

use super::constants::{
    CLASSIFY_INPUTS, CLASSIFY_METHOD_NAME, CLASSIFY_OUTPUT_CLASSES, CLASSIFY_OUTPUT_SCORES,
    REGRESS_INPUTS, REGRESS_METHOD_NAME, REGRESS_OUTPUTS,
};
use super::problem::Problem;
#[cfg(doc)]
use super::problem::Severity;

/// The rules for `def`'s method: [`classify_rules`] for a classify
/// signature, [`regress_rules`] for a regress one, nothing for the others
/// (the Predict API takes any inputs and outputs).
///
/// `input_dtype`: the data type of the graph tensor behind input `inputs`
/// when known. TensorFlow Serving feeds that tensor, whatever the signature
/// declares, so it is judged instead of the declared type.
pub fn signature_rules(def: &SignatureDef, input_dtype: Option<i32>) -> Vec<Problem> {
    match def.method_name.as_str() {
        CLASSIFY_METHOD_NAME => classify_rules(def, input_dtype),
        REGRESS_METHOD_NAME => regress_rules(def, input_dtype),
        _ => Vec::new(),
    }
}

/// TensorFlow Serving's rules for a classify signature (`classifier.cc`).
pub fn classify_rules(def: &SignatureDef, input_dtype: Option<i32>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if def.inputs.len() != 1 || !def.inputs.contains_key(CLASSIFY_INPUTS) {
        problems.push(Problem::error(format!(
            "a classify signature must have exactly one input, '{CLASSIFY_INPUTS}' (it has {}); \
             tensorflow serving fails classify requests (\"Expected one input Tensor.\")",
            aliases(&def.inputs)
        )));
    }
    if let Some(input) = def.inputs.get(CLASSIFY_INPUTS) {
        examples_input("classify", input, input_dtype, &mut problems);
    }
    if def.outputs.is_empty() || def.outputs.len() > 2 {
        problems.push(Problem::error(format!(
            "a classify signature must have one or two outputs (it has {}); tensorflow serving: \
             \"Expected one or two output Tensors\"",
            aliases(&def.outputs)
        )));
    }
    let classes = def.outputs.get(CLASSIFY_OUTPUT_CLASSES);
    let scores = def.outputs.get(CLASSIFY_OUTPUT_SCORES);
    if classes.is_none() && scores.is_none() {
        problems.push(Problem::error(format!(
            "a classify signature must have an output '{CLASSIFY_OUTPUT_CLASSES}' or \
             '{CLASSIFY_OUTPUT_SCORES}' (or both)"
        )));
    }
    for (alias, info, dtype) in [
        (CLASSIFY_OUTPUT_CLASSES, classes, DataType::DtString),
        (CLASSIFY_OUTPUT_SCORES, scores, DataType::DtFloat),
    ] {
        let Some(info) = info else { continue };
        if info.dtype != dtype as i32 {
            problems.push(Problem::warning(format!(
                "classify output '{alias}' must be {}, not {}; only the Predict API can use this \
                 signature",
                dtype.as_str_name(),
                dtype_name(info.dtype)
            )));
        }
        if known_dims(info).is_some_and(|d| d.len() != 2) {
            problems.push(Problem::warning(format!(
                "classify output '{alias}' must have shape [batch_size, num_classes], not {}; \
                 only the Predict API can use this signature",
                shape_string(info.tensor_shape.as_ref())
            )));
        }
    }
    if let (Some(c), Some(s)) = (classes, scores) {
        let (c, s) = (matrix_dims(c), matrix_dims(s));
        if let (Some([_, a]), Some([_, b])) = (c, s) {
            if a >= 0 && b >= 0 && a != b {
                problems.push(Problem::warning(format!(
                    "classify outputs '{CLASSIFY_OUTPUT_CLASSES}' and '{CLASSIFY_OUTPUT_SCORES}' \
                     differ in width: they must agree in dimension 1 ({a} vs {b}); only the \
                     Predict API can use this signature"
                )));
            }
        }
        if let (Some([a, _]), Some([b, _])) = (c, s) {
            if a >= 0 && b >= 0 && a != b {
                problems.push(Problem::warning(format!(
                    "classify outputs '{CLASSIFY_OUTPUT_CLASSES}' and '{CLASSIFY_OUTPUT_SCORES}' \
                     differ in batch size ({a} vs {b}), and tensorflow serving needs both to \
                     have one row per example (\"Expected classes output batch size\"); only \
                     the Predict API can use this signature"
                )));
            }
        }
    }
    problems
}

/// TensorFlow Serving's rules for a regress signature (`regressor.cc`).
pub fn regress_rules(def: &SignatureDef, input_dtype: Option<i32>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if def.inputs.len() != 1 || !def.inputs.contains_key(REGRESS_INPUTS) {
        problems.push(Problem::error(format!(
            "a regress signature must have exactly one input, '{REGRESS_INPUTS}' (it has {})",
            aliases(&def.inputs)
        )));
    }
    if let Some(input) = def.inputs.get(REGRESS_INPUTS) {
        examples_input("regress", input, input_dtype, &mut problems);
    }
    if def.outputs.len() != 1 || !def.outputs.contains_key(REGRESS_OUTPUTS) {
        problems.push(Problem::error(format!(
            "a regress signature must have exactly one output, '{REGRESS_OUTPUTS}' (it has {})",
            aliases(&def.outputs)
        )));
    }
    if let Some(output) = def.outputs.get(REGRESS_OUTPUTS) {
        if output.dtype != DataType::DtFloat as i32 {
            problems.push(Problem::warning(format!(
                "regress output '{REGRESS_OUTPUTS}' must be DT_FLOAT, not {}; only the Predict \
                 API can use this signature",
                dtype_name(output.dtype)
            )));
        }
        let fits = match known_dims(output) {
            None => true,
            Some(dims) => match dims.as_slice() {
                [_] => true,
                [_, one] => *one == 1 || *one < 0,
                _ => false,
            },
        };
        if !fits {
            problems.push(Problem::warning(format!(
                "regress output '{REGRESS_OUTPUTS}' must have shape [batch_size] or \
                 [batch_size, 1], not {}; only the Predict API can use this signature",
                shape_string(output.tensor_shape.as_ref())
            )));
        }
    }
    problems
}

/// The `inputs` of a classify or regress signature: TensorFlow Serving feeds
/// it a `DT_STRING` vector `[N]` of serialized `tf.Example`s. One problem at
/// most: an input of another type is not an examples input whatever its
/// shape.
fn examples_input(
    method: &str,
    input: &TensorInfo,
    input_dtype: Option<i32>,
    problems: &mut Vec<Problem>,
) {
    let dtype = input_dtype.unwrap_or(input.dtype);
    if dtype != DataType::DtString as i32 {
        problems.push(Problem::warning(format!(
            "{method} input 'inputs' is {}, but tensorflow serving feeds serialized \
             tf.Examples (DT_STRING): only the Predict API can use this signature",
            dtype_name(dtype)
        )));
    } else if known_dims(input).is_some_and(|d| d.len() != 1) {
        problems.push(Problem::warning(format!(
            "{method} input 'inputs' has shape {}, but tensorflow serving feeds a vector \
             [batch_size]: only the Predict API can use this signature",
            shape_string(input.tensor_shape.as_ref())
        )));
    }
}

/// The declared dimensions, when the shape is given with a known rank.
fn known_dims(info: &TensorInfo) -> Option<Vec<i64>> {
    info.tensor_shape
        .as_ref()
        .filter(|s| !s.unknown_rank)
        .map(|s| s.dim.iter().map(|d| d.size).collect())
}

/// The two dimensions of a declared matrix.
fn matrix_dims(info: &TensorInfo) -> Option<[i64; 2]> {
    match known_dims(info)?.as_slice() {
        [a, b] => Some([*a, *b]),
        _ => None,
    }
}

/// `[2,3]`, `[?,3]`, `[]` (absent: a scalar to TensorFlow's Python loaders)
/// or `<unknown rank>`.
pub(crate) fn shape_string(shape: Option<&TensorShapeProto>) -> String {
    match shape {
        None => "[]".to_owned(),
        Some(s) if s.unknown_rank => "<unknown rank>".to_owned(),
        Some(s) => {
            let dims: Vec<String> = s
                .dim
                .iter()
                .map(|d| {
                    if d.size < 0 {
                        "?".to_owned()
                    } else {
                        d.size.to_string()
                    }
                })
                .collect();
            format!("[{}]", dims.join(","))
        }
    }
}

/// `'a', 'b'`, or `none`.
fn aliases(map: &BTreeMap<String, TensorInfo>) -> String {
    if map.is_empty() {
        "none".to_owned()
    } else {
        map.keys()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tensorflow::tensor_info::Encoding;
    use crate::proto::tensorflow::tensor_shape_proto::Dim;
    use crate::serving::Severity;

    fn info(dtype: DataType, dims: &[i64]) -> TensorInfo {
        TensorInfo {
            dtype: dtype as i32,
            tensor_shape: Some(TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|&size| Dim {
                        size,
                        name: String::new(),
                    })
                    .collect(),
                unknown_rank: false,
            }),
            encoding: Some(Encoding::Name("t:0".to_owned())),
        }
    }

    fn classify(classes: &[i64], scores: &[i64]) -> SignatureDef {
        let mut def = SignatureDef {
            method_name: CLASSIFY_METHOD_NAME.to_owned(),
            ..Default::default()
        };
        def.inputs
            .insert("inputs".into(), info(DataType::DtString, &[-1]));
        def.outputs
            .insert("classes".into(), info(DataType::DtString, classes));
        def.outputs
            .insert("scores".into(), info(DataType::DtFloat, scores));
        def
    }

    #[test]
    fn a_good_classify_signature_has_no_problems() {
        assert_eq!(signature_rules(&classify(&[-1, 3], &[-1, 3]), None), []);
        assert_eq!(signature_rules(&classify(&[8, 3], &[-1, 3]), None), []);
    }

    #[test]
    fn batch_sizes_that_disagree_are_found() {
        let problems = classify_rules(&classify(&[8, 3], &[4, 3]), None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].severity, Severity::Warning);
        assert!(
            problems[0]
                .message
                .contains("differ in batch size (8 vs 4)"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn the_graph_tensor_type_wins_over_the_declared_one() {
        let def = classify(&[-1, 3], &[-1, 3]);
        let problems = classify_rules(&def, Some(DataType::DtFloat as i32));
        assert!(problems[0].message.contains("input 'inputs' is DT_FLOAT"));
        let mut matrix = def;
        matrix
            .inputs
            .insert("inputs".into(), info(DataType::DtString, &[-1, 1]));
        let problems = classify_rules(&matrix, None);
        assert!(
            problems[0].message.contains("feeds a vector"),
            "{problems:?}"
        );
    }

    #[test]
    fn regress_outputs_are_vectors_or_one_column() {
        let mut def = SignatureDef {
            method_name: REGRESS_METHOD_NAME.to_owned(),
            ..Default::default()
        };
        def.inputs
            .insert("inputs".into(), info(DataType::DtString, &[-1]));
        for (dims, ok) in [
            (&[-1][..], true),
            (&[-1, 1][..], true),
            (&[-1, -1][..], true),
            (&[-1, 2][..], false),
            (&[][..], false),
        ] {
            def.outputs
                .insert("outputs".into(), info(DataType::DtFloat, dims));
            assert_eq!(signature_rules(&def, None).is_empty(), ok, "{dims:?}");
        }
        // No shape at all says nothing.
        def.outputs.get_mut("outputs").unwrap().tensor_shape = None;
        assert_eq!(signature_rules(&def, None), []);
    }
}
