"""The ONNX backend test suite as files: models, data sets and a manifest.

Run with a virtualenv that has the `onnx` package pinned in
`tests/python/requirements.txt`:

    .tf-venv/bin/python tests/python/onnx_cases.py OUT_DIR [--npz]
        [--kinds node,pytorch-converted,pytorch-operator,simple] [--match REGEX]

The onnx wheel does not ship the node test cases as files: they are built in
memory by `onnx.backend.test.loader.load_node_model_tests()` (each a
`TestCase` with a `ModelProto` and its `(inputs, outputs)` data sets). This
script writes each one as the onnx repository lays them out:

    OUT_DIR/node/<case>/model.onnx
    OUT_DIR/node/<case>/test_data_set_<i>/input_<j>.pb, output_<j>.pb

(a `TensorProto`, or for sequence, optional and map values the
`SequenceProto`, `OptionalProto`, `MapProto` of `onnx-data.proto`). The other
kinds (`pytorch-converted`, ...) ship as files inside the wheel and are
referred to where they are.

`OUT_DIR/manifest.json` lists every case:

    {"onnx_version": "1.23.2", "ir_version": 14, "opset": 28,
     "default_rtol": 0.001, "default_atol": 1e-07,
     "cases": [{"name": "test_abs", "kind": "node",
                "model": "<path of model.onnx>",
                "op_types": ["Abs"], "domains": [""],
                "opset_imports": {"": 13}, "ir_version": 7,
                "inputs": ["x"], "outputs": ["y"],
                "rtol": 0.001, "atol": 1e-07,
                "data_sets": [{"dir": "...", "inputs": ["<path>.pb", ...],
                               "outputs": ["<path>.pb", ...],
                               "npz": "<path>.npz",
                               "value_types": {"input_0": "FLOAT", ...},
                               "random": false}]},
               ...]}

`inputs` and `outputs` are the names of the graph's inputs (those that are not
initializers) and outputs, in the order of the `input_<j>.pb` and
`output_<j>.pb` files. `op_types` are the operators of the graph and of its
subgraphs and model-local functions (sorted, without repeats): the
`_expanded` cases are the same test written with the operator's function
body. Tolerances are the suite's own: every node case carries `rtol`/`atol`
(onnx 1.23 gives all of them 1e-3 / 1e-7); for the file-based kinds the
runner's defaults apply unless the case's `data.json` says otherwise
(`onnx/backend/test/loader/__init__.py`). The comparison the suite makes
(`onnx/backend/test/runner/__init__.py`, `assert_similar_outputs`): shapes
equal, dtypes equal, strings equal, numbers by
`numpy.testing.assert_allclose(out, ref, rtol, atol)`, with bfloat16 compared
as float32 at `rtol = max(rtol, 2**-6)`. A data set whose outputs are random
draws (`"random": true`: the model uses `RandomUniform`, `RandomNormal`, their
`Like` forms, `Bernoulli` or `Multinomial`, or a `Dropout` in training mode
with a ratio that is not 0; see `is_random`) is judged on shapes and dtypes
only.

With `--npz`, each data set is also decoded into one `data.npz` (next to its
`.pb` files for node cases; under `OUT_DIR/<kind>/<case>/` for the others, so
the installed package is not written to; see `decode_data_set`): keys
`input_<j>` / `output_<j>` for tensors, `input_<j>/<k>` for the elements of
a sequence, no array for an empty optional or a map. Types NumPy cannot save
by name (bfloat16, the float8, 4-bit and 2-bit types, from `ml_dtypes`, one
element per byte) are stored as their bit patterns (`uint8`/`uint16`);
`value_types` gives each key's ONNX element type name (`FLOAT`, `BFLOAT16`,
...), or `SEQUENCE`, `MAP`, `OPTIONAL_NONE` for the value as a whole, so the
runner can reinterpret them. Strings are saved as NumPy unicode arrays.

onnx 1.23.2 gives 1,884 node cases (203 op types; 3 of them, `test_not_2d`,
`_3d`, `_4d`, import opset 1) and, shipped as files, 82 pytorch-converted,
35 pytorch-operator and 23 simple cases (112 of those 140 import opset 6).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings

import numpy as np

import onnx
from onnx import numpy_helper
from onnx.backend.test.loader import DATA_DIR, load_node_model_tests

# The backend runner's defaults (`onnx/backend/test/loader/__init__.py`,
# `load_model_tests`), used by the file-based kinds without a `data.json`.
DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-7

FILE_KINDS = ("pytorch-converted", "pytorch-operator", "simple")


def op_types(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    """The sorted op types and domains used by the model's graphs and functions."""
    ops: set[str] = set()
    domains: set[str] = set()

    def visit_nodes(nodes) -> None:
        for node in nodes:
            ops.add(node.op_type)
            domains.add(node.domain)
            for attr in node.attribute:
                if attr.HasField("g"):
                    visit_nodes(attr.g.node)
                for graph in attr.graphs:
                    visit_nodes(graph.node)

    visit_nodes(model.graph.node)
    for function in model.functions:
        visit_nodes(function.node)
    return sorted(ops), sorted(domains)


