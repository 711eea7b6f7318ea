"""Writing: `save_checkpoint`'s files are byte for byte SaveV2's for the same
tensors, TensorFlow reads them back, and array-likes round-trip."""

import numpy as np

import savedmodel

from conftest import ArrayLike
from test_checkpoint import assert_equals_tensorflow


def test_bytes_equal_savev2(golden):
    root = golden["root"]
    for suffix in [".index", ".data-00000-of-00001"]:
        ours = (root / "ours" / ("ckpt" + suffix)).read_bytes()
        theirs = (root / "theirs" / ("ckpt" + suffix)).read_bytes()
        assert ours == theirs, suffix


def test_tensorflow_reads_what_save_checkpoint_wrote(golden):
    expected = golden["expected"]["ours"]
    assert sorted(expected) == sorted(golden["saved"])
    for name, value in golden["saved"].items():
        array = np.asarray(value)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("="))
        assert_equals_tensorflow(name, array.copy(order="C"), expected[name])


def test_array_like_state_dict_round_trips(tmp_path):
    state = {
        "layer.weight": ArrayLike(np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)),
        "layer.bias": ArrayLike(np.zeros(4, dtype=np.float32)),
        "num_batches_tracked": ArrayLike(np.array(3, dtype=np.int64)),
    }
    savedmodel.save_checkpoint(state, tmp_path / "state")
    loaded = savedmodel.load_checkpoint(tmp_path / "state")
    assert sorted(loaded) == sorted(state)
    for name, value in state.items():
        np.testing.assert_array_equal(loaded[name], np.asarray(value))
        assert loaded[name].dtype == np.asarray(value).dtype


def test_str_elements_are_utf8(tmp_path):
    savedmodel.save_checkpoint({"u": np.array(["é", "ab"])}, tmp_path / "s")
    loaded = savedmodel.load_checkpoint(tmp_path / "s")
    assert loaded["u"].tolist() == ["é".encode(), b"ab"]


def test_empty_and_strings_only_mappings(tmp_path):
    savedmodel.save_checkpoint({}, tmp_path / "empty")
    assert savedmodel.load_checkpoint(tmp_path / "empty") == {}
    savedmodel.save_checkpoint({"s": np.array([b"x"], dtype=object)}, tmp_path / "s")
    assert savedmodel.load_checkpoint(tmp_path / "s")["s"].tolist() == [b"x"]


class _Subclass(np.ndarray):
    """An ndarray subclass: saved through `numpy.asarray`, not read in place."""


def test_plain_arrays_save_the_bytes_other_arrays_do(tmp_path):
    # Plain C-contiguous ndarrays of numpy's own dtypes are read without a
    # Python call; every other array goes through `numpy.asarray` and
    # `ascontiguousarray`. The files must not tell them apart.
    rng = np.random.default_rng(0)
    plain = {}
    for dtype in ["bool", "int8", "uint8", "int16", "uint16", "intc", "uint32", "int64",
                  "longlong", "ulonglong", "float16", "float32", "float64", "complex64",
                  "complex128"]:
        plain[dtype] = (rng.standard_normal(24) * 100).astype(dtype).reshape(2, 3, 4)
    plain["scalar"] = np.array(3.5, dtype=np.float32)
    plain["empty"] = np.zeros((0, 3), dtype=np.int32)
    others = {}
    for i, (name, array) in enumerate(plain.items()):
        others[name] = array.view(_Subclass) if i % 2 else np.asfortranarray(array)
        if i % 2 == 0 and array.ndim > 1 and array.size > 1:
            assert not others[name].flags.c_contiguous
    savedmodel.save_checkpoint(plain, tmp_path / "plain")
    savedmodel.save_checkpoint(others, tmp_path / "others")
    savedmodel.save_checkpoint(plain, tmp_path / "nofsync", fsync=False)
    for suffix in [".index", ".data-00000-of-00001"]:
        expected = (tmp_path / ("plain" + suffix)).read_bytes()
        assert (tmp_path / ("others" + suffix)).read_bytes() == expected, suffix
        assert (tmp_path / ("nofsync" + suffix)).read_bytes() == expected, suffix
    loaded = savedmodel.load_checkpoint(tmp_path / "plain")
    for name, array in plain.items():
        assert loaded[name].dtype == array.dtype, name
        np.testing.assert_array_equal(loaded[name], array)
