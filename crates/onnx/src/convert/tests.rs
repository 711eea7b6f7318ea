//! Unit tests of the converter: models built with prost, converted, and
//! the TensorFlow graph inspected.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use prost::Message;

use crate::proto::attribute_proto::AttributeType;
use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::{Dimension, dimension};
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
};
use crate::{ConvertOptions, OnnxModel};

fn float_value(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The error converting `model` gives, as text.
fn conversion_error(model: &Arc<OnnxModel>) -> String {
    crate::convert(model, &ConvertOptions::default())
        .unwrap_err()
        .to_string()
}

/// Values known by name only, as a graph's outputs often are.
pub(super) fn named_values(names: &[&str]) -> Vec<ValueInfoProto> {
    names
        .iter()
        .map(|n| ValueInfoProto {
            name: Some((*n).into()),
            ..Default::default()
        })
        .collect()
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: Some(output.into()),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_owned()],
        attribute: attrs,
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(value.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn strings(name: &str, values: &[&str]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Strings as i32),
        strings: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

/// A float initializer holding `0.01 * (i % 7)` (any values do: only the
/// graph's structure is inspected).
fn weights(name: &str, dims: &[i64]) -> TensorProto {
    let n: i64 = dims.iter().product();
    let raw: Vec<u8> = (0..n)
        .flat_map(|i| (0.01 * (i % 7) as f32 + 0.5).to_le_bytes())
        .collect();
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Float as i32),
        dims: dims.to_vec(),
        raw_data: Some(raw.into()),
        ..Default::default()
    }
}

/// Conv -> BatchNormalization -> Relu -> MaxPool -> Conv -> Add (residual)
/// -> Relu -> GlobalAveragePool -> Flatten -> Gemm, on a [1, 3, 16, 16]
/// image. The second convolution's filter (2,304 bytes) is above the
/// default const limit: a variable.
fn small_cnn() -> Arc<OnnxModel> {
    let pads = || ints("pads", &[1, 1, 1, 1]);
    let graph = GraphProto {
        name: Some("cnn".into()),
        node: vec![
            node("Conv", &["x", "w1", "b1"], "conv1", vec![pads()]),
            node(
                "BatchNormalization",
                &["conv1", "gamma", "beta", "mean", "var"],
                "bn",
                vec![],
            ),
            node("Relu", &["bn"], "relu1", vec![]),
            node(
                "MaxPool",
                &["relu1"],
                "pool",
                vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
            ),
            node("Conv", &["pool", "w2", "b2"], "conv2", vec![pads()]),
            node("Add", &["conv2", "pool"], "residual", vec![]),
            node("Relu", &["residual"], "relu2", vec![]),
            node("GlobalAveragePool", &["relu2"], "gap", vec![]),
            node("Flatten", &["gap"], "flat", vec![]),
            node("Gemm", &["flat", "wf", "bf"], "y", vec![int("transB", 1)]),
        ],
        initializer: vec![
            weights("w1", &[8, 3, 3, 3]),
            weights("b1", &[8]),
            weights("gamma", &[8]),
            weights("beta", &[8]),
            weights("mean", &[8]),
            weights("var", &[8]),
            weights("w2", &[8, 8, 3, 3]),
            weights("b2", &[8]),
            weights("wf", &[10, 8]),
            weights("bf", &[10]),
        ],
        input: vec![float_value("x", &[1, 3, 16, 16])],
        output: vec![float_value("y", &[1, 10])],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(graph),
        ..Default::default()
    };
    Arc::new(OnnxModel::from_bytes(&model.encode_to_vec()).unwrap())
}

#[test]
fn a_plain_cnn_has_at_most_two_transposes_in_fact_one() {
    let model = small_cnn();
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    let transposes: Vec<&str> = converted
        .graph
        .nodes()
        .iter()
        .filter(|n| n.op == "Transpose")
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(converted.transposes, transposes.len());
    assert!(
        converted.transposes <= 2,
        "{} transposes: {transposes:?}",
        converted.transposes
    );
    // In fact one, at the input: the head's Flatten reshapes the pooled
    // [N, 1, 1, C] channels-last value directly (same element order).
    assert_eq!(transposes.len(), 1, "{transposes:?}");
    // The convolutions and the pool run channels last, on the CPU kernels.
    let ops: Vec<&str> = converted
        .graph
        .nodes()
        .iter()
        .map(|n| n.op.as_str())
        .collect();
    assert_eq!(ops.iter().filter(|&&o| o == "Conv2D").count(), 2);
    assert!(ops.contains(&"MaxPool"));
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.shape().dims(), Some(&[1i64, 10][..]));
}

#[test]
fn an_nhwc_input_leaves_at_most_one_transpose_in_fact_none() {
    let model = small_cnn();
    let options = ConvertOptions {
        input_layout_nhwc: true,
        ..ConvertOptions::default()
    };
    let converted = crate::convert(&model, &options).unwrap();
    assert!(
        converted.transposes <= 1,
        "{} transposes",
        converted.transposes
    );
    assert_eq!(converted.transposes, 0);
    // The signature takes the image channels last.
    let x = &converted.inputs[0].tensor;
    assert_eq!(x.shape().dims(), Some(&[1i64, 16, 16, 3][..]));
}

fn int64_value(name: &str, dims: &[i64]) -> ValueInfoProto {
    let mut v = float_value(name, dims);
    if let Some(TypeProto {
        value: Some(type_proto::Value::TensorType(t)),
        ..
    }) = v.r#type.as_mut()
    {
        t.elem_type = Some(DataType::Int64 as i32);
    }
    v
}

/// A model of `nodes` over `inputs` (opset 22).
fn model_of(
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    output: &str,
) -> Arc<OnnxModel> {
    model_with_opset(22, nodes, initializer, inputs, output)
}

/// A model of `nodes` over `inputs` importing `opset` of the default domain.
fn model_with_opset(
    opset: i64,
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    output: &str,
) -> Arc<OnnxModel> {
    model_with_outputs(opset, nodes, initializer, inputs, &[output])
}

/// A model of `nodes` over `inputs` giving `outputs`, importing `opset` of
/// the default domain.
fn model_with_outputs(
    opset: i64,
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: &[&str],
) -> Arc<OnnxModel> {
    let graph = GraphProto {
        name: Some("g".into()),
        node: nodes,
        initializer,
        input: inputs,
        output: named_values(outputs),
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(graph),
        ..Default::default()
    };
    Arc::new(OnnxModel::from_bytes(&model.encode_to_vec()).unwrap())
}

fn op_count(converted: &crate::Converted, op: &str) -> usize {
    converted
        .graph
        .nodes()
        .iter()
        .filter(|n| n.op == op)
        .count()
}

#[test]
fn a_grouped_strided_conv_transpose_runs_one_backprop_per_group_with_onnx_output_size() {
    // out = stride * (in - 1) + kernel + output_padding - pads = 2*4 + 3 + 1 - 2.
    let model = model_of(
        vec![node(
            "ConvTranspose",
            &["x", "w"],
            "y",
            vec![
                int("group", 2),
                ints("strides", &[2, 2]),
                ints("pads", &[1, 1, 1, 1]),
                ints("output_padding", &[1, 1]),
            ],
        )],
        vec![weights("w", &[4, 3, 3, 3])],
        vec![float_value("x", &[1, 4, 5, 5])],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "Conv2DBackpropInput"), 2);
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.shape().dims(), Some(&[1i64, 6, 10, 10][..]));
}