# The operators whose outputs are random draws.
RANDOM_OPS = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike",
              "Bernoulli", "Multinomial"}


def is_random(model: onnx.ModelProto, feeds: dict) -> bool:
    """Whether the model's outputs are random draws for these inputs (`feeds`,
    by graph input name): it uses a random operator, or a `Dropout` in
    training mode with a ratio that is not 0 (a value neither fed nor an
    initializer counts as on). Such a case is judged on its outputs' shapes
    and dtypes only: another generator cannot give the expected values."""
    ops, _ = op_types(model)
    if RANDOM_OPS & set(ops):
        return True
    known = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    known.update(feeds)
    for node in model.graph.node:
        if node.op_type != "Dropout" or len(node.input) < 3 or not node.input[2]:
            continue
        training = known.get(node.input[2])
        ratio = known.get(node.input[1]) if len(node.input) > 1 and node.input[1] else 0.5
        if (training is None or bool(np.asarray(training).any())) and (
                ratio is None or float(np.asarray(ratio).reshape(-1)[0]) != 0.0):
            return True
    return False


def graph_io(model: onnx.ModelProto) -> tuple[list, list]:
    """The graph's inputs that are not initializers, and its outputs."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    return inputs, list(model.graph.output)


def value_to_proto(value, value_info: onnx.ValueInfoProto):
    """A Python value of a test case as the proto its `.pb` file holds."""
    kind = value_info.type.WhichOneof("value")
    name = value_info.name
    if isinstance(value, onnx.TensorProto):
        return value
    if kind == "sequence_type":
        return numpy_helper.from_list(value, name)
    if kind == "optional_type":
        return numpy_helper.from_optional(value, name)
    if kind == "map_type":
        return numpy_helper.from_dict(value, name)
    return numpy_helper.from_array(np.asarray(value), name)


def proto_class(value_info: onnx.ValueInfoProto):
    """The message type of a `.pb` file for a value of this type."""
    kind = value_info.type.WhichOneof("value")
    return {
        "sequence_type": onnx.SequenceProto,
        "optional_type": onnx.OptionalProto,
        "map_type": onnx.MapProto,
    }.get(kind, onnx.TensorProto)


def read_value(path: str, value_info: onnx.ValueInfoProto):
    """Decodes one `.pb` file: returns the NumPy value (an array, a list of
    arrays, None or a dict) and the ONNX element type of each array (an int,
    a list of ints, None)."""
    message = proto_class(value_info)()
    with open(path, "rb") as f:
        message.ParseFromString(f.read())
    return decode_message(message)


def decode_message(message):
    """`read_value` for a parsed message."""
    if isinstance(message, onnx.TensorProto):
        return numpy_helper.to_array(message), message.data_type
    if isinstance(message, onnx.SequenceProto):
        return numpy_helper.to_list(message), [t.data_type for t in message.tensor_values]
    if isinstance(message, onnx.OptionalProto):
        if message.elem_type == onnx.OptionalProto.UNDEFINED:
            return None, None
        field = OPTIONAL_FIELDS.get(message.elem_type)
        if field is None:
            raise ValueError(f"optional of element type {message.elem_type} is not supported")
        return decode_message(getattr(message, field))
    if isinstance(message, onnx.MapProto):
        return numpy_helper.to_dict(message), None
    raise ValueError(f"cannot decode a {type(message).__name__}")


# `OptionalProto.elem_type` -> the field holding the value (`onnx-data.proto`).
OPTIONAL_FIELDS = {
    onnx.OptionalProto.TENSOR: "tensor_value",
    onnx.OptionalProto.SEQUENCE: "sequence_value",
    onnx.OptionalProto.MAP: "map_value",
    onnx.OptionalProto.OPTIONAL: "optional_value",
}


# Types `.npz` files keep by name.
NATIVE_TYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
    "uint64", "float16", "float32", "float64", "complex64", "complex128",
}


def savable(array: np.ndarray) -> np.ndarray:
    """The array as a type `.npz` keeps by name: strings as unicode, the
    `ml_dtypes` types (bfloat16, float8, int4, ...) as their bit patterns."""
    if array.dtype == object:
        text = [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in array.flat]
        return np.array(text, dtype=str).reshape(array.shape)
    if array.dtype.name in NATIVE_TYPES or array.dtype.kind in "US":
        return array
    return array.view(np.uint8 if array.dtype.itemsize == 1 else np.uint16)


def decode_data_set(data_set: dict, inputs: list, outputs: list) -> dict:
    """Decodes a data set's `.pb` files into `data.npz` in its directory.

    Returns the npz path and the ONNX element type name of every key."""
    arrays: dict[str, np.ndarray] = {}
    value_types: dict[str, str] = {}

    def add(key: str, array, data_type) -> None:
        arrays[key] = savable(np.asarray(array))
        if data_type is not None:
            value_types[key] = onnx.TensorProto.DataType.Name(data_type)

    for side, files, infos in (
        ("input", data_set["inputs"], inputs),
        ("output", data_set["outputs"], outputs),
    ):
        for j, (path, info) in enumerate(zip(files, infos)):
            value, data_type = read_value(path, info)
            key = f"{side}_{j}"
            if isinstance(value, list):
                if not isinstance(data_type, list) or len(data_type) != len(value):
                    raise ValueError(f"{path}: only sequences of tensors are supported")
                for k, (element, element_type) in enumerate(zip(value, data_type)):
                    add(f"{key}/{k}", element, element_type)
                value_types[key] = "SEQUENCE"
            elif isinstance(value, dict):
                value_types[key] = "MAP"
            elif value is None:
                value_types[key] = "OPTIONAL_NONE"
            else:
                add(key, value, data_type)
    path = os.path.join(data_set["dir"], "data.npz")
    np.savez(path, **arrays)
    return {"npz": path, "value_types": value_types}


def write_node_case(case, out_dir: str) -> dict:
    """Writes a node case's model and data sets; returns its manifest entry."""
    model = case.model
    case_dir = os.path.join(out_dir, "node", case.name)
    os.makedirs(case_dir, exist_ok=True)
    model_path = os.path.join(case_dir, "model.onnx")
    with open(model_path, "wb") as f:
        f.write(model.SerializeToString())
    inputs, outputs = graph_io(model)
    data_sets = []
    for i, (input_values, output_values) in enumerate(case.data_sets):
        set_dir = os.path.join(case_dir, f"test_data_set_{i}")
        os.makedirs(set_dir, exist_ok=True)
        feeds = {info.name: value for value, info in zip(input_values, inputs)}
        entry = {"dir": set_dir, "inputs": [], "outputs": [], "random": is_random(model, feeds)}
        for side, values, infos in (
            ("input", input_values, inputs),
            ("output", output_values, outputs),
        ):
            if len(values) > len(infos):
                raise ValueError(
                    f"{case.name}: {len(values)} {side}s for {len(infos)} graph {side}s"
                )
            for j, (value, info) in enumerate(zip(values, infos)):
                path = os.path.join(set_dir, f"{side}_{j}.pb")
                with open(path, "wb") as f:
                    f.write(value_to_proto(value, info).SerializeToString())
                entry[f"{side}s"].append(path)
        data_sets.append(entry)
    return manifest_entry(case.name, "node", model, model_path, case.rtol, case.atol, data_sets)


