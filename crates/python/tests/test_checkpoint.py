"""Reading: values equal TensorFlow's (`tf.train.load_checkpoint`), byte for
byte, for every dtype on golden checkpoints and on the TF Serving fixtures;
arrays are read-only views whose base is the memory map's owner."""

import base64
import re

import numpy as np
import pytest

import savedmodel

from conftest import GOLDEN_DTYPES


def assert_equals_tensorflow(name, array, tf_tensor):
    assert list(array.shape) == tf_tensor["shape"], name
    if tf_tensor["dtype"] == "DT_STRING":
        assert array.dtype == object, name
        assert [bytes(s) for s in array.reshape(-1)] == [
            base64.b64decode(s) for s in tf_tensor["strings"]
        ], name
    else:
        assert array.dtype == np.dtype(GOLDEN_DTYPES[tf_tensor["dtype"]]), name
        assert array.tobytes() == base64.b64decode(tf_tensor["data"]), name


@pytest.mark.parametrize(
    "which", ["dtypes", "part", "multi", "tf2", "serving_tf1", "serving_tf2", "serving_counter"]
)
def test_load_checkpoint_equals_tensorflow(golden, which):
    expected = golden["expected"][which]
    loaded = savedmodel.load_checkpoint(golden["prefixes"][which])
    assert sorted(loaded) == sorted(expected)
    for name, array in loaded.items():
        assert_equals_tensorflow(name, array, expected[name])


def test_every_golden_dtype_is_covered(golden):
    got = {t["dtype"] for t in golden["expected"]["dtypes"].values()}
    assert got == set(GOLDEN_DTYPES) | {"DT_STRING"}


def test_open_checkpoint_is_lazy_and_equals_tensorflow(golden):
    expected = golden["expected"]["dtypes"]
    with savedmodel.open_checkpoint(golden["prefixes"]["dtypes"]) as ckpt:
        assert ckpt.keys() == sorted(expected)
        assert len(ckpt) == len(expected)
        assert list(ckpt) == ckpt.keys()
        assert "dt_float" in ckpt and "nope" not in ckpt
        assert ckpt.dtype("dt_bfloat16") == "bfloat16"
        assert ckpt.dtype("strings") == "string"
        assert ckpt.shape("empty") == (0, 4)
        assert ckpt.shape("scalar") == ()
        meta = ckpt.metadata()
        assert meta["num_shards"] == 1 and meta["endianness"] == "little"
        assert meta["version"]["producer"] == 1
        for name in ckpt.keys():
            assert_equals_tensorflow(name, ckpt.get_tensor(name), expected[name])
        sl = ckpt.get_slice("dt_int32")
        assert sl.dtype == "int32" and sl.shape == (2, 3)
        full = ckpt.get_tensor("dt_int32")
        np.testing.assert_array_equal(sl[1:, ::2], full[1:, ::2])
        np.testing.assert_array_equal(sl[...], full)
        assert ckpt.get_slice("strings")[1, 0] == b"\xff" * 300
    assert ckpt.closed
    with pytest.raises(ValueError, match="closed"):
        ckpt.keys()
    # Arrays outlive the checkpoint that handed them out.
    assert full.sum() == np.frombuffer(
        base64.b64decode(expected["dt_int32"]["data"]), dtype=np.int32
    ).sum()


def test_partitioned_slices_read_through_get_slice(golden):
    with savedmodel.open_checkpoint(golden["prefixes"]["part"]) as ckpt:
        assert ckpt.keys() == ["p", "q"]
        np.testing.assert_array_equal(
            ckpt.get_slice("p")[1:3], np.arange(3, 9, dtype=np.float32).reshape(2, 3)
        )


def test_multi_shard_metadata(golden):
    with savedmodel.open_checkpoint(golden["prefixes"]["multi"]) as ckpt:
        assert ckpt.metadata()["num_shards"] == 2
        assert ckpt.keys() == ["x", "y"]


def test_arrays_are_read_only_views_of_the_map(golden):
    loaded = savedmodel.load_checkpoint(golden["prefixes"]["dtypes"])
    array = loaded["dt_float"]
    assert isinstance(array.base, savedmodel.MappedCheckpoint)
    assert not array.flags.writeable
    assert not array.flags.owndata
    with pytest.raises(ValueError):
        array[0, 0] = 1.0
    with pytest.raises(ValueError, match="WRITEABLE"):
        array.setflags(write=True)
    # Every view of the same checkpoint shares the one map owner.
    assert loaded["dt_int64"].base is array.base
    # copy=True: writable arrays that own their data, same values.
    copied = savedmodel.load_checkpoint(golden["prefixes"]["dtypes"], copy=True)
    assert copied["dt_float"].flags.writeable and copied["dt_float"].base is None
    np.testing.assert_array_equal(copied["dt_float"], array)
    copied["dt_float"][0, 0] = 1.0
    with savedmodel.open_checkpoint(golden["prefixes"]["dtypes"]) as ckpt:
        assert ckpt.get_tensor("dt_float", copy=True).flags.writeable


def anonymous_kib():
    with open("/proc/self/status") as f:
        return int(re.search(r"RssAnon:\s+(\d+) kB", f.read()).group(1))


def test_loading_does_not_grow_anonymous_memory(tmp_path):
    # 1 GiB of float32 in 64 tensors (one 16 MiB array saved 64 times, so
    # the test itself holds little): loading and reading every element grows
    # anonymous memory by under 1% of that (the data is file-backed).
    size = 1 << 30
    per = size // 64 // 4
    base = (np.arange(per, dtype=np.int64) % 7).astype(np.float32)
    savedmodel.save_checkpoint({f"t{i:02}": base for i in range(64)}, tmp_path / "big")
    expected = float(base.sum(dtype=np.float64))
    del base
    before = anonymous_kib()
    loaded = savedmodel.load_checkpoint(tmp_path / "big")
    sums = [float(a.sum(dtype=np.float64)) for a in loaded.values()]
    grown = anonymous_kib() - before
    assert len(sums) == 64 and all(s == expected for s in sums)
    assert grown * 1024 < size // 100, f"anonymous memory grew by {grown} KiB"