#[test]
fn a_conv_transpose_whose_group_does_not_divide_the_channels_is_an_error_naming_the_node() {
    let model = model_of(
        vec![node(
            "ConvTranspose",
            &["x", "w"],
            "y",
            vec![int("group", 3)],
        )],
        vec![weights("w", &[4, 1, 3, 3])],
        vec![float_value("x", &[1, 4, 5, 5])],
        "y",
    );
    let err = conversion_error(&model);
    assert!(
        err.contains("ConvTranspose") && err.contains("group 3"),
        "{err}"
    );
}

#[test]
fn squeeze_by_run_time_axes_gathers_the_kept_dimensions() {
    // Two dimensions of 1 and one axis: which one is squeezed is known only
    // at run time.
    let model = model_of(
        vec![node("Squeeze", &["x", "axes"], "y", vec![])],
        vec![],
        vec![float_value("x", &[1, 3, 1, 5]), int64_value("axes", &[1])],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "Where"), 1);
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.shape().rank(), Some(3));
}

#[test]
fn skip_connection_concat_and_channel_softmax_stay_channels_last() {
    // x -> Conv -> Relu -> a; a -> Conv -> b; Concat(a, b, axis 1) -> Conv
    // -> Softmax(axis 1): a segmentation head with a skip connection.
    let pads = || ints("pads", &[1, 1, 1, 1]);
    let model = model_of(
        vec![
            node("Conv", &["x", "w1"], "c1", vec![pads()]),
            node("Relu", &["c1"], "a", vec![]),
            node("Conv", &["a", "w2"], "b", vec![pads()]),
            node("Concat", &["a", "b"], "cat", vec![int("axis", 1)]),
            node("Conv", &["cat", "w3"], "logits", vec![]),
            node("Softmax", &["logits"], "y", vec![int("axis", 1)]),
        ],
        vec![
            weights("w1", &[4, 3, 3, 3]),
            weights("w2", &[4, 4, 3, 3]),
            weights("w3", &[5, 8, 1, 1]),
        ],
        vec![float_value("x", &[1, 3, 8, 8])],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    assert_eq!(converted.transposes, 2);
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.shape().dims(), Some(&[1i64, 5, 8, 8][..]));
}

#[test]
fn an_opset_6_add_with_broadcast_and_axis_aligns_b_at_the_axis() {
    // Opset 6: B of shape [3] added to A of shape [2, 3, 4, 5] at axis 1
    // (per channel); NumPy's rule would align it with the last dimension.
    let model = model_with_opset(
        6,
        vec![node(
            "Add",
            &["x", "b"],
            "y",
            vec![int("broadcast", 1), int("axis", 1)],
        )],
        vec![weights("b", &[3])],
        vec![float_value("x", &[2, 3, 4, 5])],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.shape().dims(), Some(&[2i64, 3, 4, 5][..]));
    assert_eq!(op_count(&converted, "AddV2"), 1);
}

#[test]
fn an_opset_3_concat_without_axis_concatenates_along_axis_1() {
    let model = model_with_opset(
        3,
        vec![node("Concat", &["a", "b"], "y", vec![])],
        vec![],
        vec![float_value("a", &[1, 2, 3]), float_value("b", &[1, 4, 3])],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.shape().dims(), Some(&[1i64, 6, 3][..]));
}

#[test]
fn an_opset_1_reshape_with_a_shape_attribute_is_refused_by_name() {
    let model = model_with_opset(
        1,
        vec![node("Reshape", &["x"], "y", vec![ints("shape", &[6])])],
        vec![],
        vec![float_value("x", &[2, 3])],
        "y",
    );
    let err = conversion_error(&model);
    assert!(
        err.contains("version 1 of Reshape") && err.contains("shape as an attribute"),
        "{err}"
    );
}

/// A graph attribute holding `graph`.
fn graph_attr(name: &str, graph: GraphProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Graph as i32),
        g: Some(graph),
        ..Default::default()
    }
}

#[test]
fn a_loop_becomes_a_while_with_body_and_condition_functions_capturing_outer_values() {
    // y_final, ys = Loop(M, "", y0) { y = y_prev + x (captured); scan y }.
    let body = GraphProto {
        name: Some("body".into()),
        node: vec![
            node("Add", &["y_prev", "x"], "y", vec![]),
            node("Identity", &["c_in"], "c_out", vec![]),
            node("Identity", &["y"], "scan", vec![]),
        ],
        input: vec![
            int64_value("i", &[]),
            {
                let mut v = float_value("c_in", &[]);
                if let Some(TypeProto {
                    value: Some(type_proto::Value::TensorType(t)),
                    ..
                }) = v.r#type.as_mut()
                {
                    t.elem_type = Some(DataType::Bool as i32);
                }
                v
            },
            float_value("y_prev", &[3]),
        ],
        output: named_values(&["c_out", "y", "scan"]),
        ..Default::default()
    };
    let mut looped = node(
        "Loop",
        &["m", "", "y0"],
        "y_final",
        vec![graph_attr("body", body)],
    );
    looped.output.push("ys".into());
    let model = model_of(
        vec![looped],
        vec![],
        vec![
            int64_value("m", &[]),
            float_value("y0", &[3]),
            float_value("x", &[3]),
        ],
        "ys",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "While"), 1);
    assert_eq!(op_count(&converted, "TensorListStack"), 1);
    let functions = converted.graph.functions();
    assert_eq!(functions.len(), 2, "a body and a condition");
    let body = functions
        .iter()
        .find(|f| f.node_def.iter().any(|n| n.op == "TensorListPushBack"))
        .unwrap();
    // i, M, cond, y, the captured x, the scan list.
    assert_eq!(body.signature.as_ref().unwrap().input_arg.len(), 6);
    // Function inputs name an argument or `node:out_arg:index`.
    let add = body
        .node_def
        .iter()
        .find(|n| n.op == "AddV2" && n.input.iter().any(|i| i.starts_with("arg3")))
        .unwrap();
    assert!(add.input.contains(&"arg4".to_owned()), "{:?}", add.input);
    let ys = crate::convert::output_named(&converted, "ys").unwrap();
    assert_eq!(ys.shape().dims(), Some(&[-1i64, 3][..]));
}

/// `If(c) { y = x * x } else { y = x + w }`, `w` an outer initializer
/// the else branch captures.
fn if_model(cond_is_constant: bool) -> Arc<OnnxModel> {
    let branch = |name: &str, inner: NodeProto| GraphProto {
        name: Some(name.into()),
        node: vec![inner],
        output: vec![ValueInfoProto {
            name: Some(format!("{name}_y")),
            ..Default::default()
        }],
        ..Default::default()
    };
    let then_g = branch("then", node("Mul", &["x", "x"], "then_y", vec![]));
    let else_g = branch("else", node("Add", &["x", "w"], "else_y", vec![]));
    let choose = node(
        "If",
        &["c"],
        "y",
        vec![
            graph_attr("then_branch", then_g),
            graph_attr("else_branch", else_g),
        ],
    );
    let mut initializer = vec![weights("w", &[3])];
    let mut inputs = vec![float_value("x", &[3])];
    let mut c = float_value("c", &[]);
    if let Some(TypeProto {
        value: Some(type_proto::Value::TensorType(t)),
        ..
    }) = c.r#type.as_mut()
    {
        t.elem_type = Some(DataType::Bool as i32);
    }
    if cond_is_constant {
        initializer.push(TensorProto {
            name: Some("c".into()),
            data_type: Some(DataType::Bool as i32),
            raw_data: Some(vec![0u8].into()),
            ..Default::default()
        });
    } else {
        inputs.push(c);
    }
    model_of(vec![choose], initializer, inputs, "y")
}

