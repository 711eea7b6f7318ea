"""Run converted ONNX test cases through TensorFlow's C++ loader and judge them.

    .tf-venv/bin/python tests/python/onnx_run.py REQUESTS.json RESULTS.json

REQUESTS.json is a list of cases, each:

    {"name": "test_abs", "dir": "<SavedModel directory>", "npz": "<data.npz>",
     "value_types": {"input_0": "FLOAT", ...},
     "feeds": {"x:0": "input_0"}, "fetches": [["y:0", "output_0"]],
     "rtol": 0.001, "atol": 1e-07, "random": false}

Each SavedModel is loaded with `TF_LoadSessionFromSavedModel` (through
cc_loader.py, the loader TensorFlow Serving runs), fed the data set's inputs
and its outputs compared with the expected ones as the ONNX backend test
runner compares them (`onnx/backend/test/runner/__init__.py`,
`assert_similar_outputs`): same shape, same dtype, strings equal, numbers by
`numpy.testing.assert_allclose(out, ref, rtol, atol)`. A case whose outputs
are random draws ("random": true, see onnx_cases.py `is_random`) is judged on
its outputs' shapes and dtypes only.

A case with an "onnxruntime" entry ({"model": "<model.onnx>",
"signature_feeds": {key: "input_0"}, "onnx_feeds": {name: "input_0"},
"signature_fetches": [[key, onnx_name, "output_0"]]}) is also run by
onnxruntime and through `tf.saved_model.load`, and both TensorFlow loaders'
outputs must match onnxruntime's within the same tolerances (for a model of
an opset before 7, which onnxruntime no longer runs, onnxruntime runs it as
`onnx.version_converter` rewrites it for opset 7).

RESULTS.json maps each case name to "pass" or "fail: <why>". The cases run
in a worker process; a case that kills it (a TensorFlow CHECK failure)
is reported as "fail: crashed ..." and the worker restarts after it.
"""

import base64
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# numpy dtype -> TensorFlow DataType name; types numpy keeps as bit
# patterns (value_types says which) are mapped by their ONNX name.
NUMPY_TO_TF = {
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "float16": "DT_HALF",
    "int8": "DT_INT8",
    "int16": "DT_INT16",
    "int32": "DT_INT32",
    "int64": "DT_INT64",
    "uint8": "DT_UINT8",
    "uint16": "DT_UINT16",
    "uint32": "DT_UINT32",
    "uint64": "DT_UINT64",
    "bool": "DT_BOOL",
    "complex64": "DT_COMPLEX64",
    "complex128": "DT_COMPLEX128",
}
ONNX_BITS_TO_TF = {
    "BFLOAT16": ("DT_BFLOAT16", np.uint16),
    "FLOAT8E4M3FN": ("DT_FLOAT8_E4M3FN", np.uint8),
    "FLOAT8E5M2": ("DT_FLOAT8_E5M2", np.uint8),
}
# The ONNX types TensorFlow has no kernels for, which the converted graph
# carries in another type (savedmodel_onnx::Carried, docs/formats.md): the
# floats as their bit patterns in uint8 (what the npz holds already), the
# 2- and 4-bit integers as their values, sign-extended for the signed ones
# (the npz holds the low bits).
CARRIED_BITS = {"FLOAT8E4M3FNUZ", "FLOAT8E5M2FNUZ", "FLOAT8E8M0", "FLOAT4E2M1"}
CARRIED_INTEGERS = {"INT4": 4, "INT2": 2, "UINT4": 0, "UINT2": 0}
TF_TO_NUMPY = {v: k for k, v in NUMPY_TO_TF.items()}


def carried(array, value_type):
    """The array as the converted graph carries a value of `value_type`."""
    if value_type in CARRIED_BITS:
        return np.ascontiguousarray(array).view(np.uint8)
    bits = CARRIED_INTEGERS.get(value_type)
    if bits is None:
        return array
    if bits == 0:
        return np.ascontiguousarray(array).view(np.uint8)
    low = np.ascontiguousarray(array).view(np.uint8).astype(np.int16) & ((1 << bits) - 1)
    half = 1 << (bits - 1)
    return ((low ^ half) - half).astype(np.int8)


