"""Shared fixtures: TensorFlow as the judge, driven through the project's
oracle (`tests/python/oracle.py`) in a subprocess of the TensorFlow
virtualenv's python (`$SAVEDMODEL_TF_PYTHON`, else `<workspace>/.tf-venv`).
The virtualenv under test holds the wheel, numpy, ml_dtypes and pytest, never
TensorFlow. Nothing here skips: without TensorFlow or the fixtures the tests
fail and say what is missing.
"""

import base64
import json
import os
import pathlib
import subprocess

import ml_dtypes
import numpy as np
import pytest

import savedmodel

WORKSPACE = pathlib.Path(__file__).resolve().parents[3]
ORACLE = WORKSPACE / "tests" / "python" / "oracle.py"


def tf_python():
    path = os.environ.get("SAVEDMODEL_TF_PYTHON") or str(WORKSPACE / ".tf-venv" / "bin" / "python")
    assert os.path.exists(path), (
        f"TensorFlow virtualenv missing: run `cargo xtask tf-env` or set "
        f"SAVEDMODEL_TF_PYTHON (looked for {path})"
    )
    return path


def serving_fixtures():
    path = pathlib.Path(
        os.environ.get("SAVEDMODEL_FIXTURES")
        or WORKSPACE.parent / "shared" / "fixtures" / "tensorflow_serving"
    )
    assert path.is_dir(), f"TF Serving fixtures missing (looked for {path}; set SAVEDMODEL_FIXTURES)"
    return path


