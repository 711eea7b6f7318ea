//! The limits on convolution and pooling windows (`nn.rs: Window::read`,
//! `MAX_WINDOW`; `pool.rs: dilated_pool`): every absurd window is a clear
//! error naming the node, never a division by zero, an overflow or a graph
//! of millions of nodes.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use prost::Message;

use super::array_tests::{float_input, node};
use crate::proto::attribute_proto::AttributeType;
use crate::proto::{AttributeProto, GraphProto, ModelProto, OperatorSetIdProto, ValueInfoProto};
use crate::{ConvertOptions, OnnxModel, convert};

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.to_vec(),
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

/// Converts `x -> op(attrs) -> y` for an input of `x_dims`: the error text.
fn pool_error(op: &str, x_dims: &[i64], attrs: Vec<AttributeProto>) -> String {
    let model = ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(21),
        }],
        graph: Some(GraphProto {
            name: Some("main".into()),
            node: vec![node(op, &["x"], "y", attrs)],
            input: vec![float_input("x", x_dims)],
            output: vec![ValueInfoProto {
                name: Some("y".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let model = Arc::new(OnnxModel::from_bytes(&model.encode_to_vec()).unwrap());
    convert(&model, &ConvertOptions::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn window_values_outside_their_limits_are_refused() {
    let cases: [(Vec<AttributeProto>, &str); 6] = [
        (
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[0, 2])],
            "strides value 0 is not between 1 and 16777216",
        ),
        (
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[-1, 1])],
            "strides value -1 is not between 1 and 16777216",
        ),
        (
            vec![ints("kernel_shape", &[0, 2])],
            "kernel_shape value 0 is not between 1 and 16777216",
        ),
        (
            vec![ints("kernel_shape", &[1 << 25, 2])],
            "kernel_shape value 33554432 is not between 1 and 16777216",
        ),
        (
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("dilations", &[i64::MAX, 1]),
            ],
            "dilations value 9223372036854775807 is not between 1 and 16777216",
        ),
        (
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("pads", &[0, 0, 1 << 25, 0]),
            ],
            "pads above 16777216 are not supported",
        ),
    ];
    for (attrs, expected) in cases {
        let err = pool_error("MaxPool", &[1, 1, 8, 8], attrs);
        assert!(err.contains(expected), "{err}");
        assert!(err.contains("'y'") || err.contains("y"), "{err}");
    }
}

#[test]
fn dilated_pools_are_bounded_in_taps_and_counted_positions() {
    // 91 x 91 = 8,281 taps, each a StridedSlice (a 2-D maximum is one
    // Dilation2D instead, whatever its window).
    let err = pool_error(
        "AveragePool",
        &[1, 1, 200, 200],
        vec![ints("kernel_shape", &[91, 91]), ints("dilations", &[2, 2])],
    );
    assert!(
        err.contains("a dilated pooling window of more than 8192 taps is not supported"),
        "{err}"
    );
    // 2048 x 1024 output positions, each a count in a constant.
    let err = pool_error(
        "AveragePool",
        &[1, 1, 2049, 1025],
        vec![
            ints("kernel_shape", &[2, 2]),
            ints("dilations", &[1, 2]),
            int("ceil_mode", 0),
        ],
    );
    assert!(
        err.contains("a dilated average pool of more than 1048576 output positions"),
        "{err}"
    );
}

#[test]
fn huge_declared_dimensions_are_refused() {
    let err = pool_error(
        "MaxPool",
        &[1, 1, i64::MAX - 1, 4],
        vec![ints("kernel_shape", &[3, 3])],
    );
    assert!(
        err.contains("declares a dimension of 9223372036854775806, above the limit of 2147483647"),
        "{err}"
    );
}

#[test]
fn the_largest_declared_dimensions_do_not_overflow_the_window_arithmetic() {
    // Windows over the largest dimension a graph input may declare: the
    // output size and the padded shape are computed without overflowing,
    // whatever the converter then decides.
    for ceil in [0, 1] {
        let model = ModelProto {
            ir_version: Some(10),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(21),
            }],
            graph: Some(GraphProto {
                name: Some("main".into()),
                node: vec![node(
                    "MaxPool",
                    &["x"],
                    "y",
                    vec![
                        ints("kernel_shape", &[3, 3]),
                        ints("strides", &[2, 2]),
                        ints("pads", &[1 << 24, 1, 1 << 24, 1]),
                        int("ceil_mode", ceil),
                    ],
                )],
                input: vec![float_input(
                    "x",
                    &[1, 1, crate::convert::MAX_DECLARED_DIM, 4],
                )],
                output: vec![ValueInfoProto {
                    name: Some("y".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let model = Arc::new(OnnxModel::from_bytes(&model.encode_to_vec()).unwrap());
        let converted = convert(&model, &ConvertOptions::default());
        if let Ok(c) = converted {
            assert!(!c.graph.nodes().is_empty());
        }
    }
}