#[test]
fn an_if_on_a_run_time_condition_becomes_tensorflow_if_over_two_functions() {
    let converted = crate::convert(&if_model(false), &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "If"), 1);
    let functions = converted.graph.functions();
    assert_eq!(functions.len(), 2, "a then and an else function");
    // Both take the captured input x; w is a constant inside the else branch.
    for f in functions {
        assert_eq!(f.signature.as_ref().unwrap().input_arg.len(), 1);
    }
    assert!(
        functions
            .iter()
            .any(|f| f.node_def.iter().any(|n| n.op == "Mul"))
    );
    assert!(
        functions
            .iter()
            .any(|f| f.node_def.iter().any(|n| n.op == "AddV2"))
    );
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.shape().dims(), Some(&[3i64][..]));
}

#[test]
fn an_if_on_a_constant_condition_inlines_the_branch_taken() {
    let converted = crate::convert(&if_model(true), &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "If"), 0);
    assert!(converted.graph.functions().is_empty());
    assert_eq!(op_count(&converted, "AddV2"), 1, "false: the else branch");
    assert_eq!(op_count(&converted, "Mul"), 0);
}

/// `QuantizeLinear(x, scale, zero_point)` over `x` [2, 3] with a scale and
/// an int8 zero point of shape `param_dims` (empty: per tensor).
fn quantize_model(param_dims: &[i64], block_size: Option<i64>) -> Arc<OnnxModel> {
    let n: i64 = param_dims.iter().product();
    let scale = TensorProto {
        name: Some("scale".into()),
        data_type: Some(DataType::Float as i32),
        dims: param_dims.to_vec(),
        raw_data: Some(
            (0..n)
                .flat_map(|_| 0.5f32.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        ),
        ..Default::default()
    };
    let zero = TensorProto {
        name: Some("zero".into()),
        data_type: Some(DataType::Int8 as i32),
        dims: param_dims.to_vec(),
        raw_data: Some(vec![3u8; n as usize].into()),
        ..Default::default()
    };
    let mut attrs = vec![int("axis", 1)];
    if let Some(b) = block_size {
        attrs.push(int("block_size", b));
    }
    model_of(
        vec![node("QuantizeLinear", &["x", "scale", "zero"], "y", attrs)],
        vec![scale, zero],
        vec![float_value("x", &[2, 3])],
        "y",
    )
}

#[test]
fn quantize_linear_rounds_half_to_even_and_saturates_to_the_zero_points_type() {
    for dims in [&[][..], &[1][..], &[3][..]] {
        let converted =
            crate::convert(&quantize_model(dims, None), &ConvertOptions::default()).unwrap();
        assert_eq!(op_count(&converted, "Rint"), 1, "{dims:?}");
        assert_eq!(op_count(&converted, "Maximum"), 1);
        assert_eq!(op_count(&converted, "Minimum"), 1);
        let y = crate::convert::output_named(&converted, "y").unwrap();
        assert_eq!(y.dtype(), savedmodel_graph::DType::Int8);
        assert_eq!(y.shape().dims(), Some(&[2i64, 3][..]));
    }
}

#[test]
fn blocked_quantization_gathers_each_blocks_scale_along_the_axis() {
    // x [2, 3], axis 1, block_size 2: a [2, 2] scale (ceil(3 / 2) = 2).
    let converted = crate::convert(
        &quantize_model(&[2, 2], Some(2)),
        &ConvertOptions::default(),
    )
    .unwrap();
    // Scale and zero point: the axis's size and the blocked value each.
    assert_eq!(op_count(&converted, "GatherV2"), 4);
    assert_eq!(op_count(&converted, "FloorDiv"), 2);
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.dtype(), savedmodel_graph::DType::Int8);
    assert_eq!(y.shape().dims(), Some(&[2i64, 3][..]));
}

#[test]
fn bad_block_sizes_and_blocked_shapes_are_refused_by_name() {
    for (dims, block_size, want) in [
        (
            &[2, 2][..],
            Some(-2),
            "block_size -2: blocked quantization needs a positive block_size",
        ),
        (
            &[2, 2][..],
            None,
            "block_size 0: blocked quantization needs a positive block_size",
        ),
        (&[2, 3, 1][..], Some(2), "of the input's rank 2"),
        (&[2, 3][..], Some(2), "it must be 2 along axis 1"),
        (&[3, 2][..], Some(2), "it must be 2 along axis 0"),
    ] {
        let err = conversion_error(&quantize_model(dims, block_size));
        assert!(
            err.contains("QuantizeLinear") && err.contains(want),
            "{want}: {err}"
        );
    }
}

#[test]
fn qlinear_matmul_multiplies_centered_integers_and_requantizes() {
    let scalar = |name: &str, dtype: DataType, bytes: Vec<u8>| TensorProto {
        name: Some(name.into()),
        data_type: Some(dtype as i32),
        raw_data: Some(bytes.into()),
        ..Default::default()
    };
    let mut a = float_value("a", &[2, 4]);
    let mut b = float_value("b", &[4, 3]);
    for v in [&mut a, &mut b] {
        if let Some(TypeProto {
            value: Some(type_proto::Value::TensorType(t)),
            ..
        }) = v.r#type.as_mut()
        {
            t.elem_type = Some(DataType::Uint8 as i32);
        }
    }
    let model = model_of(
        vec![node(
            "QLinearMatMul",
            &["a", "sa", "za", "b", "sb", "zb", "sy", "zy"],
            "y",
            vec![],
        )],
        vec![
            scalar("sa", DataType::Float, 0.5f32.to_le_bytes().to_vec()),
            scalar("za", DataType::Uint8, vec![10]),
            scalar("sb", DataType::Float, 0.25f32.to_le_bytes().to_vec()),
            scalar("zb", DataType::Uint8, vec![3]),
            scalar("sy", DataType::Float, 2.0f32.to_le_bytes().to_vec()),
            scalar("zy", DataType::Uint8, vec![7]),
        ],
        vec![a, b],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    let matmul = converted
        .graph
        .nodes()
        .iter()
        .find(|n| n.op == "MatMul")
        .unwrap();
    // The product is in int32.
    let t = format!("{:?}", matmul.attr.get("T"));
    assert!(t.contains("Type(DtInt32)"), "{t}");
    assert_eq!(op_count(&converted, "Rint"), 1);
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.dtype(), savedmodel_graph::DType::UInt8);
    assert_eq!(y.shape().dims(), Some(&[2i64, 3][..]));
}

fn typed_value(name: &str, dims: &[i64], elem_type: DataType) -> ValueInfoProto {
    let mut v = float_value(name, dims);
    if let Some(TypeProto {
        value: Some(type_proto::Value::TensorType(t)),
        ..
    }) = v.r#type.as_mut()
    {
        t.elem_type = Some(elem_type as i32);
    }
    v
}

