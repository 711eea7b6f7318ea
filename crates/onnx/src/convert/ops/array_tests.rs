//! Unit tests of the array operators: ONNX's slice clamping, folding of
//! shape chains, and the graphs built for values known only at run time.
//! (The ONNX backend suite, run through TensorFlow by `cargo xtask
//! onnx-table`, checks the numbers.)

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use prost::Message;
use savedmodel_graph::Tensor;

use super::slice::{slice_axis, take};
use crate::proto::attribute_proto::AttributeType;
use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::{Dimension, dimension};
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
};
use crate::{ConvertOptions, Converted, OnnxModel, convert};

#[test]
fn slice_axis_clamps_as_onnx_says() {
    // Positive steps: starts and ends clamp into [0, dim].
    assert_eq!(slice_axis(1, 1000, 1, 5), (1, 5, 4));
    assert_eq!(slice_axis(-2, i64::MAX, 1, 5), (3, 5, 2));
    assert_eq!(slice_axis(7, 9, 1, 5), (5, 5, 0));
    assert_eq!(slice_axis(0, 5, 2, 5), (0, 5, 3));
    // Negative steps: starts clamp into [0, dim-1], ends into [-1, dim-1],
    // where -1 means "through index 0".
    assert_eq!(slice_axis(-1, i64::MIN, -1, 5), (4, -1, 5));
    assert_eq!(slice_axis(20, 0, -2, 5), (4, 0, 2));
    assert_eq!(slice_axis(-100, -100, -1, 5), (0, -1, 1));
    assert_eq!(slice_axis(0, 3, -1, 5), (0, 3, 0));
}

#[test]
fn take_picks_elements_along_each_axis() {
    let x = Tensor::new(&[2, 3], &[1i32, 2, 3, 4, 5, 6]).unwrap();
    let r = take(&x, &[vec![1, 0], vec![2, 0]]).unwrap();
    assert_eq!(r.shape(), &[2, 2]);
    let expected = Tensor::new(&[2, 2], &[6i32, 4, 3, 1]).unwrap();
    assert_eq!(r.bytes(), expected.bytes());
}

pub(super) fn float_input(name: &str, dims: &[i64]) -> ValueInfoProto {
    let shape = TensorShapeProto {
        dim: dims
            .iter()
            .map(|&d| Dimension {
                value: Some(dimension::Value::DimValue(d)),
                ..Default::default()
            })
            .collect(),
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(shape),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Int64 as i32),
        dims: vec![values.len() as i64],
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

pub(super) fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        name: Some(output.into()),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

fn convert_graph(nodes: Vec<NodeProto>, init: Vec<TensorProto>, outputs: &[&str]) -> Converted {
    convert_graph_with(&[2, 3, 4], nodes, init, outputs)
}

fn convert_graph_with(
    x_dims: &[i64],
    nodes: Vec<NodeProto>,
    init: Vec<TensorProto>,
    outputs: &[&str],
) -> Converted {
    let model = ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(21),
        }],
        graph: Some(GraphProto {
            name: Some("main".into()),
            node: nodes,
            initializer: init,
            input: vec![float_input("x", x_dims)],
            output: crate::convert::tests::named_values(outputs),
            ..Default::default()
        }),
        ..Default::default()
    };
    let model = Arc::new(OnnxModel::from_bytes(&model.encode_to_vec()).unwrap());
    convert(&model, &ConvertOptions::default()).unwrap()
}

fn ops(c: &Converted) -> Vec<String> {
    c.graph.nodes().iter().map(|n| n.op.clone()).collect()
}

#[test]
fn shape_chains_through_slice_and_range_are_folded() {
    // Shape(x)[1:] -> Range(0, 3, 1): every value is known when converting.
    let c = convert_graph(
        vec![
            node("Shape", &["x"], "s", vec![]),
            node("Slice", &["s", "one", "big"], "tail", vec![]),
            node("Range", &["zero", "three", "step"], "r", vec![]),
        ],
        vec![
            ints("one", &[1]),
            ints("big", &[i64::MAX]),
            TensorProto {
                dims: vec![],
                ..ints("zero", &[0])
            },
            TensorProto {
                dims: vec![],
                ..ints("three", &[3])
            },
            TensorProto {
                dims: vec![],
                ..ints("step", &[1])
            },
        ],
        &["tail", "r"],
    );
    let ops = ops(&c);
    assert!(
        !ops.iter()
            .any(|o| o == "StridedSlice" || o == "Range" || o == "Shape")
    );
    assert_eq!(c.outputs[0].tensor.shape().dims(), Some(&[2i64][..]));
    assert_eq!(c.outputs[1].tensor.shape().dims(), Some(&[3i64][..]));
}

