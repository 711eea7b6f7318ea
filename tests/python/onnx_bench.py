"""The Python side of `cargo xtask onnx-bench`: the model, and inference timing.

    .tf-venv/bin/python tests/python/onnx_bench.py build OUT_DIR [--image N]
    .tf-venv/bin/python tests/python/onnx_bench.py infer MODEL.onnx SAVED_MODEL_DIR \
        --threads N [--batches 1,8] [--runs 20] [--warmup 3] [--image N] \
        [--onnx2tf ONNX2TF_SAVED_MODEL_DIR]

`build` writes, with the onnx helper API and a fixed seed:

- OUT_DIR/model.onnx: a ResNet-style CNN in NCHW with about 25 M parameters
  (a 7x7/2 stem convolution, BatchNormalization, Relu, a 3x3/2 MaxPool, then
  basic residual blocks of two 3x3 convolutions with BatchNormalization at
  widths 64-128-256-512, [3, 4, 6, 4] blocks, a 1x1 projection where the
  width or stride changes, residual Adds, GlobalAveragePool, Flatten and a
  1000-class Gemm), a dynamic batch, weights inside the file;
- OUT_DIR/tiny.onnx: the same graph at width 8 with one block per stage
  (the baseline for the converter's memory: same code paths, no weight
  data to speak of);

and prints one JSON object: parameters, the largest initializer, node
counts, file sizes.

`infer` times TensorFlow 2.21 running the converted SavedModel (the
`serving_default` signature, loaded into a `tf.compat.v1.Session` as
TensorFlow Serving does, with `intra_op_parallelism_threads` and
`inter_op_parallelism_threads` both N, oneDNN as the environment says:
TensorFlow's default, on, unless `TF_ENABLE_ONEDNN_OPTS` is set) against onnxruntime on the ONNX model
(`intra_op_num_threads` and `inter_op_num_threads` both N, CPU provider,
default graph optimizations), on the same random inputs. For each batch
size, after WARMUP untimed runs of each, RUNS rounds alternate one
TensorFlow run and one onnxruntime run, so both see the same machine load.
Each run is timed with `time.perf_counter` around `Session.run` alone.
Fails when the two disagree (relative to the largest output). Prints one
JSON object with the versions, the Transpose nodes in `saved_model.pb`
(graph and function library) and, per batch, the seconds of each run.

With `--onnx2tf DIR`, the SavedModel onnx2tf wrote from the same ONNX model
runs too, in its own session with the same configuration, and each round
times it after the other two. onnx2tf's graph is channels-last: when its
signature's input is [batch, H, W, C] while the ONNX input is
[batch, C, H, W], it is fed the same image transposed (outside the timed
call), and a rank-4 output is transposed back before comparing. Its
Transpose nodes are counted the same way, and also as the nodes a run
executes (functions called from the graph, each call counted), since a
Keras SavedModel keeps several copies of its functions.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

OPSET = 21
SEED = 20261202
INPUT = "image"
OUTPUT = "logits"
CLASSES = 1000
WIDTHS = (64, 128, 256, 512)
BLOCKS = (3, 4, 6, 4)
TINY_WIDTHS = (8, 8, 8, 8)
TINY_BLOCKS = (1, 1, 1, 1)
# Outputs must agree to this fraction of the largest absolute output.
TOLERANCE = 1e-3


def build_graph(rng, widths, blocks, classes, image):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = []
    nodes = []

    def weight(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def conv_bn(x, name, c_in, c_out, kernel, stride, relu, bn_scale=1.0):
        fan_in = c_in * kernel * kernel
        w = rng.standard_normal((c_out, c_in, kernel, kernel)) * np.sqrt(2.0 / fan_in)
        pad = kernel // 2
        nodes.append(helper.make_node(
            "Conv", [x, weight(name + ".w", w)], [name + ".conv"], name=name + ".conv",
            kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4))
        bn = [
            weight(name + ".bn.scale", bn_scale * (1 + 0.1 * rng.standard_normal(c_out))),
            weight(name + ".bn.bias", 0.1 * rng.standard_normal(c_out)),
            weight(name + ".bn.mean", 0.1 * rng.standard_normal(c_out)),
            weight(name + ".bn.var", 1 + 0.1 * rng.random(c_out)),
        ]
        nodes.append(helper.make_node(
            "BatchNormalization", [name + ".conv"] + bn, [name + ".bn"], name=name + ".bn",
            epsilon=1e-5))
        if not relu:
            return name + ".bn"
        nodes.append(helper.make_node("Relu", [name + ".bn"], [name + ".relu"], name=name + ".relu"))
        return name + ".relu"

    x = conv_bn(INPUT, "stem", 3, widths[0], 7, 2, relu=True)
    nodes.append(helper.make_node("MaxPool", [x], ["stem.pool"], name="stem.pool",
                                  kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, c_in = "stem.pool", widths[0]
    for stage, (width, count) in enumerate(zip(widths, blocks)):
        for block in range(count):
            stride = 2 if stage > 0 and block == 0 else 1
            name = f"layer{stage + 1}.{block}"
            h = conv_bn(x, name + ".a", c_in, width, 3, stride, relu=True)
            # A small scale on the branch's last batch norm keeps the
            # residual sum's magnitude steady through the blocks.
            h = conv_bn(h, name + ".b", width, width, 3, 1, relu=False, bn_scale=0.3)
            shortcut = x
            if stride != 1 or c_in != width:
                shortcut = conv_bn(x, name + ".proj", c_in, width, 1, stride, relu=False)
            nodes.append(helper.make_node("Add", [h, shortcut], [name + ".add"], name=name + ".add"))
            nodes.append(helper.make_node("Relu", [name + ".add"], [name + ".out"], name=name + ".out"))
            x, c_in = name + ".out", width
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1))
    fc_w = rng.standard_normal((classes, c_in)) * np.sqrt(1.0 / c_in)
    fc_b = 0.01 * rng.standard_normal(classes)
    nodes.append(helper.make_node("Gemm", ["flat", weight("fc.w", fc_w), weight("fc.b", fc_b)],
                                  [OUTPUT], name="fc", transB=1))
    graph = helper.make_graph(
        nodes, "resnet",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 3, image, image])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model


def build(args):
    import onnx

    os.makedirs(args.out_dir, exist_ok=True)
    rng = np.random.default_rng(SEED)
    summary = {}
    for name, widths, blocks, classes in (
        ("model", WIDTHS, BLOCKS, CLASSES),
        ("tiny", TINY_WIDTHS, TINY_BLOCKS, 10),
    ):
        model = build_graph(rng, widths, blocks, classes, args.image)
        path = os.path.join(args.out_dir, name + ".onnx")
        onnx.save(model, path)
        sizes = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer}
        largest = max(sizes, key=sizes.get)
        ops = {}
        for node in model.graph.node:
            ops[node.op_type] = ops.get(node.op_type, 0) + 1
        summary[name] = {
            "path": path,
            "file_bytes": os.path.getsize(path),
            "parameters": sum(sizes.values()),
            "initializers": len(sizes),
            "largest_initializer": largest,
            "largest_initializer_bytes": 4 * sizes[largest],
            "nodes": len(model.graph.node),
            "ops": ops,
            "image": args.image,
        }
    json.dump(summary, sys.stdout)
    print()
    return 0


def count_transposes(saved_model_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    count = 0
    for meta in proto.meta_graphs:
        count += sum(n.op == "Transpose" for n in meta.graph_def.node)
        for function in meta.graph_def.library.function:
            count += sum(n.op == "Transpose" for n in function.node_def)
    return count


def executed_transposes(saved_model_dir):
    """Transpose nodes one run of the graph executes: the graph's own, plus
    those of every function it calls, counted per call, recursively."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    (meta,) = [m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags]
    functions = {f.signature.name: f for f in meta.graph_def.library.function}
    memo = {}

    def called(node):
        for value in node.attr.values():
            if value.HasField("func") and value.func.name in functions:
                yield value.func.name

    def in_function(name):
        if name not in memo:
            memo[name] = 0  # a recursive call counts once
            memo[name] = sum(
                (n.op == "Transpose") + sum(in_function(c) for c in called(n))
                for n in functions[name].node_def)
        return memo[name]

    return sum((n.op == "Transpose") + sum(in_function(c) for c in called(n))
               for n in meta.graph_def.node)