#[test]
fn int4_inputs_are_carried_as_int8_values_and_cast_exactly() {
    let model = model_of(
        vec![node(
            "Cast",
            &["x"],
            "y",
            vec![int("to", DataType::Float as i64)],
        )],
        vec![],
        vec![typed_value("x", &[5], DataType::Int4)],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    let x = &converted.inputs[0];
    assert_eq!(x.tensor.dtype(), savedmodel_graph::DType::Int8);
    assert_eq!(x.carried, Some(crate::Carried::Int4));
    assert_eq!(converted.outputs[0].carried, None);
    assert_eq!(
        converted.outputs[0].tensor.dtype(),
        savedmodel_graph::DType::Float
    );
}

#[test]
fn casts_to_fnuz_round_on_a_grid_and_give_uint8_bit_patterns() {
    let model = model_of(
        vec![node(
            "Cast",
            &["x"],
            "y",
            vec![
                int("to", DataType::Float8e4m3fnuz as i64),
                int("saturate", 0),
            ],
        )],
        vec![],
        vec![float_value("x", &[4])],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    let y = &converted.outputs[0];
    assert_eq!(y.tensor.dtype(), savedmodel_graph::DType::UInt8);
    assert_eq!(y.carried, Some(crate::Carried::Float8E4M3Fnuz));
    assert_eq!(op_count(&converted, "LowerBound"), 1);
    assert_eq!(op_count(&converted, "UpperBound"), 1);
    // No TensorFlow Cast to the FNUZ type, which has no kernel.
    let fnuz = savedmodel_graph::DType::Float8E4M3FNUZ.as_i32();
    let fnuz_attr = format!("Type({fnuz})");
    assert!(
        converted
            .graph
            .nodes()
            .iter()
            .all(|n| !format!("{:?}", n.attr).contains(&fnuz_attr))
    );
}

#[test]
fn a_carried_value_reaching_another_op_is_an_error_naming_it() {
    let model = model_of(
        vec![node("Add", &["x", "x"], "y", vec![])],
        vec![],
        vec![typed_value("x", &[5], DataType::Uint4)],
        "y",
    );
    let err = crate::convert(&model, &ConvertOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"x\" is UINT4") && err.contains("only Cast, CastLike and Identity"),
        "{err}"
    );
}

#[test]
fn string_normalizer_refuses_an_unknown_case_change_by_name() {
    let action = AttributeProto {
        name: Some("case_change_action".into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(b"TITLE".to_vec()),
        ..Default::default()
    };
    let model = model_of(
        vec![node("StringNormalizer", &["x"], "y", vec![action])],
        vec![],
        vec![typed_value("x", &[3], DataType::String)],
        "y",
    );
    let err = crate::convert(&model, &ConvertOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"TITLE\"") && err.contains("StringNormalizer"),
        "{err}"
    );
}

#[test]
fn a_binary_linear_classifier_scores_both_classes_and_gathers_the_label() {
    let floats = |name: &str, values: &[f32]| AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Floats as i32),
        floats: values.to_vec(),
        ..Default::default()
    };
    let mut classifier = node(
        "LinearClassifier",
        &["x"],
        "label",
        vec![
            floats("coefficients", &[0.5, -1.0, 2.0]),
            floats("intercepts", &[0.25]),
            ints("classlabels_ints", &[7, 9]),
        ],
    );
    classifier.domain = Some("ai.onnx.ml".into());
    classifier.output.push("scores".into());
    let graph = GraphProto {
        name: Some("g".into()),
        node: vec![classifier],
        input: vec![float_value("x", &[2, 3])],
        output: vec![ValueInfoProto {
            name: Some("label".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(10),
        opset_import: vec![
            OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(22),
            },
            OperatorSetIdProto {
                domain: Some("ai.onnx.ml".into()),
                version: Some(1),
            },
        ],
        graph: Some(graph),
        ..Default::default()
    };
    let model = Arc::new(OnnxModel::from_bytes(&model.encode_to_vec()).unwrap());
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "Neg"), 1);
    assert_eq!(op_count(&converted, "ArgMax"), 1);
    let label = crate::convert::output_named(&converted, "label").unwrap();
    assert_eq!(label.dtype(), savedmodel_graph::DType::Int64);
}

/// A node `op` named `rnn` (a recurrent layer, a `Scan`) over `inputs`
/// ("" for one omitted) giving several `outputs`, with `attrs`.
fn recurrent_node(
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        name: Some("rnn".into()),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

/// The functions of `converted`'s library whose names end in `suffix`.
fn functions_ending<'c>(
    converted: &'c crate::Converted,
    suffix: &str,
) -> Vec<&'c savedmodel::proto::tensorflow::FunctionDef> {
    converted
        .graph
        .functions()
        .iter()
        .filter(|f| {
            f.signature
                .as_ref()
                .is_some_and(|s| s.name.ends_with(suffix))
        })
        .collect()
}

/// The dims of `converted`'s output `name`.
fn output_dims(converted: &crate::Converted, name: &str) -> Option<Vec<i64>> {
    crate::convert::output_named(converted, name)
        .unwrap()
        .shape()
        .dims()
        .map(<[i64]>::to_vec)
}

#[test]
fn a_bidirectional_batch_first_lstm_loops_once_per_direction_over_the_time_steps() {
    // 50 steps: an unrolled LSTM would have hundreds of nodes.
    let (batch, seq, input, hidden) = (2, 50, 3, 4);
    let mut lens = float_value("lens", &[batch]);
    if let Some(TypeProto {
        value: Some(type_proto::Value::TensorType(t)),
        ..
    }) = lens.r#type.as_mut()
    {
        t.elem_type = Some(DataType::Int32 as i32);
    }
    let model = model_with_outputs(
        22,
        vec![recurrent_node(
            "LSTM",
            &["x", "w", "r", "b", "lens", "h0", "c0", "p"],
            &["y", "y_h", "y_c"],
            vec![
                string("direction", "bidirectional"),
                int("hidden_size", hidden),
                int("layout", 1),
            ],
        )],
        vec![
            weights("w", &[2, 4 * hidden, input]),
            weights("r", &[2, 4 * hidden, hidden]),
            weights("b", &[2, 8 * hidden]),
            weights("p", &[2, 3 * hidden]),
        ],
        vec![
            float_value("x", &[batch, seq, input]),
            lens,
            float_value("h0", &[batch, 2, hidden]),
            float_value("c0", &[batch, 2, hidden]),
        ],
        &["y", "y_h", "y_c"],
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "While"), 2);
    assert_eq!(functions_ending(&converted, "_body").len(), 2);
    assert_eq!(functions_ending(&converted, "_cond").len(), 2);
    // The reverse direction reverses each sequence over its own length, in
    // and out; the projection of every step is one product per direction.
    assert_eq!(op_count(&converted, "ReverseSequence"), 2);
    assert_eq!(op_count(&converted, "BatchMatMulV2"), 2);
    assert!(
        converted.graph.nodes().len() < 150,
        "{} nodes",
        converted.graph.nodes().len()
    );
    for f in converted.graph.functions() {
        let name = &f.signature.as_ref().unwrap().name;
        let count = |op: &str| f.node_def.iter().filter(|n| n.op == op).count();
        if name.ends_with("_body") {
            // One step: H·Rᵀ, the per-step output, the length mask.
            assert_eq!(count("MatMul"), 1, "{name}");
            assert_eq!(count("TensorListPushBack"), 1, "{name}");
            assert_eq!(count("Less"), 1, "{name}");
            assert_eq!(count("Sigmoid"), 3, "{name}");
            assert_eq!(count("Tanh"), 2, "{name}");
        } else {
            assert_eq!(count("Less"), 1, "{name}");
            assert_eq!(count("LogicalAnd"), 0, "{name}");
        }
    }
    let shape = |name: &str| output_dims(&converted, name);
    assert_eq!(shape("y"), Some(vec![batch, seq, 2, hidden]));
    assert_eq!(shape("y_h"), Some(vec![batch, 2, hidden]));
    assert_eq!(shape("y_c"), Some(vec![batch, 2, hidden]));
}