def file_cases(kind: str) -> list[dict]:
    """The cases of a kind the wheel ships as files, where they are."""
    kind_dir = os.path.join(DATA_DIR, kind)
    entries = []
    for name in sorted(os.listdir(kind_dir)):
        case_dir = os.path.join(kind_dir, name)
        model_path = os.path.join(case_dir, "model.onnx")
        if not os.path.isfile(model_path):
            continue
        rtol, atol = DEFAULT_RTOL, DEFAULT_ATOL
        data_json = os.path.join(case_dir, "data.json")
        if os.path.exists(data_json):
            with open(data_json) as f:
                data = json.load(f)
            rtol = data.get("rtol", rtol)
            atol = data.get("atol", atol)
        model = onnx.load(model_path)
        data_sets = []
        for set_name in sorted(os.listdir(case_dir)):
            set_dir = os.path.join(case_dir, set_name)
            if not set_name.startswith("test_data_set") or not os.path.isdir(set_dir):
                continue

            def numbered(side: str) -> list[str]:
                files = []
                while os.path.exists(os.path.join(set_dir, f"{side}_{len(files)}.pb")):
                    files.append(os.path.join(set_dir, f"{side}_{len(files)}.pb"))
                return files

            data_sets.append({"dir": set_dir, "inputs": numbered("input"), "outputs": numbered("output"),
                              "random": is_random(model, {})})
        entries.append(manifest_entry(name, kind, model, model_path, rtol, atol, data_sets))
    return entries