def oracle(requests):
    """Runs a batch of oracle requests in one TensorFlow process."""
    proc = subprocess.run(
        [tf_python(), str(ORACLE)],
        input=json.dumps(requests).encode(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-4000:]
    responses = json.loads(proc.stdout)
    for request, response in zip(requests, responses):
        assert "error" not in response, (request["cmd"], response["error"])
    return responses


# numpy dtype of each TensorFlow DataType the golden checkpoint holds.
GOLDEN_DTYPES = {
    "DT_FLOAT": np.float32,
    "DT_DOUBLE": np.float64,
    "DT_HALF": np.float16,
    "DT_BFLOAT16": ml_dtypes.bfloat16,
    "DT_INT8": np.int8,
    "DT_INT16": np.int16,
    "DT_INT32": np.int32,
    "DT_INT64": np.int64,
    "DT_UINT8": np.uint8,
    "DT_UINT16": np.uint16,
    "DT_UINT32": np.uint32,
    "DT_UINT64": np.uint64,
    "DT_BOOL": np.bool_,
    "DT_COMPLEX64": np.complex64,
    "DT_COMPLEX128": np.complex128,
    "DT_FLOAT8_E5M2": ml_dtypes.float8_e5m2,
    "DT_FLOAT8_E4M3FN": ml_dtypes.float8_e4m3fn,
    "DT_INT4": ml_dtypes.int4,
    "DT_UINT4": ml_dtypes.uint4,
}


def b64(data):
    return base64.b64encode(bytes(data)).decode("ascii")


def json_tensor(name, array):
    """A numpy array as an oracle tensor (dtype from GOLDEN_DTYPES or strings)."""
    array = np.asarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype == object:
        return {
            "name": name,
            "dtype": "DT_STRING",
            "shape": list(array.shape),
            "strings": [b64(s) for s in array.reshape(-1)],
        }
    dtype = next(k for k, v in GOLDEN_DTYPES.items() if np.dtype(v) == array.dtype)
    return {
        "name": name,
        "dtype": dtype,
        "shape": list(array.shape),
        "data": b64(np.ascontiguousarray(array).tobytes()),
    }


def golden_tensors():
    """One tensor per data type (and shape corner cases), deterministic."""
    rng = np.random.default_rng(14)
    tensors = {}
    for dtype_name, dtype in GOLDEN_DTYPES.items():
        size = np.dtype(dtype).itemsize * 6
        raw = rng.integers(0, 256, size=size, dtype=np.uint8)
        if dtype is np.bool_:
            raw = raw % 2
        if dtype in (ml_dtypes.int4, ml_dtypes.uint4):
            raw = raw % 8
        tensors[dtype_name.lower()] = raw.view(dtype).reshape(2, 3)
    tensors["scalar"] = np.array(7.5, dtype=np.float32)
    tensors["empty"] = np.zeros((0, 4), dtype=np.float32)
    strings = np.empty((2, 2), dtype=object)
    strings[:] = [[b"", b"a\x00b"], [b"\xff" * 300, "é".encode()]]
    tensors["strings"] = strings
    return tensors


@pytest.fixture(scope="session")
def golden(tmp_path_factory):
    """Checkpoints written by TensorFlow and what `tf.train.load_checkpoint`
    reads from them, plus TensorFlow's reading of fixtures: one TensorFlow
    process for the whole session."""
    root = tmp_path_factory.mktemp("golden")
    tensors = golden_tensors()
    requests = [
        {
            "cmd": "save_v2",
            "prefix": str(root / "dtypes" / "ckpt"),
            "tensors": [json_tensor(k, v) for k, v in tensors.items()],
        },
        # A partitioned tensor: two slices of a [4, 3] tensor under one name.
        {
            "cmd": "save_v2",
            "prefix": str(root / "part" / "ckpt"),
            "tensors": [
                json_tensor("p", np.arange(6, dtype=np.float32).reshape(2, 3)),
                json_tensor("p", np.arange(6, 12, dtype=np.float32).reshape(2, 3)),
                json_tensor("q", np.arange(3, dtype=np.int64)),
            ],
            "shape_and_slices": ["4 3 0,2:-", "4 3 2,2:-", ""],
        },
        # Two data files: two bundles merged as TensorFlow's Saver does.
        {
            "cmd": "save_v2",
            "prefix": str(root / "m1" / "a"),
            "tensors": [json_tensor("x", np.arange(4, dtype=np.float64))],
        },
        {
            "cmd": "save_v2",
            "prefix": str(root / "m2" / "b"),
            "tensors": [json_tensor("y", np.arange(5, dtype=np.int32))],
        },
        {
            "cmd": "merge_v2",
            "prefixes": [str(root / "m1" / "a"), str(root / "m2" / "b")],
            "destination": str(root / "multi" / "ckpt"),
        },
        {"cmd": "write_tf2_model", "dir": str(root / "tf2")},
    ]
    reads = {
        "dtypes": root / "dtypes" / "ckpt",
        "part": root / "part" / "ckpt",
        "multi": root / "multi" / "ckpt",
        "tf2": root / "tf2" / "variables" / "variables",
        "serving_tf1": serving_fixtures()
        / "saved_model_half_plus_two_cpu"
        / "00000123"
        / "variables"
        / "variables",
        "serving_tf2": serving_fixtures()
        / "saved_model_half_plus_two_tf2_cpu"
        / "00000123"
        / "variables"
        / "variables",
        "serving_counter": serving_fixtures()
        / "saved_model_counter"
        / "00000123"
        / "variables"
        / "variables",
    }
    # The same tensors written by save_checkpoint (here, before TensorFlow
    # runs) and by SaveV2, in the same order; and TensorFlow reading ours.
    saved = saved_tensors()
    savedmodel.save_checkpoint(saved, root / "ours" / "ckpt")
    requests.append(
        {
            "cmd": "save_v2",
            "prefix": str(root / "theirs" / "ckpt"),
            "tensors": [json_tensor(k, np.asarray(v)) for k, v in saved.items()],
        }
    )
    reads["ours"] = root / "ours" / "ckpt"
    requests += [{"cmd": "read_checkpoint", "prefix": str(p)} for p in reads.values()]
    responses = oracle(requests)[-len(reads) :]
    expected = {
        key: {t["name"]: t for t in response["tensors"]} for key, response in zip(reads, responses)
    }
    return {"root": root, "prefixes": reads, "expected": expected, "saved": saved}


class ArrayLike:
    """A torch-free stand-in for a framework tensor: only `__array__`."""

    def __init__(self, array):
        self._array = array

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)


def saved_tensors():
    """What save_checkpoint writes in the byte-identity test: every common
    dtype, strings as bytes and str, an array-like, a big-endian array and a
    non-contiguous one."""
    strings = np.empty(3, dtype=object)
    strings[:] = [b"a", b"", b"\x00\xff"]
    return {
        "dense/kernel": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
        "dense/bias": np.array([1.5, -2.0, 0.0], dtype=np.float64),
        "step": np.array(42, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "bf16": np.array([1.0, -0.5, 3.25], dtype=ml_dtypes.bfloat16),
        "c64": np.array([1 + 2j, -3j], dtype=np.complex64),
        "strings": strings,
        "array_like": ArrayLike(np.arange(6, dtype=np.int32).reshape(2, 3)),
        "big_endian": np.arange(4, dtype=">f4"),
        "transposed": np.arange(6, dtype=np.int16).reshape(2, 3).T,
        "u8": np.frombuffer(b"\x00\x01\xfe\xff", dtype=np.uint8),
    }
