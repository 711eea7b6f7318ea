"""SavedModels: tags, signatures, variables, assets, `show()` identical to
the CLI's (the wheel's `savedmodel` command), `validate()`, and
TensorFlow Serving's base paths."""

import os
import shutil
import subprocess
import sys

import numpy as np

import savedmodel

from conftest import serving_fixtures


def cli(*args):
    """The wheel's `savedmodel` console script, beside this interpreter."""
    exe = os.path.join(os.path.dirname(sys.executable), "savedmodel")
    proc = subprocess.run([exe, *map(str, args)], capture_output=True, check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_tf2_model(golden):
    model = savedmodel.SavedModel(golden["root"] / "tf2")
    assert model.tags == [["serve"]]
    signatures = model.signatures()
    # TensorFlow 2 stores its init op as a signature too.
    assert sorted(signatures) == ["__saved_model_init_op", "lookup", "serving_default"]
    default = signatures["serving_default"]
    assert default.name == "serving_default"
    assert default.method_name == "tensorflow/serving/predict"
    assert list(default.inputs) == ["x"]
    spec = default.inputs["x"]
    assert spec.dtype == "float32" and spec.shape == [None]
    assert default.outputs["y"].dtype == "float32"
    assert signatures["lookup"].outputs["word"].dtype == "string"
    assets = model.assets()
    assert [name for name, _ in assets] == ["vocab.txt"]
    assert os.path.exists(assets[0][1])
    with model.variables() as variables:
        expected = golden["expected"]["tf2"]
        assert variables.keys() == sorted(expected)
        a = next(k for k in variables.keys() if k.startswith("a/"))
        assert variables.get_tensor(a) == np.float32(0.5)
        # The object graph gives each key its variable's own name.
        names = variables.variable_names()
        assert names[a] == "a" and names["b/.ATTRIBUTES/VARIABLE_VALUE"] == "b"
    assert model.validate() == []


def test_tf1_checkpoints_have_no_object_graph_names():
    model_dir = serving_fixtures() / "saved_model_half_plus_two_cpu" / "00000123"
    with savedmodel.SavedModel(model_dir).variables() as variables:
        assert variables.keys() == ["a", "a2", "b", "c", "c2"]
        assert variables.variable_names() == {}


def test_show_is_the_cli_text():
    model_dir = serving_fixtures() / "saved_model_half_plus_two_cpu" / "00000123"
    model = savedmodel.SavedModel(model_dir)
    cases = [
        ({}, []),
        ({"all": True}, ["--all"]),
        ({"tag_set": "serve"}, ["--tag_set", "serve"]),
        (
            {"tag_set": "serve", "signature_def": "regress_x_to_y"},
            ["--tag_set", "serve", "--signature_def", "regress_x_to_y"],
        ),
        ({"tag_set": "serve", "list_ops": True}, ["--tag_set", "serve", "--list_ops"]),
    ]
    for kwargs, flags in cases:
        code, out, err = cli("show", "--dir", model_dir, *flags)
        assert code == 0, err
        assert model.show(**kwargs) == out, flags
    assert "regress_x_to_y" in model.show(tag_set="serve")


def test_cli_exit_codes_and_help():
    code, out, _ = cli("--help")
    assert code == 0 and "Usage:" in out
    code, _, err = cli("no-such-command")
    assert code == 2 and "no-such-command" in err
    code, _, err = cli("show", "--dir", "/nonexistent/model")
    assert code == 2 and err.startswith("error: ")


def test_validate_reports_findings(tmp_path):
    src = serving_fixtures() / "saved_model_half_plus_two_cpu" / "00000123"
    model_dir = tmp_path / "m"
    shutil.copytree(src, model_dir)
    before = savedmodel.SavedModel(model_dir).validate()
    assert [f.severity for f in before] == ["warning"], before
    data = model_dir / "variables" / "variables.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0xFF
    data.write_bytes(bytes(raw))
    findings = savedmodel.SavedModel(model_dir).validate()
    assert len(findings) > len(before)
    assert all(isinstance(f, savedmodel.Finding) for f in findings)
    assert any(f.severity == "error" and "variables" in f.location for f in findings), findings


def test_versions_and_publish(tmp_path):
    assert savedmodel.versions(serving_fixtures() / "saved_model_half_plus_two_2_versions") == (
        123,
        124,
    )
    src = serving_fixtures() / "saved_model_half_plus_two_cpu" / "00000123"
    base = tmp_path / "base"
    base.mkdir()
    version, path = savedmodel.publish(src, base)
    assert version == 1 and os.path.samefile(path, base / "1")
    assert savedmodel.publish(src, base, version=7)[0] == 7
    assert savedmodel.versions(base) == (1, 7)
    assert savedmodel.SavedModel(base / "7").tags == [["serve"]]
    try:
        savedmodel.publish(src, base, version=7)
    except savedmodel.InvalidArgumentError as e:
        assert "7" in str(e)
    else:
        raise AssertionError("publishing an existing version must fail")