def manifest_entry(name, kind, model, model_path, rtol, atol, data_sets) -> dict:
    ops, domains = op_types(model)
    inputs, outputs = graph_io(model)
    return {
        "name": name,
        "kind": kind,
        "model": model_path,
        "op_types": ops,
        "domains": domains,
        "opset_imports": {o.domain: o.version for o in model.opset_import},
        "ir_version": model.ir_version,
        "inputs": [v.name for v in inputs],
        "outputs": [v.name for v in outputs],
        "rtol": rtol,
        "atol": atol,
        "data_sets": data_sets,
    }


def build(out_dir: str, kinds: list[str], match: str | None, npz: bool) -> dict:
    """Writes the cases of `kinds` (and their manifest) under `out_dir`."""
    pattern = re.compile(match) if match else None
    cases = []
    if "node" in kinds:
        # Building the cases runs the reference code, which warns on purpose
        # (overflowing casts, log of zero).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            node_cases = load_node_model_tests()
        for case in sorted(node_cases, key=lambda c: c.name):
            if pattern is None or pattern.search(case.name):
                cases.append(write_node_case(case, out_dir))
    for kind in kinds:
        if kind == "node":
            continue
        if kind not in FILE_KINDS:
            raise ValueError(f"unknown kind {kind!r}: one of node, {', '.join(FILE_KINDS)}")
        cases.extend(c for c in file_cases(kind) if pattern is None or pattern.search(c["name"]))
    if npz:
        for case in cases:
            model = onnx.load(case["model"], load_external_data=False)
            inputs, outputs = graph_io(model)
            for data_set in case["data_sets"]:
                if case["kind"] != "node":
                    # Do not write into the installed package.
                    target = os.path.join(out_dir, case["kind"], case["name"], os.path.basename(data_set["dir"]))
                    os.makedirs(target, exist_ok=True)
                    decoded = decode_data_set({**data_set, "dir": target}, inputs, outputs)
                else:
                    decoded = decode_data_set(data_set, inputs, outputs)
                data_set.update(decoded)
    manifest = {
        "onnx_version": onnx.__version__,
        "ir_version": onnx.IR_VERSION,
        "opset": onnx.defs.onnx_opset_version(),
        "default_rtol": DEFAULT_RTOL,
        "default_atol": DEFAULT_ATOL,
        "cases": cases,
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--kinds", default="node", help="comma-separated: node, " + ", ".join(FILE_KINDS))
    parser.add_argument("--match", help="only cases whose name matches this regex")
    parser.add_argument("--npz", action="store_true", help="also decode each data set into data.npz")
    args = parser.parse_args()
    manifest = build(args.out_dir, args.kinds.split(","), args.match, args.npz)
    counts: dict[str, int] = {}
    for case in manifest["cases"]:
        counts[case["kind"]] = counts.get(case["kind"], 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    print(f"onnx {manifest['onnx_version']}: {len(manifest['cases'])} cases ({summary}) in {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