def to_tf(array, value_type):
    array = carried(array, value_type)
    if value_type in ONNX_BITS_TO_TF:
        name, _ = ONNX_BITS_TO_TF[value_type]
        return {"dtype": name, "shape": list(array.shape),
                "data": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()}
    if array.dtype.kind in ("U", "S", "O"):
        values = [v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1)]
        return {"dtype": "DT_STRING", "shape": list(array.shape),
                "strings": [base64.b64encode(v).decode() for v in values]}
    name = NUMPY_TO_TF.get(str(array.dtype))
    if name is None:
        raise ValueError("input dtype %s is not supported" % array.dtype)
    return {"dtype": name, "shape": list(array.shape),
            "data": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()}


def from_tf(t):
    shape = tuple(t["shape"])
    if t["dtype"] == "DT_STRING":
        return np.array([base64.b64decode(s) for s in t["strings"]], dtype=object).reshape(shape)
    for _, (name, bits) in ONNX_BITS_TO_TF.items():
        if t["dtype"] == name:
            return np.frombuffer(base64.b64decode(t["data"]), dtype=bits).reshape(shape)
    np_name = TF_TO_NUMPY.get(t["dtype"])
    if np_name is None:
        raise ValueError("output dtype %s is not supported" % t["dtype"])
    return np.frombuffer(base64.b64decode(t["data"]), dtype=np_name).reshape(shape)


def judge(out, ref, value_type, rtol, atol, random=False):
    ref = carried(ref, value_type)
    if value_type == "BFLOAT16":
        import ml_dtypes  # noqa: PLC0415

        out = out.view(ml_dtypes.bfloat16).astype(np.float32)
        ref = ref.view(ml_dtypes.bfloat16).astype(np.float32)
        rtol = max(rtol, 2.0 ** -6)
    if out.shape != ref.shape:
        return "shape %s, expected %s" % (out.shape, ref.shape)
    if ref.dtype.kind in ("U", "S", "O"):
        got = [v if isinstance(v, bytes) else str(v).encode() for v in out.reshape(-1)]
        want = [v if isinstance(v, bytes) else str(v).encode() for v in ref.reshape(-1)]
        return None if got == want else "strings differ"
    if out.dtype != ref.dtype:
        return "dtype %s, expected %s" % (out.dtype, ref.dtype)
    if random:
        # Random draws: another generator's values cannot match.
        return None
    try:
        np.testing.assert_allclose(out, ref, rtol=rtol, atol=atol)
    except AssertionError as e:
        return "values differ: " + " ".join(str(e).split())[:300]
    return None


def value_of(data, types, key):
    """The npz value of `key`: a sequence of tensors (keys `key/0`, `key/1`,
    ...) stacked along a new first axis, as the converted signature takes
    and gives it (savedmodel_onnx: sequences cross the signature stacked)."""
    if types.get(key) != "SEQUENCE":
        return data[key]
    elements = []
    while f"{key}/{len(elements)}" in data:
        elements.append(data[f"{key}/{len(elements)}"])
    if not elements:
        raise ValueError("an empty sequence cannot be stacked")
    return np.stack(elements)


def element_type(types, key):
    """The ONNX element type name of `key` (of its elements for a sequence)."""
    if types.get(key) == "SEQUENCE":
        return types.get(f"{key}/0", "")
    return types.get(key, "")


def run_case(lib, case):
    import cc_loader  # noqa: PLC0415

    data = np.load(case["npz"], allow_pickle=True)
    types = case.get("value_types", {})
    feeds = {tensor: to_tf(value_of(data, types, key), element_type(types, key))
             for tensor, key in case["feeds"].items()}
    fetches = [tensor for tensor, _ in case["fetches"]]
    response = cc_loader.handle_safely(lib, {"dir": case["dir"], "runs": [{"feeds": feeds, "fetches": fetches}]})
    if "error" in response:
        return "fail: load: " + response["error"][:300]
    run = response["runs"][0]
    if "error" in run:
        return "fail: run: " + run["error"][:300]
    for tensor, key in case["fetches"]:
        problem = judge(from_tf(run["outputs"][tensor]), value_of(data, types, key),
                        element_type(types, key), case["rtol"], case["atol"], case.get("random", False))
        if problem:
            return "fail: output %s: %s" % (key, problem)
    if "onnxruntime" in case:
        cc_outputs = {key: from_tf(run["outputs"][tensor]) for tensor, key in case["fetches"]}
        return against_onnxruntime(case, data, cc_outputs)
    return "pass"