#[test]
fn a_reverse_gru_with_linear_before_reset_applies_the_reset_after_its_own_product() {
    let (seq, batch, input, hidden) = (6, 1, 2, 3);
    let model = model_with_outputs(
        22,
        vec![recurrent_node(
            "GRU",
            &["x", "w", "r", "b"],
            &["y", "y_h"],
            vec![
                string("direction", "reverse"),
                int("hidden_size", hidden),
                int("linear_before_reset", 1),
                strings("activations", &["HardSigmoid", "Softsign"]),
            ],
        )],
        vec![
            weights("w", &[1, 3 * hidden, input]),
            weights("r", &[1, 3 * hidden, hidden]),
            weights("b", &[1, 6 * hidden]),
        ],
        vec![float_value("x", &[seq, batch, input])],
        &["y", "y_h"],
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "While"), 1);
    // Without lengths the whole sequence is reversed, in and out.
    assert_eq!(op_count(&converted, "ReverseV2"), 2);
    assert_eq!(op_count(&converted, "ReverseSequence"), 0);
    let body = functions_ending(&converted, "_body")[0];
    let count = |op: &str| body.node_def.iter().filter(|n| n.op == op).count();
    // H·[Rz Rr]ᵀ and H·Rhᵀ (not (r ⊙ H)·Rhᵀ); Softsign for the candidate,
    // hard sigmoids (a Minimum and a Maximum each) for z and r.
    assert_eq!(count("MatMul"), 2);
    assert_eq!(count("Softsign"), 1);
    assert_eq!(count("Minimum"), 2);
    assert_eq!(count("Sigmoid") + count("Tanh"), 0);
    // H is the loop's third value (after t and the step count): `arg2`.
    for matmul in body.node_def.iter().filter(|n| n.op == "MatMul") {
        assert_eq!(matmul.input[0], "arg2", "{:?}", matmul.input);
    }
    assert_eq!(
        output_dims(&converted, "y"),
        Some(vec![seq, 1, batch, hidden])
    );
}

#[test]
fn recurrent_attributes_it_cannot_honour_are_errors_naming_node_and_attribute() {
    let rnn = |attrs: Vec<AttributeProto>| {
        let model = model_with_outputs(
            22,
            vec![recurrent_node("RNN", &["x", "w", "r"], &["y"], attrs)],
            vec![weights("w", &[1, 2, 3]), weights("r", &[1, 2, 2])],
            vec![float_value("x", &[4, 1, 3])],
            &["y"],
        );
        conversion_error(&model)
    };
    for (attrs, want) in [
        (
            vec![string("direction", "sideways")],
            "direction \"sideways\"",
        ),
        (vec![int("layout", 2)], "layout 2"),
        (
            vec![strings("activations", &["Swish"])],
            "activation \"Swish\"",
        ),
        (
            vec![strings("activations", &["Tanh", "Tanh"])],
            "activations lists 2",
        ),
        (vec![int("linear_before_reset", 1)], "linear_before_reset"),
        (
            vec![int("hidden_size", 5)],
            "W has shape [1, 2, 3], [1, 5, 3] expected",
        ),
    ] {
        let err = rnn(attrs);
        assert!(err.contains("\"rnn\" (RNN)") && err.contains(want), "{err}");
    }
}

/// `Scan` over `x [2, steps, 3]` along axis 1 in reverse, a state
/// `acc [2, 3]`: `acc += x_t`, scanning `acc` out along the last axis.
fn scan_model(opset: i64, acc_dims: &[i64], x_dims: &[i64]) -> Arc<OnnxModel> {
    let body = GraphProto {
        name: Some("body".into()),
        node: vec![
            node("Add", &["acc_in", "x_t"], "acc_out", vec![]),
            node("Identity", &["acc_out"], "acc_scan", vec![]),
        ],
        input: vec![float_value("acc_in", &[2, 3]), float_value("x_t", &[2, 3])],
        output: named_values(&["acc_out", "acc_scan"]),
        ..Default::default()
    };
    let (inputs, attrs) = if opset < 9 {
        (vec!["", "acc0", "x"], vec![])
    } else {
        (
            vec!["acc0", "x"],
            vec![
                ints("scan_input_axes", &[1]),
                ints("scan_input_directions", &[1]),
                ints("scan_output_axes", &[-1]),
            ],
        )
    };
    let mut attrs = attrs;
    attrs.push(graph_attr("body", body));
    attrs.push(int("num_scan_inputs", 1));
    let scan = recurrent_node("Scan", &inputs, &["acc", "accs"], attrs);
    model_with_outputs(
        opset,
        vec![scan],
        vec![],
        vec![float_value("acc0", acc_dims), float_value("x", x_dims)],
        &["acc", "accs"],
    )
}

#[test]
fn a_scan_becomes_a_while_over_its_time_first_forward_inputs() {
    let model = scan_model(16, &[2, 3], &[2, 7, 3]);
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "While"), 1);
    // Axis 1 brought first and reversed; the output moved last.
    assert_eq!(op_count(&converted, "Transpose"), 2);
    assert_eq!(op_count(&converted, "ReverseV2"), 1);
    let cond = functions_ending(&converted, "_cond")[0];
    assert!(!cond.node_def.iter().any(|n| n.op == "LogicalAnd"));
    let body = functions_ending(&converted, "_body")[0];
    assert!(body.node_def.iter().any(|n| n.op == "GatherV2"));
    let shape = |name: &str| output_dims(&converted, name);
    assert_eq!(shape("acc"), Some(vec![2, 3]));
    assert_eq!(shape("accs"), Some(vec![2, 3, -1]));
}

#[test]
fn a_scan_8_runs_a_batch_of_one_and_refuses_a_larger_batch_by_name() {
    // Scan-8: batch axis 0, time axis 1, the body per batch entry.
    let model = scan_model(8, &[1, 2, 3], &[1, 7, 2, 3]);
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "While"), 1);
    assert_eq!(output_dims(&converted, "accs"), Some(vec![1, -1, 2, 3]));

    let model = scan_model(8, &[4, 2, 3], &[4, 7, 2, 3]);
    let err = conversion_error(&model);
    assert!(
        err.contains("\"rnn\" (Scan)") && err.contains("only a batch of 1"),
        "{err}"
    );
}

#[test]
fn non_max_suppression_needs_batches_and_classes_known_at_conversion() {
    let model = model_of(
        vec![node(
            "NonMaxSuppression",
            &["boxes", "scores"],
            "selected",
            vec![],
        )],
        vec![],
        vec![
            float_value("boxes", &[-1, 6, 4]),
            float_value("scores", &[-1, 2, 6]),
        ],
        "selected",
    );
    let err = crate::convert(&model, &ConvertOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("B and C known at conversion"), "{err}");
    let model = model_of(
        vec![node(
            "NonMaxSuppression",
            &["boxes", "scores"],
            "selected",
            vec![],
        )],
        vec![],
        vec![
            float_value("boxes", &[2, 6, 4]),
            float_value("scores", &[2, 3, 6]),
        ],
        "selected",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "NonMaxSuppressionV3"), 6);
}

