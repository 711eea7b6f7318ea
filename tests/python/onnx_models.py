"""Small real-world ONNX models, built with the onnx helper API, and onnxruntime's outputs.

    .tf-venv/bin/python tests/python/onnx_models.py OUT_DIR [SET ...]

SET is `built` (the default: the models below, built with the onnx helper
API), `light` and `light-large` (the `onnx` package's light models, see
`LIGHT`), `skl2onnx`
(scikit-learn pipelines exported by skl2onnx) or `silero` (the ONNX files
of the silero-vad package). Writes,
for each model NAME:

    OUT_DIR/NAME/model.onnx
    OUT_DIR/NAME/inputs.npz      one array per graph input, by ONNX name
    OUT_DIR/NAME/expected.npz    onnxruntime's outputs, by ONNX output name

and prints a JSON list of {"name", "inputs": [...], "outputs": [...]}; where
a model ships its own expected outputs, also OUT_DIR/NAME/reference.npz and
"reference": {"rtol", "atol"} (the shipped tolerances; onnxruntime's
outputs were checked against them here); "atol_of_max" where an element's
absolute tolerance is that times its tensor's largest magnitude.

- `cnn`: what a plain image classifier exports: Conv -> BatchNormalization ->
  Relu -> MaxPool -> Conv -> BatchNormalization -> Add (residual) -> Relu ->
  GlobalAveragePool -> Flatten -> Gemm -> Softmax, NCHW, a dynamic batch,
  weights large enough to become variables.
- `transformer`: one encoder block as torch exports it: LayerNormalization,
  multi-head self-attention (MatMul, Reshape, Transpose, Softmax, scaled by
  a Div), residual Adds, a Gelu feed-forward; dynamic batch and sequence
  length.
- `recurrent`: stacked recurrent layers with a dynamic batch and sequence
  length: a bidirectional LSTM with sequence lengths, initial states,
  peepholes and `clip` (its recurrence weights large enough to become a
  variable); a reverse GRU with `linear_before_reset`, sequence lengths and
  HardSigmoid/Softsign with alpha and beta; a forward RNN with LeakyRelu; an
  LSTM with `input_forget` and Elu/ScaledTanh.
- `scan`: a `Scan` with a state, two scan inputs (one scanned along axis 1
  in reverse), a value of the outer graph used in the body, and two scan
  outputs (one stacked along the last axis in reverse); dynamic length.
- `sklearn`: what `skl2onnx` exports for a scikit-learn pipeline of a
  `StandardScaler` and a multinomial `LogisticRegression` (with
  `zipmap=False`), plus a `LinearRegression` head and an L2 `Normalizer`
  on the same scaled features: `ai.onnx.ml` Scaler -> LinearClassifier
  (SOFTMAX, int64 labels), LinearRegressor, Normalizer, and two regression
  trees (TreeEnsembleRegressor), the same trees as a 3-class random-forest
  and a binary boosted TreeEnsembleClassifier; dynamic batch.
- `detector`: two `RoiAlign` heads (average and max pooling) with adaptive
  sampling grids over a dynamic number of ROIs.

Weights come from a fixed seed, so every run builds the same models.
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = 21


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def cnn(rng):
    c1, c2, classes = 16, 16, 10
    inits = [
        const("conv1.w", rng.standard_normal((c1, 3, 3, 3)).astype(np.float32) * 0.3),
        const("conv1.b", rng.standard_normal(c1).astype(np.float32) * 0.1),
        const("bn1.scale", (1 + 0.1 * rng.standard_normal(c1)).astype(np.float32)),
        const("bn1.bias", (0.1 * rng.standard_normal(c1)).astype(np.float32)),
        const("bn1.mean", (0.1 * rng.standard_normal(c1)).astype(np.float32)),
        const("bn1.var", (1 + 0.1 * rng.random(c1)).astype(np.float32)),
        const("conv2.w", rng.standard_normal((c2, c1, 3, 3)).astype(np.float32) * 0.1),
        const("bn2.scale", (1 + 0.1 * rng.standard_normal(c2)).astype(np.float32)),
        const("bn2.bias", (0.1 * rng.standard_normal(c2)).astype(np.float32)),
        const("bn2.mean", (0.1 * rng.standard_normal(c2)).astype(np.float32)),
        const("bn2.var", (1 + 0.1 * rng.random(c2)).astype(np.float32)),
        const("fc.w", rng.standard_normal((classes, c2)).astype(np.float32) * 0.3),
        const("fc.b", rng.standard_normal(classes).astype(np.float32) * 0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv1.w", "conv1.b"], ["c1"], name="conv1",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var"],
                         ["b1"], name="bn1", epsilon=1e-5),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.w"], ["c2"], name="conv2",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c2", "bn2.scale", "bn2.bias", "bn2.mean", "bn2.var"],
                         ["b2"], name="bn2"),
        helper.make_node("Add", ["b2", "p1"], ["res"], name="residual"),
        helper.make_node("Relu", ["res"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes])],
        inits,
    )
    inputs = {"image": rng.standard_normal((4, 3, 16, 16)).astype(np.float32)}
    return graph, inputs


def transformer(rng):
    d, heads, ff = 32, 4, 64
    hd = d // heads

    def w(*shape, scale=0.2):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    inits = [
        const("ln1.g", (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)),
        const("ln1.b", w(d, scale=0.1)),
        const("q.w", w(d, d)), const("q.b", w(d, scale=0.1)),
        const("k.w", w(d, d)), const("k.b", w(d, scale=0.1)),
        const("v.w", w(d, d)), const("v.b", w(d, scale=0.1)),
        const("o.w", w(d, d)), const("o.b", w(d, scale=0.1)),
        const("ln2.g", (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)),
        const("ln2.b", w(d, scale=0.1)),
        const("ff1.w", w(d, ff)), const("ff1.b", w(ff, scale=0.1)),
        const("ff2.w", w(ff, d)), const("ff2.b", w(d, scale=0.1)),
        const("heads_shape", np.array([0, 0, heads, hd], dtype=np.int64)),
        const("model_shape", np.array([0, 0, d], dtype=np.int64)),
        const("scale", np.array(np.sqrt(hd), dtype=np.float32)),
    ]
    n = helper.make_node
    nodes = [
        n("LayerNormalization", ["x", "ln1.g", "ln1.b"], ["h"], name="ln1", axis=-1, epsilon=1e-5),
    ]
    for p in ("q", "k", "v"):
        nodes += [
            n("MatMul", ["h", p + ".w"], [p + "_mm"], name=p + "_proj"),
            n("Add", [p + "_mm", p + ".b"], [p + "_lin"], name=p + "_bias"),
            n("Reshape", [p + "_lin", "heads_shape"], [p + "_heads"], name=p + "_split"),
        ]
    nodes += [
        n("Transpose", ["q_heads"], ["q_t"], name="q_t", perm=[0, 2, 1, 3]),
        n("Transpose", ["k_heads"], ["k_t"], name="k_t", perm=[0, 2, 3, 1]),
        n("Transpose", ["v_heads"], ["v_t"], name="v_t", perm=[0, 2, 1, 3]),
        n("MatMul", ["q_t", "k_t"], ["scores"], name="scores"),
        n("Div", ["scores", "scale"], ["scaled"], name="scaled"),
        n("Softmax", ["scaled"], ["attn"], name="attn", axis=-1),
        n("MatMul", ["attn", "v_t"], ["ctx"], name="ctx"),
        n("Transpose", ["ctx"], ["ctx_t"], name="ctx_t", perm=[0, 2, 1, 3]),
        n("Reshape", ["ctx_t", "model_shape"], ["ctx_m"], name="merge_heads"),
        n("MatMul", ["ctx_m", "o.w"], ["o_mm"], name="o_proj"),
        n("Add", ["o_mm", "o.b"], ["o_lin"], name="o_bias"),
        n("Add", ["x", "o_lin"], ["res1"], name="residual1"),
        n("LayerNormalization", ["res1", "ln2.g", "ln2.b"], ["h2"], name="ln2", axis=-1, epsilon=1e-5),
        n("MatMul", ["h2", "ff1.w"], ["f1"], name="ff1"),
        n("Add", ["f1", "ff1.b"], ["f1b"], name="ff1_bias"),
        n("Gelu", ["f1b"], ["g"], name="gelu"),
        n("MatMul", ["g", "ff2.w"], ["f2"], name="ff2"),
        n("Add", ["f2", "ff2.b"], ["f2b"], name="ff2_bias"),
        n("Add", ["res1", "f2b"], ["y"], name="residual2"),
    ]
    graph = helper.make_graph(
        nodes, "encoder_block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", d])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", d])],
        inits,
    )
    inputs = {"x": rng.standard_normal((2, 7, d)).astype(np.float32)}
    return graph, inputs


def recurrent(rng):
    h1, h2, h3, h4, d_in = 8, 5, 3, 2, 3

    def w(*shape, scale=0.5):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    inits = [
        const("lstm.w", w(2, 4 * h1, d_in)), const("lstm.r", w(2, 4 * h1, h1)),
        const("lstm.b", w(2, 8 * h1)), const("lstm.p", w(2, 3 * h1)),
        const("gru.w", w(1, 3 * h2, 2 * h1)), const("gru.r", w(1, 3 * h2, h2)),
        const("gru.b", w(1, 6 * h2)),
        const("rnn.w", w(1, h3, h2)), const("rnn.r", w(1, h3, h3)),
        const("lstm2.w", w(1, 4 * h4, 2 * h1)), const("lstm2.r", w(1, 4 * h4, h4)),
        const("merge_shape", np.array([0, 0, 2 * h1], dtype=np.int64)),
        const("squeeze_axes", np.array([1], dtype=np.int64)),
    ]
    n = helper.make_node
    nodes = [
        n("LSTM", ["x", "lstm.w", "lstm.r", "lstm.b", "lens", "h0", "c0", "lstm.p"],
          ["y1", "y1_h", "y1_c"], name="lstm", direction="bidirectional",
          hidden_size=h1, clip=1.5),
        n("Transpose", ["y1"], ["y1_t"], name="y1_t", perm=[0, 2, 1, 3]),
        n("Reshape", ["y1_t", "merge_shape"], ["features"], name="merge_directions"),
        n("GRU", ["features", "gru.w", "gru.r", "gru.b", "lens"], ["y2", "y2_h"], name="gru",
          direction="reverse", hidden_size=h2, linear_before_reset=1,
          activations=["HardSigmoid", "Softsign"], activation_alpha=[0.3],
          activation_beta=[0.4]),
        n("Squeeze", ["y2", "squeeze_axes"], ["y2_s"], name="y2_s"),
        n("RNN", ["y2_s", "rnn.w", "rnn.r"], ["y3", "y3_h"], name="rnn", hidden_size=h3,
          activations=["LeakyRelu"], activation_alpha=[0.1]),
        n("LSTM", ["features", "lstm2.w", "lstm2.r"], ["", "y4_h"], name="lstm2",
          hidden_size=h4, input_forget=1, activations=["Sigmoid", "Elu", "ScaledTanh"],
          activation_alpha=[0.5, 0.8], activation_beta=[1.2]),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "recurrent",
        [
            helper.make_tensor_value_info("x", f, ["sequence", "batch", d_in]),
            helper.make_tensor_value_info("lens", TensorProto.INT32, ["batch"]),
            helper.make_tensor_value_info("h0", f, [2, "batch", h1]),
            helper.make_tensor_value_info("c0", f, [2, "batch", h1]),
        ],
        [
            helper.make_tensor_value_info("y1_h", f, [2, "batch", h1]),
            helper.make_tensor_value_info("y1_c", f, [2, "batch", h1]),
            helper.make_tensor_value_info("y2", f, ["sequence", 1, "batch", h2]),
            helper.make_tensor_value_info("y2_h", f, [1, "batch", h2]),
            helper.make_tensor_value_info("y3", f, ["sequence", 1, "batch", h3]),
            helper.make_tensor_value_info("y3_h", f, [1, "batch", h3]),
            helper.make_tensor_value_info("y4_h", f, [1, "batch", h4]),
        ],
        inits,
    )
    batch, seq = 3, 5
    inputs = {
        "x": rng.standard_normal((seq, batch, d_in)).astype(np.float32),
        "lens": np.array([5, 2, 4], dtype=np.int32),
        "h0": w(2, batch, h1),
        "c0": w(2, batch, h1),
    }
    return graph, inputs


def scan(rng):
    n = helper.make_node
    f = TensorProto.FLOAT
    body = helper.make_graph(
        [
            n("Mul", ["a_t", "b_t"], ["ab"], name="ab"),
            n("Mul", ["ab", "w"], ["prod"], name="prod"),
            n("ReduceSum", ["prod", "axes"], ["summed"], name="summed", keepdims=0),
            n("Add", ["acc_in", "summed"], ["acc_out"], name="accumulate"),
            n("Identity", ["acc_out"], ["acc_scan"], name="acc_scan"),
        ],
        "scan_body",
        [
            helper.make_tensor_value_info("acc_in", f, [4]),
            helper.make_tensor_value_info("a_t", f, [3, 4]),
            helper.make_tensor_value_info("b_t", f, [4]),
        ],
        [
            helper.make_tensor_value_info("acc_out", f, [4]),
            helper.make_tensor_value_info("prod", f, [3, 4]),
            helper.make_tensor_value_info("acc_scan", f, [4]),
        ],
        [const("axes", np.array([0], dtype=np.int64))],
    )
    nodes = [
        n("Scan", ["acc0", "a", "b"], ["acc", "prods", "accs"], name="scan", body=body,
          num_scan_inputs=2, scan_input_axes=[1, 0], scan_input_directions=[1, 0],
          scan_output_axes=[-1, 0], scan_output_directions=[1, 0]),
    ]
    graph = helper.make_graph(
        nodes, "scan",
        [
            helper.make_tensor_value_info("acc0", f, [4]),
            helper.make_tensor_value_info("a", f, [3, "steps", 4]),
            helper.make_tensor_value_info("b", f, ["steps", 4]),
            helper.make_tensor_value_info("w", f, [4]),
        ],
        [
            helper.make_tensor_value_info("acc", f, [4]),
            helper.make_tensor_value_info("prods", f, [3, 4, "steps"]),
            helper.make_tensor_value_info("accs", f, ["steps", 4]),
        ],
    )
    steps = 5
    inputs = {
        "acc0": rng.standard_normal(4).astype(np.float32),
        "a": rng.standard_normal((3, steps, 4)).astype(np.float32),
        "b": rng.standard_normal((steps, 4)).astype(np.float32),
        "w": rng.standard_normal(4).astype(np.float32),
    }
    return graph, inputs


def detector(rng):
    """Two `RoiAlign` heads over a feature map, with adaptive sampling
    (`sampling_ratio` 0: each ROI's grid from its size, so the ROIs'
    grids differ) and a dynamic number of ROIs: average pooling with
    `half_pixel`, max pooling with `output_half_pixel`."""
    n = helper.make_node
    f = TensorProto.FLOAT
    nodes = [
        n("RoiAlign", ["features", "rois", "batch_indices"], ["pooled_avg"], name="roi_avg",
          mode="avg", output_height=3, output_width=2, sampling_ratio=0, spatial_scale=0.5,
          coordinate_transformation_mode="half_pixel"),
        n("RoiAlign", ["features", "rois", "batch_indices"], ["pooled_max"], name="roi_max",
          mode="max", output_height=2, output_width=2, sampling_ratio=0, spatial_scale=0.5,
          coordinate_transformation_mode="output_half_pixel"),
    ]
    graph = helper.make_graph(
        nodes, "detector",
        [
            helper.make_tensor_value_info("features", f, [2, 4, 12, 10]),
            helper.make_tensor_value_info("rois", f, ["rois", 4]),
            helper.make_tensor_value_info("batch_indices", TensorProto.INT64, ["rois"]),
        ],
        [
            helper.make_tensor_value_info("pooled_avg", f, ["rois", 4, 3, 2]),
            helper.make_tensor_value_info("pooled_max", f, ["rois", 4, 2, 2]),
        ],
    )
    inputs = {
        "features": rng.standard_normal((2, 4, 12, 10)).astype(np.float32),
        # x1, y1, x2, y2 at twice the feature map's scale: small, large,
        # partly outside, and one point.
        "rois": np.array([[0, 0, 6, 6], [2, 1, 19, 23], [10, 12, 30, 30], [5, 5, 5, 5]],
                         dtype=np.float32),
        "batch_indices": np.array([0, 1, 1, 0], dtype=np.int64),
    }
    return graph, inputs


ML_OPSET = 3


def sklearn(rng):
    features = 4
    mean = rng.standard_normal(features).astype(np.float32)
    # Two small trees: tree 0 splits feature 0 then feature 2, tree 1
    # splits feature 1.
    tree_nodes = dict(
        nodes_treeids=[0, 0, 0, 0, 0, 1, 1, 1],
        nodes_nodeids=[0, 1, 2, 3, 4, 0, 1, 2],
        nodes_featureids=[0, 2, 0, 0, 0, 1, 0, 0],
        nodes_values=[0.1, -0.3, 0.0, 0.0, 0.0, 0.2, 0.0, 0.0],
        nodes_modes=["BRANCH_LEQ", "BRANCH_LT", "LEAF", "LEAF", "LEAF",
                     "BRANCH_GT", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 3, 0, 0, 0, 1, 0, 0],
        nodes_falsenodeids=[2, 4, 0, 0, 0, 2, 0, 0],
    )
    scale = (1.0 / (0.5 + rng.random(features))).astype(np.float32)
    nodes = [
        helper.make_node("Scaler", ["x"], ["scaled"], domain="ai.onnx.ml",
                         offset=mean.tolist(), scale=scale.tolist()),
        helper.make_node("LinearClassifier", ["scaled"], ["label", "probabilities"],
                         domain="ai.onnx.ml",
                         coefficients=rng.standard_normal(3 * features).astype(np.float32).tolist(),
                         intercepts=rng.standard_normal(3).astype(np.float32).tolist(),
                         classlabels_ints=[10, 20, 30], multi_class=1, post_transform="SOFTMAX"),
        helper.make_node("LinearRegressor", ["scaled"], ["value"], domain="ai.onnx.ml",
                         coefficients=rng.standard_normal(features).astype(np.float32).tolist(),
                         intercepts=[0.75], targets=1),
        helper.make_node("Normalizer", ["scaled"], ["normalized"], domain="ai.onnx.ml", norm="L2"),
        # Two small regression trees, as a gradient-boosting model exports.
        helper.make_node(
            "TreeEnsembleRegressor", ["scaled"], ["forest"], domain="ai.onnx.ml",
            n_targets=1, aggregate_function="SUM", base_values=[0.5], **tree_nodes,
            target_treeids=[0, 0, 0, 1, 1], target_nodeids=[2, 3, 4, 1, 2],
            target_ids=[0, 0, 0, 0, 0], target_weights=[1.5, -0.7, 0.25, 2.0, -1.0]),
        # The same trees as a random-forest classifier (each leaf's class
        # probabilities, halved for the two trees) and as a binary
        # boosted classifier (weights of one class, LOGISTIC).
        helper.make_node(
            "TreeEnsembleClassifier", ["scaled"], ["forest_label", "forest_probabilities"],
            domain="ai.onnx.ml", classlabels_int64s=[10, 20, 30],
            **tree_nodes,
            class_treeids=[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
            class_nodeids=[2, 2, 2, 3, 3, 3, 4, 4, 4, 1, 1, 1, 2, 2, 2],
            class_ids=[0, 1, 2] * 5,
            class_weights=[0.4, 0.05, 0.05, 0.1, 0.3, 0.1, 0.0, 0.15, 0.35,
                           0.25, 0.25, 0.0, 0.05, 0.05, 0.4]),
        helper.make_node(
            "TreeEnsembleClassifier", ["scaled"], ["binary_label", "binary_scores"],
            domain="ai.onnx.ml", classlabels_int64s=[0, 1], post_transform="LOGISTIC",
            **tree_nodes,
            class_treeids=[0, 0, 0, 1, 1], class_nodeids=[2, 3, 4, 1, 2],
            class_ids=[0, 0, 0, 0, 0], class_weights=[1.5, -0.7, 0.25, 2.0, -1.0]),
    ]
    graph = helper.make_graph(
        nodes, "pipeline",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("value", TensorProto.FLOAT, ["batch", 1]),
         helper.make_tensor_value_info("normalized", TensorProto.FLOAT, ["batch", features]),
         helper.make_tensor_value_info("forest", TensorProto.FLOAT, ["batch", 1]),
         helper.make_tensor_value_info("forest_label", TensorProto.INT64, ["batch"]),
         helper.make_tensor_value_info("forest_probabilities", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("binary_label", TensorProto.INT64, ["batch"]),
         helper.make_tensor_value_info("binary_scores", TensorProto.FLOAT, ["batch", 2])],
    )
    inputs = {"x": rng.standard_normal((16, features)).astype(np.float32)}
    return graph, inputs


def built(out_dir, rng):
    """The models above, built with the helper API."""
    for name, build in (("cnn", cnn), ("transformer", transformer),
                        ("recurrent", recurrent), ("scan", scan), ("sklearn", sklearn),
                        ("detector", detector)):
        graph, inputs = build(rng)
        opsets = [helper.make_opsetid("", OPSET)]
        if name == "sklearn":
            opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
        model = helper.make_model(graph, opset_imports=opsets)
        model.ir_version = 10
        onnx.checker.check_model(model, full_check=True)
        yield write_case(out_dir, name, model, inputs)
        if name == "transformer":
            # The same model (batch and sequence symbolic) at another batch
            # and sequence length.
            other = {"x": rng.standard_normal((3, 11, inputs["x"].shape[2])).astype(np.float32)}
            yield write_case(out_dir, "transformer_batch3_sequence11", model, other)


# The `light` models the onnx package ships
# (`onnx/backend/test/data/light/light_<name>.onnx`, ONNX model zoo
# architectures with every weight a `ConstantOfShape` of 0.02, opset 9, IR
# version 3) and the runner's tolerance for each
# (`onnx/backend/test/case/model/__init__.py`).
LIGHT = (("densenet121", 2e-3), ("inception_v1", 1e-3), ("inception_v2", 1e-3),
         ("resnet50", 1e-3), ("shufflenet", 1e-3), ("squeezenet", 1e-3))
# The three whose dense layers hold 61M to 144M weights, filled at run time
# by `ConstantOfShape` (about 10 s of TensorFlow and onnxruntime each): set
# `light-large`, not run by the tests.
LIGHT_LARGE = (("bvlc_alexnet", 1e-3), ("vgg19", 1e-3), ("zfnet512", 1e-3))
LIGHT_ATOL = 1e-7
# The ones small enough (at most about 8M weights) to also be written with
# random weights in place of the constant ones.
LIGHT_RANDOM = ("densenet121", "inception_v1", "shufflenet", "squeezenet")


def light_dir():
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def light_extra_outputs(model):
    """The model with the input of its last Softmax and the output of its
    last Conv that is still a feature map (wider than 1x1) as further graph
    outputs, after the shipped one.

    With weights that are all equal, every channel of a feature map holds
    the same values and the classifier's output is uniform; the feature
    map still varies over space with the input, so it shows a spatial
    layout error that the shipped output hides.
    """
    inferred = onnx.shape_inference.infer_shapes(model)
    infos = {v.name: v for v in inferred.graph.value_info}

    def spatial(name):
        dims = infos[name].type.tensor_type.shape.dim if name in infos else []
        return len(dims) == 4 and dims[2].dim_value * dims[3].dim_value > 1

    convs = [n.output[0] for n in model.graph.node if n.op_type == "Conv" and spatial(n.output[0])]
    softmax = [n for n in model.graph.node if n.op_type == "Softmax"]
    wanted = [convs[-1]]
    if softmax:
        wanted.append(softmax[-1].input[0])
    have = {o.name for o in model.graph.output}
    for name in wanted:
        if name not in have:
            model.graph.output.append(infos[name])
            have.add(name)
    return model


def light_random_weights(model, rng):
    """The model with each `ConstantOfShape` weight replaced by a seeded
    random initializer, scaled by what consumes it (He-scaled convolution
    and dense kernels, batch-norm scales and variances near 1, small biases
    and means), so the channels differ and the classes are not uniform.
    """
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consumers = {}
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))

    def role(name):
        node, i = consumers[name][0]
        if node.op_type in ("Unsqueeze", "Reshape") and i == 0:
            return role(node.output[0])
        if node.op_type in ("Conv", "Gemm") and i == 1:
            return "kernel", node
        if (node.op_type == "BatchNormalization" and i in (1, 4)) or node.op_type == "Mul":
            return "scale", node
        return "shift", node

    kept = []
    added = []
    for node in model.graph.node:
        if node.op_type != "ConstantOfShape":
            kept.append(node)
            continue
        shape = tuple(int(d) for d in inits[node.input[0]])
        what, consumer = role(node.output[0])
        if what == "kernel":
            if consumer.op_type == "Gemm":
                trans_b = next((a.i for a in consumer.attribute if a.name == "transB"), 0)
                fan_in = shape[-1] if trans_b else shape[0]
            else:
                fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        elif what == "scale":
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = 0.1 * rng.standard_normal(shape)
        added.append(const(node.output[0], value.astype(np.float32)))
    del model.graph.node[:]
    model.graph.node.extend(kept)
    model.graph.initializer.extend(added)
    return model


def light(out_dir, rng, models=LIGHT):
    """The onnx package's light models: onnxruntime's outputs checked
    against the shipped ones, then written with further outputs; the small
    ones also with random weights."""
    for name, rtol in models:
        path = os.path.join(light_dir(), f"light_{name}.onnx")
        model = onnx.load(path)
        inits = {i.name for i in model.graph.initializer}
        (x,) = [i for i in model.graph.input if i.name not in inits]
        shape = tuple(d.dim_value for d in x.type.tensor_type.shape.dim)
        # The runner's input for these models
        # (`onnx/backend/test/runner/__init__.py`, `generate_dummy_data`
        # with `random=False`).
        count = int(np.prod(shape))
        inputs = {x.name: (np.arange(count).reshape(shape) / count).astype(np.float32)}
        shipped = numpy_helper.to_array(
            onnx.load_tensor(os.path.join(light_dir(), f"light_{name}_output_0.pb")))
        model = light_extra_outputs(model)
        case = write_case(out_dir, f"light_{name}", model, inputs)
        np.testing.assert_allclose(
            case["expected"][model.graph.output[0].name], shipped, rtol=rtol, atol=LIGHT_ATOL,
            err_msg=f"onnxruntime against the shipped output of light_{name}")
        np.savez(os.path.join(out_dir, case["name"], "reference.npz"),
                 **{model.graph.output[0].name: shipped})
        case["reference"] = {"rtol": rtol, "atol": LIGHT_ATOL}
        yield case
        if name in LIGHT_RANDOM:
            model = light_random_weights(model, rng)
            case = write_case(out_dir, f"light_{name}_random_weights", model, inputs)
            # Deep feature maps of random weights reach 1e6 and cancel to
            # near 0: an element's error is judged against its tensor's
            # largest magnitude (a layout or weight error is of that order).
            case["atol_of_max"] = 1e-5
            yield case


def light_large(out_dir, rng):
    return light(out_dir, rng, LIGHT_LARGE)


def skl2onnx_models(out_dir, rng):
    """scikit-learn pipelines as `skl2onnx` exports them (`zipmap=False`, so
    the probabilities are a tensor), trained on seeded synthetic data."""
    import warnings

    from skl2onnx import to_onnx
    from sklearn.datasets import make_classification, make_regression
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                                  RandomForestClassifier)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    x, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3,
                               random_state=7)
    x = x.astype(np.float32)
    xr, yr = make_regression(n_samples=300, n_features=5, noise=0.1, random_state=7)
    xr = xr.astype(np.float32)
    pipelines = (
        # Scaler -> LinearClassifier -> Normalizer.
        ("skl2onnx_logistic_regression",
         make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), x, y),
        # Cast, Mul, Add -> TreeEnsembleClassifier (averaged probabilities).
        ("skl2onnx_random_forest",
         make_pipeline(MinMaxScaler(), RandomForestClassifier(
             n_estimators=12, max_depth=6, random_state=7)), x, y),
        # TreeEnsembleClassifier with summed scores and a softmax.
        ("skl2onnx_gradient_boosting",
         GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=7), x, y),
        # Scaler -> Sub, MatMul (PCA) -> TreeEnsembleRegressor.
        ("skl2onnx_pca_boosted_regressor",
         make_pipeline(StandardScaler(), PCA(n_components=3),
                       GradientBoostingRegressor(n_estimators=20, random_state=7)), xr, yr),
    )
    for name, pipeline, data, target in pipelines:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipeline.fit(data, target)
            final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
            options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
            model = to_onnx(pipeline, data[:1], options=options,
                            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET})
        # Rows the models were not trained on, some far outside the data.
        rows = rng.standard_normal((24, data.shape[1])).astype(np.float32) * 2
        yield write_case(out_dir, name, model, {model.graph.input[0].name: rows})


def silero_dir():
    """The ONNX files of the `silero-vad` package, found without importing it
    (it imports torch, which the test virtualenv does not have)."""
    import importlib.util

    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("silero-vad is not installed: run `cargo xtask tf-env`")
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def silero_audio(rng, rows, samples, rate):
    """Speech-like test signals: a voiced tone with harmonics under a
    syllable-rate envelope, with noise."""
    t = np.arange(samples) / rate
    out = []
    for _ in range(rows):
        f0 = rng.uniform(100, 250)
        voice = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 6) * t + rng.uniform(0, 6))
        out.append(0.3 * voice * envelope + 0.02 * rng.standard_normal(samples))
    return np.stack(out).astype(np.float32)


def silero(out_dir, rng):
    """The voice activity detector of the `silero-vad` package, as shipped:

    - `silero_vad.onnx` (opset 16): the 16 kHz and 8 kHz models as the two
      branches of an `If` on the sample rate, each with an LSTM and the
      `If`s of a scripted export that squeeze a dimension when it is 1.
      Those change a value's rank, so the chunk length is fixed here: the
      declared input shape becomes [batch, 288] (the 8 kHz chunk, 256
      samples and a 32-sample context; at 16 kHz a half chunk), and the
      rank-changing `If`s are decided at conversion; the sample rate's `If`
      stays TensorFlow's `If`, run at 16 kHz and at 8 kHz. (At 576 samples,
      the 16 kHz chunk, the 8 kHz branch, converted too, would feed its
      LSTM a rank-5 value: that length is for the 16 kHz branch only.)
      onnxruntime runs the model as shipped.
    - `silero_vad_op18_ifless.onnx` (opset 18): the LSTM cell as `Gemm`s and
      the one `If` on the sample rate, with dynamic batch and length, run
      at 16 kHz and at 8 kHz (256 + 32 samples).
    - `silero_vad_16k_sequence.onnx`: a sequence of chunks through the LSTM
      operator, with its states.

    Each is run on a batch after two chunks whose state onnxruntime
    carried, so the state fed is a real one.
    """
    data = silero_dir()
    shipped = onnx.load(os.path.join(data, "silero_vad.onnx"))
    pinned = onnx.load(os.path.join(data, "silero_vad.onnx"))
    (audio,) = [i for i in pinned.graph.input if i.name == "input"]
    audio.type.tensor_type.shape.dim[1].Clear()
    audio.type.tensor_type.shape.dim[1].dim_value = 288
    ifless = onnx.load(os.path.join(data, "silero_vad_op18_ifless.onnx"))
    cases = (
        ("silero_vad_288_16k", pinned, shipped, 16000, 288),
        ("silero_vad_288_8k", pinned, shipped, 8000, 288),
        ("silero_vad_op18_ifless", ifless, ifless, 16000, 576),
        ("silero_vad_op18_ifless_8k", ifless, ifless, 8000, 288),
    )
    for name, model, judged, rate, samples in cases:
        batch = 3
        state = np.zeros((2, batch, 128), np.float32)
        session = ort.InferenceSession(judged.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        sr = np.array(rate, dtype=np.int64)
        for _ in range(2):
            x = silero_audio(rng, batch, samples, rate)
            _, state = session.run(["output", "stateN"], {"input": x, "state": state, "sr": sr})
        inputs = {"input": silero_audio(rng, batch, samples, rate), "state": state, "sr": sr}
        yield write_case(out_dir, name, model, inputs, judged)
    model = onnx.load(os.path.join(data, "silero_vad_16k_sequence.onnx"))
    inputs = {"input": silero_audio(rng, 6, 576, 16000),
              "h": (0.1 * rng.standard_normal((1, 1, 128))).astype(np.float32),
              "c": (0.1 * rng.standard_normal((1, 1, 128))).astype(np.float32)}
    yield write_case(out_dir, "silero_vad_16k_sequence", model, inputs)


SETS = {"built": built, "light": light, "light-large": light_large,
        "skl2onnx": skl2onnx_models, "silero": silero}


def write_case(out_dir, name, model, inputs, judged=None):
    """Writes the model, its inputs and onnxruntime's outputs (of `judged`,
    when given, else of the model); the listing entry."""
    case = os.path.join(out_dir, name)
    os.makedirs(case, exist_ok=True)
    path = os.path.join(case, "model.onnx")
    onnx.save(model, path)
    if judged is None:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    else:
        session = ort.InferenceSession(judged.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(names, inputs)))
    np.savez(os.path.join(case, "inputs.npz"), **inputs)
    np.savez(os.path.join(case, "expected.npz"), **outputs)
    return {"name": name, "inputs": sorted(inputs), "outputs": names, "expected": outputs}


def main():
    out_dir = sys.argv[1]
    sets = sys.argv[2:] or ["built"]
    rng = np.random.default_rng(20261202)
    listing = []
    for name in sets:
        for case in SETS[name](out_dir, rng):
            del case["expected"]
            listing.append(case)
    json.dump(listing, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