def against_onnxruntime(case, data, cc_outputs):
    """Runs the ONNX model in onnxruntime and the SavedModel through
    `tf.saved_model.load`'s `serving_default` on the same inputs, and
    compares both loaders' outputs with onnxruntime's."""
    import onnxruntime  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    spec = case["onnxruntime"]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    names = [onnx_name for _, onnx_name, _ in spec["signature_fetches"]]
    try:
        session = onnxruntime.InferenceSession(spec["model"], options, providers=["CPUExecutionProvider"])
    except onnxruntime.capi.onnxruntime_pybind11_state.NotImplemented:
        # onnxruntime dropped the operator versions of opsets before 7 (the
        # pytorch-converted cases import opset 6): it runs the model as the
        # onnx package's version converter rewrites it for opset 7.
        import onnx  # noqa: PLC0415
        from onnx import version_converter  # noqa: PLC0415

        upgraded = version_converter.convert_version(onnx.load(spec["model"]), 7)
        session = onnxruntime.InferenceSession(
            upgraded.SerializeToString(), options, providers=["CPUExecutionProvider"])
    ort_feeds = {name: data[key] for name, key in spec["onnx_feeds"].items()}
    try:
        ort_outputs = dict(zip(names, session.run(names, ort_feeds)))
    except onnxruntime.capi.onnxruntime_pybind11_state.Fail as e:
        # The version converter keeps an opset-6 PRelu's 1-D per-channel
        # slope as it is, which opset 7 broadcasts along the last axis
        # instead: onnxruntime then refuses the shapes. The expected
        # outputs (from PyTorch) judge those cases alone.
        print("onnx_run: %s: onnxruntime cannot run the upgraded model (%s); judged by the expected outputs"
              % (case["name"], str(e).splitlines()[0][:160]), file=sys.stderr)
        ort_outputs = {onnx_name: data[key] for _, onnx_name, key in spec["signature_fetches"]}
    loaded = tf.saved_model.load(case["dir"])
    function = loaded.signatures["serving_default"]
    py_outputs = function(**{k: tf.constant(data[key]) for k, key in spec["signature_feeds"].items()})
    rtol, atol = case["rtol"], case["atol"]
    for sig_key, onnx_name, key in spec["signature_fetches"]:
        ref = np.asarray(ort_outputs[onnx_name])
        random = case.get("random", False)
        problem = judge(cc_outputs[key], ref, "", rtol, atol, random)
        if problem:
            return "fail: output %s against onnxruntime (C++ loader): %s" % (key, problem)
        problem = judge(py_outputs[sig_key].numpy(), ref, "", rtol, atol, random)
        if problem:
            return "fail: output %s against onnxruntime (tf.saved_model.load): %s" % (key, problem)
    return "pass"


def worker(requests_path, start):
    import cc_loader  # noqa: PLC0415

    with open(requests_path, encoding="utf-8") as f:
        cases = json.load(f)
    if any("onnxruntime" in case for case in cases[start:]):
        # TensorFlow's Python module must be loaded before cc_loader loads
        # the C++ library by hand: the other order crashes the import.
        import onnxruntime  # noqa: PLC0415
        import tensorflow  # noqa: F401, PLC0415

        # Errors only: opset-6 models make it warn about every node.
        onnxruntime.set_default_logger_severity(3)
    lib = cc_loader.load_library()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    for case in cases[start:]:
        out.write(json.dumps({"start": case["name"]}) + "\n")
        out.flush()
        try:
            result = run_case(lib, case)
        except Exception as e:  # noqa: BLE001 (one case must not end the run)
            result = "fail: %s: %s" % (type(e).__name__, e)
        out.write(json.dumps({"name": case["name"], "result": result}) + "\n")
        out.flush()


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]))
        return 0
    requests_path, results_path = sys.argv[1], sys.argv[2]
    with open(requests_path, encoding="utf-8") as f:
        names = [c["name"] for c in json.load(f)]
    results = {}
    start = 0
    while start < len(names):
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", requests_path, str(start)],
            stdout=subprocess.PIPE, text=True,
        )
        current = None
        for line in proc.stdout:
            msg = json.loads(line)
            if "start" in msg:
                current = msg["start"]
            else:
                results[msg["name"]] = msg["result"]
                current = None
        code = proc.wait()
        if current is None:
            break
        results[current] = "fail: crashed the TensorFlow process (exit %d)" % code
        start = names.index(current) + 1
    with open(results_path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=0, sort_keys=True)
    passed = sum(1 for r in results.values() if r == "pass")
    print("onnx_run: %d of %d cases pass" % (passed, len(names)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