#[test]
fn attention_of_3d_inputs_needs_the_head_counts() {
    let model = model_of(
        vec![node("Attention", &["q", "k", "v"], "y", vec![])],
        vec![],
        vec![
            float_value("q", &[2, 5, 8]),
            float_value("k", &[2, 5, 8]),
            float_value("v", &[2, 5, 8]),
        ],
        "y",
    );
    let err = crate::convert(&model, &ConvertOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("q_num_heads and kv_num_heads"), "{err}");
    let model = model_of(
        vec![node(
            "Attention",
            &["q", "k", "v"],
            "y",
            vec![
                int("q_num_heads", 4),
                int("kv_num_heads", 2),
                int("is_causal", 1),
            ],
        )],
        vec![],
        vec![
            float_value("q", &[2, 5, 8]),
            float_value("k", &[2, 5, 4]),
            float_value("v", &[2, 5, 4]),
        ],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    // Q K^T and P V; the two key/value heads tiled to four.
    assert_eq!(op_count(&converted, "BatchMatMulV2"), 2);
    assert_eq!(op_count(&converted, "Tile"), 2);
}

#[test]
fn grid_sample_gathers_one_term_per_tap_combination() {
    for (mode, taps) in [("nearest", 1), ("linear", 4), ("cubic", 16)] {
        let attr = AttributeProto {
            name: Some("mode".into()),
            r#type: Some(AttributeType::String as i32),
            s: Some(mode.as_bytes().to_vec()),
            ..Default::default()
        };
        let model = model_of(
            vec![node("GridSample", &["x", "grid"], "y", vec![attr])],
            vec![],
            vec![
                float_value("x", &[1, 2, 4, 4]),
                float_value("grid", &[1, 3, 3, 2]),
            ],
            "y",
        );
        let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
        // Each tap combination gathers from the flattened image once.
        let gathers = converted
            .graph
            .nodes()
            .iter()
            .filter(|n| n.op == "GatherV2" && n.name.contains("gatherv2"))
            .count();
        assert!(gathers >= taps, "{mode}: {gathers} gathers");
    }
}

#[test]
fn dft_of_a_real_signal_uses_rfft_and_mirrors_the_other_half() {
    let model_19 = model_with_opset(
        19,
        vec![node("DFT", &["x"], "y", vec![int("axis", 1)])],
        vec![],
        vec![float_value("x", &[1, 8, 1])],
        "y",
    );
    let converted = crate::convert(&model_19, &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "RFFT"), 1);
    assert_eq!(op_count(&converted, "Conj"), 1);
    assert_eq!(op_count(&converted, "FFT"), 0);
}

#[test]
fn sequences_are_tensor_lists_and_other_ops_refuse_them() {
    let model = model_of(
        vec![
            node("SequenceConstruct", &["a", "b"], "s", vec![]),
            node("SequenceAt", &["s", "i"], "y", vec![]),
        ],
        vec![],
        vec![
            float_value("a", &[2]),
            float_value("b", &[2]),
            int64_value("i", &[]),
        ],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&converted, "TensorListPushBack"), 2);
    assert_eq!(op_count(&converted, "TensorListGetItem"), 1);
    let model = model_of(
        vec![
            node("SequenceConstruct", &["a"], "s", vec![]),
            node("Add", &["s", "s"], "y", vec![]),
        ],
        vec![],
        vec![float_value("a", &[2])],
        "y",
    );
    let err = crate::convert(&model, &ConvertOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"s\" is a sequence"), "{err}");
}

/// The graph's op types, in order.
fn ops_of(converted: &crate::Converted) -> Vec<&str> {
    converted
        .graph
        .nodes()
        .iter()
        .map(|n| n.op.as_str())
        .collect()
}

fn unoptimized() -> ConvertOptions {
    ConvertOptions {
        optimize: false,
        ..ConvertOptions::default()
    }
}

#[test]
fn a_batch_norm_after_a_conv_folds_into_its_filter_and_bias() {
    let model = small_cnn();
    let before = crate::convert(&model, &unoptimized()).unwrap();
    let after = crate::convert(&model, &ConvertOptions::default()).unwrap();
    // Before: Conv2D, BiasAdd, then the normalization's Mul and AddV2.
    assert_eq!(op_count(&before, "Mul"), 1, "{:?}", ops_of(&before));
    assert_eq!(op_count(&before, "AddV2"), 2, "{:?}", ops_of(&before));
    // After: Conv2D and BiasAdd only; the residual's AddV2 remains.
    assert_eq!(op_count(&after, "Mul"), 0, "{:?}", ops_of(&after));
    assert_eq!(op_count(&after, "AddV2"), 1, "{:?}", ops_of(&after));
    assert_eq!(op_count(&after, "BiasAdd"), op_count(&before, "BiasAdd"));
    assert_eq!(op_count(&after, "Conv2D"), 2);
    assert_eq!(before.graph.nodes().len() - after.graph.nodes().len(), 4);

    // The folded bias is b1 * s + beta - mean * s, s = gamma / sqrt(var + eps).
    let w = |i: i64| f64::from(0.01 * (i % 7) as f32 + 0.5);
    let bias_node = after
        .graph
        .nodes()
        .iter()
        .find(|n| n.name.ends_with("folded_bias"))
        .expect("a folded bias");
    let bias = after
        .graph
        .constant_value(&after.graph.output_by_name(&bias_node.name).unwrap())
        .expect("a constant");
    let got = crate::convert::constant::to_f64(bias).unwrap();
    for (i, g) in got.iter().enumerate() {
        let i = i as i64;
        let s = w(i) / (w(i) + 1e-5).sqrt();
        let want = (w(i) * s + w(i) - w(i) * s) as f32;
        assert_eq!(*g as f32, want, "channel {i}");
    }
}

/// Conv -> BatchNormalization, the filter (4,608 bytes) a variable, the
/// normalization's output also read by `extra` nodes when given.
fn conv_bn_model(extra_use: bool) -> Arc<OnnxModel> {
    let mut nodes = vec![
        node("Conv", &["x", "w"], "conv", vec![]),
        node(
            "BatchNormalization",
            &["conv", "gamma", "beta", "mean", "var"],
            "y",
            vec![],
        ),
    ];
    let mut outputs = vec!["y"];
    if extra_use {
        nodes.push(node("Relu", &["conv"], "r", vec![]));
        outputs.push("r");
    }
    let mut gamma = weights("gamma", &[16]);
    // Scales of 2: the folded filter is exactly twice the original.
    gamma.raw_data = Some(
        (0..16)
            .flat_map(|_| 2.0f32.to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
    );
    let mut var = weights("var", &[16]);
    var.raw_data = Some(
        (0..16)
            .flat_map(|_| (1.0f32 - 1e-5).to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
    );
    model_with_outputs(
        17,
        nodes,
        vec![
            weights("w", &[16, 8, 3, 3]),
            gamma,
            weights("beta", &[16]),
            weights("mean", &[16]),
            var,
        ],
        vec![float_value("x", &[1, 8, 5, 5])],
        &outputs,
    )
}

#[test]
fn a_filter_held_in_a_variable_is_scaled_when_written_and_only_where_folded() {
    let after = crate::convert(&conv_bn_model(false), &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&after, "Mul"), 0, "{:?}", ops_of(&after));
    let record = &after.graph.variables()[0];
    assert!(
        record.checkpoint_name.contains("folded"),
        "{}",
        record.checkpoint_name
    );
    let folded = record.value.to_tensor().unwrap();
    let folded = crate::convert::constant::to_f64(&folded).unwrap();
    // TensorFlow's layout [kh, kw, C, M]: element (.., m) is w[m, c, i, j]
    // times 2 (sqrt(var + eps) = 1).
    let w = |i: usize| f64::from(0.01 * (i % 7) as f32 + 0.5);
    for (k, got) in folded.iter().enumerate() {
        let (m, c, ij) = (k % 16, (k / 16) % 8, k / 128);
        let onnx_index = m * 72 + c * 9 + ij;
        assert_eq!(*got, f64::from((w(onnx_index) * 2.0) as f32), "element {k}");
    }

    // The convolution's output read elsewhere too: nothing folds.
    let shared = crate::convert(&conv_bn_model(true), &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&shared, "Mul"), 1, "{:?}", ops_of(&shared));
    assert!(
        !shared.graph.variables()[0]
            .checkpoint_name
            .contains("folded")
    );
}

