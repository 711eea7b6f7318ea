"""Type stubs of the extension module `savedmodel._savedmodel` (re-exported by `savedmodel`)."""

import os
from pathlib import Path
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

_Path = str | os.PathLike[str]

class SavedModelError(Exception):
    """Base class of the errors the package raises; the message names the file, tensor or directory."""

class CorruptDataError(SavedModelError):
    """A file is not what its format says (broken table, entry, checksum, proto, out-of-bounds data)."""

class NotFoundError(SavedModelError):
    """A file, directory, tensor, MetaGraph or signature does not exist."""

class InvalidArgumentError(SavedModelError):
    """An argument cannot be used (unsupported dtype, bad shape or name, refused version)."""

class MappedCheckpoint:
    """The memory-mapped files of an open checkpoint: the numpy ``base`` of every array viewing them."""

class CheckpointSlice:
    """A lazy handle on one tensor: ``dtype`` and ``shape`` without reading, ``[...]`` reads only what it touches.

    The checksum is not verified (it covers the whole tensor).
    """

    @property
    def dtype(self) -> str:
        """TensorFlow's name of the data type (``float32``, ``bfloat16``, ``string``)."""
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape."""
    def __getitem__(self, index: Any) -> np.ndarray: ...

class Checkpoint:
    """A checkpoint opened by :func:`open_checkpoint`; tensors are read on demand."""

    @property
    def prefix(self) -> Path:
        """The prefix (the path without ``.index``)."""
    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
    def keys(self) -> list[str]:
        """The tensor names, sorted, as ``tf.train.load_checkpoint`` lists them."""
    def get_tensor(self, name: str, *, copy: bool = False) -> np.ndarray:
        """Tensor ``name``: a read-only view into the map (numeric), an object array of ``bytes`` (strings);
        ``copy=True`` for a writable copy."""
    def get_slice(self, name: str) -> CheckpointSlice:
        """A lazy handle on tensor ``name``."""
    def dtype(self, name: str) -> str:
        """TensorFlow's name of tensor ``name``'s data type, from the index only."""
    def shape(self, name: str) -> tuple[int, ...]:
        """Tensor ``name``'s shape, from the index only."""
    def metadata(self) -> dict[str, Any]:
        """The bundle header: ``num_shards``, ``endianness``, ``version``."""
    def variable_names(self) -> dict[str, str]:
        """A TensorFlow 2 object checkpoint's variable names by checkpoint key (from its object graph)."""
    def close(self) -> None:
        """Drops this object's hold on the maps; arrays already returned keep theirs."""
    def __enter__(self) -> "Checkpoint": ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...
    def __len__(self) -> int: ...
    def __contains__(self, name: str) -> bool: ...
    def __iter__(self) -> Iterator[str]: ...

def open_checkpoint(prefix: _Path, *, verify_checksums: bool = True) -> Checkpoint:
    """Opens the checkpoint at ``prefix`` (the path without ``.index``) for reading on demand."""

def load_checkpoint(
    prefix: _Path, *, copy: bool = False, verify_checksums: bool = True
) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint at ``prefix``; numeric arrays are read-only views into the map."""

def save_checkpoint(
    tensors: Mapping[str, npt.ArrayLike], prefix: _Path, *, fsync: bool = True
) -> None:
    """Writes ``tensors`` (arrays or anything with ``__array__``/``__dlpack__``) as the checkpoint ``prefix``,
    byte for byte what TensorFlow's ``SaveV2`` writes; ``fsync=False`` skips the fsyncs."""

class TensorSpec:
    """One input or output of a signature."""

    name: str
    dtype: str
    shape: list[int | None] | None

class Signature:
    """A signature: key, method name, inputs and outputs by alias."""

    name: str
    method_name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

class Finding:
    """One problem :meth:`SavedModel.validate` found."""

    severity: str
    location: str
    message: str

class SavedModel:
    """A SavedModel directory opened for reading."""

    def __init__(self, path: _Path) -> None: ...
    @property
    def path(self) -> Path:
        """The directory."""
    @property
    def tags(self) -> list[list[str]]:
        """The MetaGraphs' tag sets, in file order."""
    def signatures(self, tags: list[str] | None = None) -> dict[str, Signature]:
        """The signatures of the MetaGraph with exactly ``tags`` (default: the only one, else ``serve``)."""
    def variables(self, *, verify_checksums: bool = True) -> Checkpoint | None:
        """The variables as a lazy :class:`Checkpoint`, or ``None``."""
    def assets(self, tags: list[str] | None = None) -> list[tuple[str, Path]]:
        """The asset files as ``(filename, path)`` pairs."""
    def show(
        self,
        *,
        tag_set: str | None = None,
        signature_def: str | None = None,
        all: bool = False,
        list_ops: bool = False,
    ) -> str:
        """What ``savedmodel show`` / ``saved_model_cli show`` prints for the same flags."""
    def validate(
        self, *, tags: list[str] | None = None, verify_checksums: bool = True
    ) -> list[Finding]:
        """What TensorFlow Serving would find wrong; empty when clean."""

def export(
    spec: _Path, weights: _Path | Mapping[str, npt.ArrayLike], out_dir: _Path
) -> Path:
    """Exports the model the TOML ``spec`` describes with ``weights`` (a weights file or a state dict)
    to a new SavedModel directory ``out_dir``; returns it."""

def export_onnx(
    model: _Path,
    out_dir: _Path,
    *,
    signature_name: str = "serving_default",
    input_layout: str = "nchw",
    dynamic_batch: bool = False,
    warmup: Mapping[str, npt.ArrayLike] | None = None,
) -> Path:
    """Converts the ONNX model ``model`` to a new SavedModel directory ``out_dir`` (what
    ``savedmodel export --onnx`` does, without publishing); returns it. ``input_layout="nhwc"``
    makes 4-D inputs channels last, ``dynamic_batch`` makes dimension 0 dynamic, ``warmup`` is one
    request (ONNX input names to arrays) written to ``assets.extra``."""

def publish(
    src: _Path,
    base: _Path,
    *,
    version: int | None = None,
    move: bool = False,
    follow_outside_links: bool = False,
) -> tuple[int, Path]:
    """Publishes SavedModel directory ``src`` under base path ``base`` as a new version, atomically."""

def versions(base: _Path) -> tuple[int, ...]:
    """The version numbers TensorFlow Serving sees under ``base``, ascending."""

def main() -> int:
    """Runs the ``savedmodel`` command line on ``sys.argv``; returns the exit code."""
