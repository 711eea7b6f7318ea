"""Every error path raises the right exception class with the Rust message;
hostile files raise, never crash the interpreter."""

import os
import shutil

import numpy as np
import pytest

import savedmodel


def test_hierarchy():
    for cls in [
        savedmodel.CorruptDataError,
        savedmodel.NotFoundError,
        savedmodel.InvalidArgumentError,
    ]:
        assert issubclass(cls, savedmodel.SavedModelError)
    assert issubclass(savedmodel.SavedModelError, Exception)


def test_missing_checkpoint_is_not_found(tmp_path):
    with pytest.raises(savedmodel.NotFoundError, match="nope.index"):
        savedmodel.load_checkpoint(tmp_path / "nope")


def test_missing_tensor_is_not_found(golden):
    with savedmodel.open_checkpoint(golden["prefixes"]["dtypes"]) as ckpt:
        with pytest.raises(savedmodel.NotFoundError, match="no_such_tensor"):
            ckpt.get_tensor("no_such_tensor")
        with pytest.raises(savedmodel.NotFoundError):
            ckpt.get_slice("no_such_tensor")
        with pytest.raises(savedmodel.NotFoundError):
            ckpt.shape("no_such_tensor")


def copy_checkpoint(golden, tmp_path):
    src = golden["prefixes"]["dtypes"]
    for suffix in [".index", ".data-00000-of-00001"]:
        shutil.copy(str(src) + suffix, str(tmp_path / "c") + suffix)
    return tmp_path / "c"


def test_flipped_data_byte_fails_the_checksum(golden, tmp_path):
    prefix = copy_checkpoint(golden, tmp_path)
    data = tmp_path / "c.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0xFF
    data.write_bytes(raw)
    with savedmodel.open_checkpoint(prefix) as ckpt:
        first = min(ckpt.keys(), key=lambda k: k)  # any tensor may start at 0
        errors = 0
        for name in ckpt.keys():
            try:
                ckpt.get_tensor(name)
            except savedmodel.CorruptDataError as e:
                assert "checksum" in str(e) or "crc" in str(e).lower(), str(e)
                errors += 1
        assert errors == 1, first
    # Without verification the (wrong) bytes are read.
    savedmodel.load_checkpoint(prefix, verify_checksums=False)


def test_flipped_byte_deep_in_a_large_tensor_fails_load_checkpoint(tmp_path):
    # load_checkpoint verifies the checksums of large tensors in parts, on
    # several threads, before returning any array: a flip in the second half
    # of one must still raise, naming it.
    big = np.arange(6 << 20, dtype=np.float32)  # 24 MiB
    tensors = {"a": np.ones(3, dtype=np.float32), "big": big, "z": np.zeros(2)}
    savedmodel.save_checkpoint(tensors, tmp_path / "c")
    data = tmp_path / "c.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[12 + (20 << 20)] ^= 0x01  # "a" holds the first 12 bytes
    data.write_bytes(raw)
    with pytest.raises(savedmodel.CorruptDataError, match="big"):
        savedmodel.load_checkpoint(tmp_path / "c")
    with savedmodel.open_checkpoint(tmp_path / "c") as ckpt:
        np.testing.assert_array_equal(ckpt.get_tensor("z"), tensors["z"])
    unchecked = savedmodel.load_checkpoint(tmp_path / "c", verify_checksums=False)
    assert unchecked["big"][5 << 20] != big[5 << 20]


def test_truncated_data_file_is_corrupt(golden, tmp_path):
    prefix = copy_checkpoint(golden, tmp_path)
    data = tmp_path / "c.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:10])
    with pytest.raises(savedmodel.CorruptDataError):
        savedmodel.load_checkpoint(prefix)


@pytest.mark.parametrize("seed", range(8))
def test_hostile_index_files_raise(golden, tmp_path, seed):
    prefix = copy_checkpoint(golden, tmp_path)
    index = tmp_path / "c.index"
    raw = bytearray(index.read_bytes())
    rng = np.random.default_rng(seed)
    if seed == 0:
        raw = raw[: len(raw) // 2]
    elif seed == 1:
        raw = bytearray(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    else:
        for pos in rng.integers(0, len(raw), 4):
            raw[pos] ^= int(rng.integers(1, 256))
    index.write_bytes(bytes(raw))
    try:
        loaded = savedmodel.load_checkpoint(prefix)
    except savedmodel.SavedModelError:
        return
    # A flip that TensorFlow's format cannot notice (padding, an unused
    # byte) may leave a readable checkpoint: then it must be the original.
    original = savedmodel.load_checkpoint(golden["prefixes"]["dtypes"])
    assert sorted(loaded) == sorted(original)


def test_unsupported_dtype_is_invalid_argument(tmp_path):
    with pytest.raises(savedmodel.InvalidArgumentError, match="datetime64"):
        savedmodel.save_checkpoint({"t": np.array(["2020-01-01"], dtype="datetime64[D]")}, tmp_path / "x")
    assert not os.path.exists(tmp_path / "x.index")


def test_bad_names_and_elements_are_invalid_arguments(tmp_path):
    with pytest.raises(savedmodel.InvalidArgumentError, match="names must be str"):
        savedmodel.save_checkpoint({1: np.zeros(2)}, tmp_path / "x")
    objects = np.empty(2, dtype=object)
    objects[:] = [b"a", 3]
    with pytest.raises(savedmodel.InvalidArgumentError, match="element 1 is a int"):
        savedmodel.save_checkpoint({"o": objects}, tmp_path / "x")
    with pytest.raises(TypeError, match="mapping"):
        savedmodel.save_checkpoint([np.zeros(2)], tmp_path / "x")


def test_saved_model_errors(tmp_path):
    with pytest.raises(savedmodel.NotFoundError):
        savedmodel.SavedModel(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "saved_model.pb").write_bytes(b"\xff\xff\xff garbage")
    with pytest.raises(savedmodel.CorruptDataError, match="saved_model.pb"):
        savedmodel.SavedModel(tmp_path / "bad")
    with pytest.raises(savedmodel.NotFoundError):
        savedmodel.versions(tmp_path / "no_base")


def test_unknown_tags_and_signature(golden):
    model = savedmodel.SavedModel(golden["root"] / "tf2")
    with pytest.raises(savedmodel.NotFoundError):
        model.signatures(tags=["nope"])
    with pytest.raises(savedmodel.NotFoundError):
        model.show(tag_set="serve", signature_def="nope")