#[test]
fn a_matmul_plus_a_vector_becomes_bias_add_and_other_adds_stay() {
    let model = |bias_dims: &[i64]| {
        model_with_outputs(
            17,
            vec![
                node("MatMul", &["x", "w"], "mm", vec![]),
                node("Add", &["b", "mm"], "y", vec![]),
            ],
            vec![weights("w", &[4, 5]), weights("b", bias_dims)],
            vec![float_value("x", &[2, 3, 4])],
            &["y"],
        )
    };
    let before = crate::convert(&model(&[5]), &unoptimized()).unwrap();
    let after = crate::convert(&model(&[5]), &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&before, "AddV2"), 1, "{:?}", ops_of(&before));
    assert_eq!(op_count(&before, "BiasAdd"), 0);
    assert_eq!(op_count(&after, "AddV2"), 0, "{:?}", ops_of(&after));
    assert_eq!(op_count(&after, "BiasAdd"), 1);
    let y = crate::convert::output_named(&after, "y").unwrap();
    assert_eq!(y.shape().dims(), Some(&[2i64, 3, 5][..]));
    // A bias that broadcasts another way stays an Add.
    let other = crate::convert(&model(&[3, 1]), &ConvertOptions::default()).unwrap();
    assert_eq!(op_count(&other, "BiasAdd"), 0, "{:?}", ops_of(&other));
    assert_eq!(op_count(&other, "AddV2"), 1);
}

