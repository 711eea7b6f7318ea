"""`export_onnx`: an ONNX CNN built and run by onnx/onnxruntime (in the
TensorFlow virtualenv, which has them) converted by the wheel; TensorFlow's
TF1 loader runs the SavedModel and its output must equal onnxruntime's."""

import subprocess
import textwrap

import numpy as np
import pytest

import savedmodel

from conftest import json_tensor, oracle, tf_python

# Builds a small CNN with onnx.helper, runs onnxruntime on a fixed input and
# writes the model and both arrays.
BUILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    import onnxruntime

    out = sys.argv[1]
    rng = np.random.default_rng(5)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    fc = rng.standard_normal((10, 8)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["image", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
         numpy_helper.from_array(fc, "fc")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out + "/cnn.onnx")
    x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
    session = onnxruntime.InferenceSession(out + "/cnn.onnx", providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"image": x})
    np.savez(out + "/data.npz", x=x, y=y)
    """
)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    proc = subprocess.run(
        [tf_python(), "-c", BUILD, str(out)], capture_output=True, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    data = np.load(out / "data.npz")
    return out / "cnn.onnx", data["x"], data["y"]


def run_predict(path, signature, inputs):
    (response,) = oracle(
        [
            {
                "cmd": "load_v1",
                "dir": str(path),
                "tags": ["serve"],
                "runs": [
                    {
                        "signature": signature,
                        "inputs": {k: json_tensor(k, v) for k, v in inputs.items()},
                    }
                ],
            }
        ]
    )
    run = response["runs"][0]
    assert "error" not in run, run
    return run


def decode(tensor):
    import base64

    return np.frombuffer(base64.b64decode(tensor["data"]), np.float32).reshape(tensor["shape"])


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_an_onnx_cnn_converts_and_matches_onnxruntime(tmp_path, cnn, layout):
    model, x, y = cnn
    feed = x if layout == "nchw" else x.transpose(0, 2, 3, 1).copy()
    out = savedmodel.export_onnx(
        model,
        tmp_path / "export",
        signature_name="predict",
        input_layout=layout,
        dynamic_batch=True,
        warmup={"image": feed},
    )
    loaded = savedmodel.SavedModel(out)
    signature = loaded.signatures()["predict"]
    expected_shape = [None, 3, 16, 16] if layout == "nchw" else [None, 16, 16, 3]
    assert signature.inputs["image"].shape == expected_shape
    assert signature.outputs["logits"].shape == [None, 10]
    assert (out / "assets.extra" / "tf_serving_warmup_requests").is_file()
    assert [f for f in loaded.validate() if f.severity == "error"] == []
    run = run_predict(out, "predict", {"image": feed})
    got = decode(run["outputs"]["logits"])
    np.testing.assert_allclose(got, y, rtol=1e-5, atol=1e-5)
    base = tmp_path / "base"
    base.mkdir()
    assert savedmodel.publish(out, base)[0] == 1


def test_export_onnx_errors(tmp_path, cnn):
    model, _, _ = cnn
    with pytest.raises(savedmodel.NotFoundError):
        savedmodel.export_onnx(tmp_path / "missing.onnx", tmp_path / "a")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(savedmodel.CorruptDataError, match="garbage.onnx"):
        savedmodel.export_onnx(garbage, tmp_path / "b")
    with pytest.raises(savedmodel.InvalidArgumentError, match="input_layout"):
        savedmodel.export_onnx(model, tmp_path / "c", input_layout="chw")
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()
    assert not (tmp_path / "c").exists()