def load_session(tf, saved_model_dir, threads):
    """The SavedModel in a v1 Session, as TensorFlow Serving loads it; returns
    the session, the input and output tensor names and the input's shape."""
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=config)
    with graph.as_default():
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], saved_model_dir)
    signature = meta.signature_def["serving_default"]
    ((_, tf_input),) = signature.inputs.items()
    (tf_output,) = [t.name for t in signature.outputs.values()]
    shape = [d.size for d in tf_input.tensor_shape.dim]
    return session, tf_input.name, tf_output, shape


def infer(args):
    import onnxruntime as ort
    import tensorflow as tf

    # The v1 loader's deprecation notice is not news.
    tf.get_logger().setLevel("ERROR")
    threads = args.threads
    session, tf_input, tf_output, _ = load_session(tf, args.saved_model, threads)
    if args.onnx2tf:
        o2t_session, o2t_input, o2t_output, o2t_shape = load_session(tf, args.onnx2tf, threads)
        # Channels-last when the channel count (3) is last and not second.
        o2t_nhwc = len(o2t_shape) == 4 and o2t_shape[3] == 3 and o2t_shape[1] != 3

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    ort_session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(SEED + 1)
    result = {
        "threads": threads,
        "tensorflow": tf.__version__,
        "onnxruntime": ort.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
        "transposes": count_transposes(args.saved_model),
        "executed_transposes": executed_transposes(args.saved_model),
        "batches": [],
    }
    if args.onnx2tf:
        result["onnx2tf_input_shape"] = o2t_shape
        result["onnx2tf_transposes"] = count_transposes(args.onnx2tf)
        result["onnx2tf_executed_transposes"] = executed_transposes(args.onnx2tf)
    for batch in args.batches:
        image = rng.standard_normal((batch, 3, args.image, args.image)).astype(np.float32)

        def run_tf():
            return session.run(tf_output, {tf_input: image})

        def run_ort():
            return ort_session.run([OUTPUT], {INPUT: image})[0]

        runs = {"tf": run_tf, "ort": run_ort}
        if args.onnx2tf:
            o2t_image = np.ascontiguousarray(image.transpose(0, 2, 3, 1)) if o2t_nhwc else image

            def run_o2t():
                return o2t_session.run(o2t_output, {o2t_input: o2t_image})

            runs["onnx2tf"] = run_o2t

        reference = run_ort()
        scale = float(np.max(np.abs(reference)))
        errors = {}
        for key in runs.keys() - {"ort"}:
            output = runs[key]()
            if key == "onnx2tf" and o2t_nhwc and output.ndim == 4:
                output = output.transpose(0, 3, 1, 2)
            error = float(np.max(np.abs(output - reference))) \
                if output.shape == reference.shape else float("inf")
            if not error <= TOLERANCE * scale:
                raise SystemExit(
                    f"batch {batch}: {key} and onnxruntime disagree: shapes {output.shape} and "
                    f"{reference.shape}, largest difference {error} (largest output {scale})")
            errors[key] = error
        for _ in range(args.warmup):
            for run in runs.values():
                run()
        seconds = {key: [] for key in runs}
        for _ in range(args.runs):
            for key, run in runs.items():
                started = time.perf_counter()
                run()
                seconds[key].append(time.perf_counter() - started)
        entry = {
            "batch": batch,
            "largest_difference": errors["tf"],
            "largest_output": scale,
            "tf_seconds": seconds["tf"],
            "ort_seconds": seconds["ort"],
        }
        if args.onnx2tf:
            entry["onnx2tf_largest_difference"] = errors["onnx2tf"]
            entry["onnx2tf_seconds"] = seconds["onnx2tf"]
        result["batches"].append(entry)
    json.dump(result, sys.stdout)
    print()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("build")
    p.add_argument("out_dir")
    p.add_argument("--image", type=int, default=224)
    p = commands.add_parser("infer")
    p.add_argument("onnx")
    p.add_argument("saved_model")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")], default=[1, 8])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--image", type=int, default=224)
    p.add_argument("--onnx2tf", help="the SavedModel onnx2tf wrote from the same model")
    args = parser.parse_args()
    return build(args) if args.command == "build" else infer(args)


if __name__ == "__main__":
    sys.exit(main())