#[test]
fn a_slice_of_a_runtime_value_is_one_strided_slice_with_its_shape_known() {
    // x[:, ::-2, 1:] (axes 1 and 2, negative step on axis 1).
    let c = convert_graph(
        vec![node(
            "Slice",
            &["x", "starts", "ends", "axes", "steps"],
            "y",
            vec![],
        )],
        vec![
            ints("starts", &[-1, 1]),
            ints("ends", &[i64::MIN, 100]),
            ints("axes", &[1, -1]),
            ints("steps", &[-2, 1]),
        ],
        &["y"],
    );
    assert_eq!(ops(&c).iter().filter(|o| *o == "StridedSlice").count(), 1);
    assert_eq!(c.outputs[0].tensor.shape().dims(), Some(&[2i64, 2, 3][..]));
}

#[test]
fn a_depth_to_space_in_crd_mode_without_known_channels_is_an_error_not_a_panic() {
    let model = ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(21),
        }],
        graph: Some(GraphProto {
            name: Some("main".into()),
            node: vec![node(
                "DepthToSpace",
                &["x"],
                "y",
                vec![
                    AttributeProto {
                        name: Some("blocksize".into()),
                        r#type: Some(AttributeType::Int as i32),
                        i: Some(2),
                        ..Default::default()
                    },
                    AttributeProto {
                        name: Some("mode".into()),
                        r#type: Some(AttributeType::String as i32),
                        s: Some(b"CRD".to_vec()),
                        ..Default::default()
                    },
                ],
            )],
            input: vec![float_input("x", &[1, -1, 2, 2])],
            output: vec![ValueInfoProto {
                name: Some("y".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let model = Arc::new(OnnxModel::from_bytes(&model.encode_to_vec()).unwrap());
    let err = convert(&model, &ConvertOptions::default()).unwrap_err();
    assert!(err.to_string().contains("channel count"), "{err}");
}

fn float_init(name: &str, dims: &[i64]) -> TensorProto {
    let n: i64 = dims.iter().product();
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Float as i32),
        dims: dims.to_vec(),
        float_data: (0..n).map(|i| i as f32 * 0.25 - 1.0).collect(),
        ..Default::default()
    }
}

#[test]
fn resize_and_pad_between_convolutions_keep_the_channels_last_layout() {
    // x -> Conv -> Resize -> Pad(reflect) -> Conv -> y: one transpose in,
    // one out, none around the resize and the pad.
    let mut scales = float_init("scales", &[4]);
    scales.float_data = vec![1.0, 1.0, 2.0, 1.5];
    let c = convert_graph_with(
        &[2, 2, 4, 4],
        vec![
            node("Conv", &["x", "w1"], "c1", vec![]),
            node("Resize", &["c1", "", "scales"], "r", vec![]),
            NodeProto {
                attribute: vec![AttributeProto {
                    name: Some("mode".into()),
                    r#type: Some(AttributeType::String as i32),
                    s: Some(b"reflect".to_vec()),
                    ..Default::default()
                }],
                ..node("Pad", &["r", "pads"], "p", vec![])
            },
            node("Conv", &["p", "w2"], "y", vec![]),
        ],
        vec![
            float_init("w1", &[4, 2, 1, 1]),
            float_init("w2", &[2, 4, 1, 1]),
            scales,
            ints("pads", &[0, 0, 1, 1, 0, 0, 1, 1]),
        ],
        &["y"],
    );
    assert_eq!(c.transposes, 2);
    assert_eq!(
        c.outputs[0].tensor.shape().dims(),
        Some(&[2i64, 2, 10, 8][..])
    );
}

#[test]
fn slices_and_splits_of_channels_last_values_stay_channels_last() {
    // x -> Conv -> Slice(channels 1..3) -> Split(channels) -> Conv, Conv.
    let c = convert_graph_with(
        &[1, 2, 4, 4],
        vec![
            node("Conv", &["x", "w1"], "c1", vec![]),
            node("Slice", &["c1", "start", "end", "axis"], "s", vec![]),
            NodeProto {
                output: vec!["a".into(), "b".into()],
                attribute: vec![AttributeProto {
                    name: Some("axis".into()),
                    r#type: Some(AttributeType::Int as i32),
                    i: Some(1),
                    ..Default::default()
                }],
                ..node("Split", &["s"], "a", vec![])
            },
            node("Conv", &["a", "w2"], "ya", vec![]),
            node("Conv", &["b", "w2"], "yb", vec![]),
        ],
        vec![
            float_init("w1", &[4, 2, 1, 1]),
            float_init("w2", &[3, 1, 1, 1]),
            ints("start", &[1]),
            ints("end", &[3]),
            ints("axis", &[1]),
        ],
        &["ya", "yb"],
    );
    // One transpose in, one per output.
    assert_eq!(c.transposes, 3);
    assert_eq!(
        c.outputs[1].tensor.shape().dims(),
        Some(&[1i64, 3, 4, 4][..])
    );
}