#[test]
fn clips_to_zero_six_and_zero_become_relu6_and_relu_and_others_stay_clips() {
    let scalar = |name: &str, v: f32| {
        let mut t = weights(name, &[]);
        t.raw_data = Some(v.to_le_bytes().to_vec().into());
        t
    };
    let model = |inputs: &[&str]| {
        model_with_outputs(
            17,
            vec![node("Clip", inputs, "y", vec![])],
            vec![scalar("zero", 0.0), scalar("six", 6.0), scalar("one", 1.0)],
            vec![float_value("x", &[2, 3])],
            &["y"],
        )
    };
    let ops = |inputs: &[&str], options: &ConvertOptions| {
        let converted = crate::convert(&model(inputs), options).unwrap();
        ops_of(&converted)
            .into_iter()
            .filter(|o| !matches!(*o, "Placeholder" | "Const" | "Identity"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let fused = ConvertOptions::default();
    assert_eq!(ops(&["x", "zero", "six"], &fused), ["Relu6"]);
    assert_eq!(ops(&["x", "zero"], &fused), ["Relu"]);
    assert_eq!(ops(&["x", "zero", "one"], &fused), ["Maximum", "Minimum"]);
    assert_eq!(ops(&["x", "", "six"], &fused), ["Minimum"]);
    assert_eq!(
        ops(&["x", "zero", "six"], &unoptimized()),
        ["Maximum", "Minimum"]
    );
}

/// A filter held in a variable is scaled after its transposition, in place
/// (one copy of the filter, not two): the bytes equal scaling the ONNX
/// rows first and transposing after, for float and double.
#[test]
fn scaling_the_transposed_filter_in_place_gives_the_bytes_of_scaling_first() {
    use super::constant;
    use savedmodel_graph::DType;
    // [M=3, C=2, kh=2, kw=2] -> [kh, kw, C, M].
    let onnx_shape = [3i64, 2, 2, 2];
    let perm = [2i64, 3, 1, 0];
    let scale = [0.5f64, -3.0, 1.0e-3];
    let values: Vec<f64> = (0..24).map(|i| f64::from(i) * 1.37 - 9.1).collect();
    for (dtype, size) in [(DType::Float, 4usize), (DType::Double, 8)] {
        let bytes: Vec<u8> = values
            .iter()
            .flat_map(|&v| {
                if size == 4 {
                    (v as f32).to_le_bytes().to_vec()
                } else {
                    v.to_le_bytes().to_vec()
                }
            })
            .collect();
        let scaled_first = constant::scale_rows(dtype, &bytes, &scale).unwrap();
        let expected = constant::transpose_bytes(&scaled_first, size, &onnx_shape, &perm).unwrap();
        let mut in_place = constant::transpose_bytes(&bytes, size, &onnx_shape, &perm).unwrap();
        constant::scale_last_axis_in_place(dtype, &mut in_place, &scale).unwrap();
        assert_eq!(in_place, expected, "{dtype}");
        assert_ne!(
            in_place,
            constant::transpose_bytes(&bytes, size, &onnx_shape, &perm).unwrap()
        );
    }
    let mut odd = vec![0u8; 4 * 5];
    assert!(constant::scale_last_axis_in_place(DType::Float, &mut odd, &scale).is_err());
}

/// `RoiAlign(x [1, 2, 8, 8], rois [3, 4], batch_indices [3])` with `attrs`.
fn roi_align_model(attrs: Vec<AttributeProto>) -> Arc<OnnxModel> {
    model_of(
        vec![node("RoiAlign", &["x", "rois", "batch"], "y", attrs)],
        vec![],
        vec![
            float_value("x", &[1, 2, 8, 8]),
            float_value("rois", &[3, 4]),
            int64_value("batch", &[3]),
        ],
        "y",
    )
}

#[test]
fn roi_align_gathers_four_corners_and_gives_rois_channels_and_output_size() {
    for mode in ["avg", "max"] {
        let model = roi_align_model(vec![
            int("output_height", 3),
            int("output_width", 4),
            int("sampling_ratio", 2),
            string("mode", mode),
        ]);
        let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
        // Three dimensions of X, four ROI coordinates, four corners.
        assert_eq!(op_count(&converted, "GatherV2"), 3 + 4 + 4, "{mode}");
        let reduce = if mode == "avg" { "Mean" } else { "Max" };
        assert_eq!(op_count(&converted, reduce), 1, "{mode}");
        let y = crate::convert::output_named(&converted, "y").unwrap();
        assert_eq!(y.shape().dims(), Some(&[3i64, 2, 3, 4][..]));
    }
}

#[test]
fn roi_align_samples_unknown_rois_adaptively_on_the_largest_grid_masked() {
    for mode in ["avg", "max"] {
        let model = roi_align_model(vec![int("output_height", 2), string("mode", mode)]);
        let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
        // The grid per axis: each ROI's count, the largest one's range.
        assert_eq!(op_count(&converted, "Ceil"), 2, "{mode}");
        assert_eq!(op_count(&converted, "Range"), 2, "{mode}");
        let reduce = if mode == "avg" { "Sum" } else { "Max" };
        assert!(op_count(&converted, reduce) >= 1, "{mode}");
        let y = crate::convert::output_named(&converted, "y").unwrap();
        assert_eq!(y.shape().dims(), Some(&[3i64, 2, 2, 1][..]));
    }
}

#[test]
fn roi_align_refuses_hostile_or_unsupported_attributes_by_name() {
    for (attrs, want) in [
        (
            vec![int("sampling_ratio", -1)],
            "sampling_ratio -1 is negative",
        ),
        (
            vec![int("output_height", 0)],
            "output_height 0 and output_width 1 must be between 1",
        ),
        (
            vec![int("output_width", 1 << 40), int("sampling_ratio", 1)],
            "must be between 1",
        ),
        (
            vec![
                int("output_height", 1024),
                int("output_width", 1024),
                int("sampling_ratio", 4),
            ],
            "more than 1048576 samples per ROI",
        ),
        (
            vec![string("mode", "median"), int("sampling_ratio", 1)],
            "mode \"median\"",
        ),
        (
            vec![
                string("coordinate_transformation_mode", "asymmetric"),
                int("sampling_ratio", 1),
            ],
            "coordinate_transformation_mode \"asymmetric\"",
        ),
    ] {
        let err = conversion_error(&roi_align_model(attrs));
        assert!(
            err.contains("RoiAlign") && err.contains(want),
            "{want}: {err}"
        );
    }
}

fn float_attr(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    }
}

#[test]
fn random_ops_draw_with_the_shape_dtype_and_seed_onnx_gives() {
    let model = model_of(
        vec![node(
            "RandomNormal",
            &[],
            "y",
            vec![
                ints("shape", &[2, 5]),
                int("dtype", DataType::Double as i32 as i64),
                float_attr("seed", 3.0),
            ],
        )],
        vec![],
        vec![],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.dtype(), savedmodel_graph::DType::Double);
    assert_eq!(y.shape().dims(), Some(&[2i64, 5][..]));
    let draw = converted
        .graph
        .nodes()
        .iter()
        .find(|n| n.op == "RandomStandardNormal")
        .unwrap();
    let seed2 = format!("{:?}", draw.attr.get("seed2").unwrap());
    assert!(seed2.contains(&3.0f32.to_bits().to_string()), "{seed2}");

    let model = model_of(
        vec![node("Bernoulli", &["p"], "y", vec![int("dtype", 7)])],
        vec![],
        vec![float_value("p", &[4, 3])],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.dtype(), savedmodel_graph::DType::Int64);
    assert_eq!(y.shape().dims(), Some(&[4i64, 3][..]));
    assert_eq!(op_count(&converted, "RandomUniform"), 1);

    let model = model_of(
        vec![node(
            "Multinomial",
            &["logits"],
            "y",
            vec![int("sample_size", 6)],
        )],
        vec![],
        vec![float_value("logits", &[2, 4])],
        "y",
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.dtype(), savedmodel_graph::DType::Int32);
    assert_eq!(y.shape().dims(), Some(&[2i64, 6][..]));
}

#[test]
fn random_ops_refuse_hostile_shapes_sizes_and_types_by_name() {
    let random = |op: &str, inputs: Vec<ValueInfoProto>, attrs: Vec<AttributeProto>| {
        let names: Vec<String> = inputs.iter().map(|v| v.name().to_owned()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        conversion_error(&model_of(
            vec![node(op, &names, "y", attrs)],
            vec![],
            inputs,
            "y",
        ))
    };
    let err = random(
        "RandomUniform",
        vec![],
        vec![ints("shape", &[1 << 20, 1 << 20])],
    );
    assert!(err.contains("is not a shape of at most"), "{err}");
    let err = random("RandomUniform", vec![], vec![ints("shape", &[-1, 3])]);
    assert!(err.contains("is not a shape of at most"), "{err}");
    let err = random("RandomNormal", vec![], vec![]);
    assert!(err.contains("the shape attribute is required"), "{err}");
    let err = random(
        "RandomUniformLike",
        vec![float_value("x", &[2])],
        vec![int("dtype", DataType::Int32 as i32 as i64)],
    );
    assert!(
        err.contains("RandomUniformLike of Int32 is not supported"),
        "{err}"
    );
    let err = random(
        "Multinomial",
        vec![float_value("x", &[2, 3])],
        vec![int("sample_size", 0)],
    );
    assert!(err.contains("sample_size 0 is not between 1"), "{err}");
    let err = random(
        "Multinomial",
        vec![float_value("x", &[2, 3])],
        vec![int("dtype", 1)],
    );
    assert!(
        err.contains("dtype 1 is not int32 (6) or int64 (7)"),
        "{err}"
    );
}

/// `QLinearConv` of a uint8 `x [1, 2, 5, 5]` by an int8 `w [3, 2, 3, 3]`
/// with per-output-channel weight scales and zero points, and a bias of
/// type `bias_type`.
fn qlinear_conv_model(bias_type: DataType) -> Arc<OnnxModel> {
    let tensor = |name: &str, dtype: DataType, dims: &[i64], bytes: Vec<u8>| TensorProto {
        name: Some(name.into()),
        data_type: Some(dtype as i32),
        dims: dims.to_vec(),
        raw_data: Some(bytes.into()),
        ..Default::default()
    };
    let f32s = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    let x = typed_value("x", &[1, 2, 5, 5], DataType::Uint8);
    model_of(
        vec![node(
            "QLinearConv",
            &["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "b"],
            "y",
            vec![ints("pads", &[1, 1, 1, 1])],
        )],
        vec![
            tensor("sx", DataType::Float, &[], f32s(&[0.5])),
            tensor("zx", DataType::Uint8, &[], vec![7]),
            tensor("w", DataType::Int8, &[3, 2, 3, 3], vec![1; 54]),
            tensor("sw", DataType::Float, &[3], f32s(&[0.1, 0.2, 0.3])),
            tensor("zw", DataType::Int8, &[3], vec![0, 1, 2]),
            tensor("sy", DataType::Float, &[], f32s(&[0.25])),
            tensor("zy", DataType::Uint8, &[], vec![128]),
            tensor(
                "b",
                bias_type,
                &[3],
                if bias_type == DataType::Float {
                    f32s(&[1.0, 2.0, 3.0])
                } else {
                    [1i32, 2, 3].iter().flat_map(|v| v.to_le_bytes()).collect()
                },
            ),
        ],
        vec![x],
        "y",
    )
}

#[test]
fn qlinear_conv_convolves_centered_int32_and_requantizes_per_channel() {
    let converted = crate::convert(
        &qlinear_conv_model(DataType::Int32),
        &ConvertOptions::default(),
    )
    .unwrap();
    let conv = converted
        .graph
        .nodes()
        .iter()
        .find(|n| n.op == "Conv2D")
        .unwrap();
    assert!(format!("{:?}", conv.attr.get("T").unwrap()).contains("Int32"));
    assert_eq!(op_count(&converted, "BiasAdd"), 1);
    assert_eq!(op_count(&converted, "Rint"), 1);
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.dtype(), savedmodel_graph::DType::UInt8);
    assert_eq!(y.shape().dims(), Some(&[1i64, 3, 5, 5][..]));
    let err = conversion_error(&qlinear_conv_model(DataType::Float));
    assert!(err.contains("QLinearConv takes int32"), "{err}");
}

#[test]
fn optionals_known_at_conversion_have_elements_or_refuse_to_give_one() {
    let constant = |converted: &crate::Converted, name: &str| {
        converted
            .graph
            .nodes()
            .iter()
            .find(|n| n.name.starts_with(name) && n.op == "Const")
            .map(|n| format!("{:?}", n.attr.get("value")))
            .unwrap()
    };
    let mut empty = node("Optional", &[], "none", vec![]);
    empty.attribute.push(AttributeProto {
        name: Some("type".into()),
        r#type: Some(AttributeType::TypeProto as i32),
        tp: float_value("t", &[2]).r#type,
        ..Default::default()
    });
    let model = model_with_outputs(
        18,
        vec![
            empty.clone(),
            node("Optional", &["x"], "some", vec![]),
            node("OptionalHasElement", &["none"], "has_none", vec![]),
            node("OptionalHasElement", &["some"], "has_some", vec![]),
            node("OptionalGetElement", &["some"], "y", vec![]),
        ],
        vec![],
        vec![float_value("x", &[2])],
        &["has_none", "has_some", "y"],
    );
    let converted = crate::convert(&model, &ConvertOptions::default()).unwrap();
    assert!(constant(&converted, "has_none").contains("false"));
    assert!(constant(&converted, "has_some").contains("true"));
    let y = crate::convert::output_named(&converted, "y").unwrap();
    assert_eq!(y.shape().dims(), Some(&[2i64][..]));

    let model = model_with_outputs(
        18,
        vec![empty, node("OptionalGetElement", &["none"], "y", vec![])],
        vec![],
        vec![],
        &["y"],
    );
    let err = conversion_error(&model);
    assert!(
        err.contains("\"none\" is an empty optional: it has no element to get"),
        "{err}"
    );
}
