"""`export`: a spec and a state dict (or a weights file) to a SavedModel that
validates clean and holds the weights; then published."""

import numpy as np
import pytest

import savedmodel

from conftest import ArrayLike

SPEC = """
[model]
architecture = "mlp"
task = "classifier"
input_width = 4
layout = "out_in"

[classes]
labels = ["setosa", "versicolor", "virginica"]

[[layers]]
kernel = "fc1.weight"
bias = "fc1.bias"
activation = "relu"

[[layers]]
kernel = "fc2.weight"
bias = "fc2.bias"
activation = "softmax"
"""


def state_dict():
    rng = np.random.default_rng(3)
    return {
        "fc1.weight": ArrayLike(rng.standard_normal((16, 4), dtype=np.float32)),
        "fc1.bias": ArrayLike(np.zeros(16, dtype=np.float32)),
        "fc2.weight": ArrayLike(rng.standard_normal((3, 16), dtype=np.float32)),
        "fc2.bias": ArrayLike(np.ones(3, dtype=np.float32)),
    }


@pytest.mark.parametrize("source", ["mapping", "checkpoint"])
def test_export_from_a_state_dict(tmp_path, source):
    spec = tmp_path / "mlp.toml"
    spec.write_text(SPEC)
    state = state_dict()
    weights = state
    if source == "checkpoint":
        savedmodel.save_checkpoint(state, tmp_path / "weights")
        weights = tmp_path / "weights"
    out = savedmodel.export(spec, weights, tmp_path / "model")
    model = savedmodel.SavedModel(out)
    assert model.tags == [["serve"]]
    predict = model.signatures()["predict"]
    assert predict.inputs["inputs"].shape == [None, 4]
    assert predict.outputs["scores"].shape == [None, 3]
    assert [f for f in model.validate() if f.severity == "error"] == []
    with model.variables() as variables:
        values = sorted(
            tuple(np.asarray(variables.get_tensor(k)).ravel()) for k in variables.keys()
        )
    # Every weight is in the variables, in some layout.
    for value in state.values():
        array = np.asarray(value)
        assert any(
            sorted(v) == sorted(array.ravel().tolist()) for v in map(list, values)
        ), array.shape
    base = tmp_path / "base"
    base.mkdir()
    assert savedmodel.publish(out, base)[0] == 1


def test_export_errors(tmp_path):
    spec = tmp_path / "mlp.toml"
    spec.write_text(SPEC)
    state = state_dict()
    del state["fc2.bias"]
    with pytest.raises(savedmodel.NotFoundError, match="fc2.bias"):
        savedmodel.export(spec, state, tmp_path / "model")
    (tmp_path / "bad.toml").write_text("[model]\narchitecture = 'nope'\n")
    with pytest.raises(savedmodel.InvalidArgumentError, match="bad.toml"):
        savedmodel.export(tmp_path / "bad.toml", state_dict(), tmp_path / "model")


class DLPackOnly:
    """An object numpy can take only through DLPack (no `__array__`)."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_dlpack_only_objects_are_saved(tmp_path):
    array = np.arange(10, dtype=np.float64).reshape(2, 5)
    savedmodel.save_checkpoint({"d": DLPackOnly(array)}, tmp_path / "d")
    np.testing.assert_array_equal(savedmodel.load_checkpoint(tmp_path / "d")["d"], array)
