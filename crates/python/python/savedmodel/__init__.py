"""Read and write TensorFlow checkpoints and SavedModels without TensorFlow.

Checkpoints (the names Python users know from safetensors and ``tf.train``):

- :func:`load_checkpoint` reads every tensor into a ``dict`` of numpy arrays;
- :func:`open_checkpoint` opens one lazily (a context manager with ``keys()``,
  ``get_tensor(name)``, ``get_slice(name)[...]``, ``dtype(name)``,
  ``shape(name)`` and ``metadata()``);
- :func:`save_checkpoint` writes a mapping of names to arrays (or anything
  with ``__array__`` or ``__dlpack__``), byte for byte what TensorFlow's
  ``SaveV2`` writes.

Numeric arrays read from a checkpoint are read-only views into the
memory-mapped data file: nothing is copied, and the map stays alive as long
as any array does (``array.base`` is the :class:`MappedCheckpoint`). Pass
``copy=True`` for writable copies. bfloat16 and float8 tensors need the
``ml_dtypes`` package.

SavedModels: :class:`SavedModel` (tags, signatures, variables, assets,
``show()`` and ``validate()``), :func:`export` (a model spec and weights, or a
state dict, to a SavedModel), :func:`export_onnx` (an ONNX model to a
SavedModel), and TensorFlow Serving's base paths:
:func:`publish` and :func:`versions`.

Errors are :class:`SavedModelError` or one of its subclasses
:class:`CorruptDataError`, :class:`NotFoundError` and
:class:`InvalidArgumentError`, with the Rust library's message.

The wheel also installs the ``savedmodel`` command (the same command line as
the Rust binary).
"""

from ._savedmodel import (
    Checkpoint,
    CheckpointSlice,
    CorruptDataError,
    Finding,
    InvalidArgumentError,
    MappedCheckpoint,
    NotFoundError,
    SavedModel,
    SavedModelError,
    Signature,
    TensorSpec,
    export,
    export_onnx,
    load_checkpoint,
    open_checkpoint,
    publish,
    save_checkpoint,
    versions,
)
from ._savedmodel import main as _main

__all__ = [
    "Checkpoint",
    "CheckpointSlice",
    "CorruptDataError",
    "Finding",
    "InvalidArgumentError",
    "MappedCheckpoint",
    "NotFoundError",
    "SavedModel",
    "SavedModelError",
    "Signature",
    "TensorSpec",
    "export",
    "export_onnx",
    "load_checkpoint",
    "open_checkpoint",
    "publish",
    "save_checkpoint",
    "versions",
]


def _console_main() -> int:
    """The ``savedmodel`` console script: the Rust command line on ``sys.argv``."""
    import signal

    # The command runs in Rust without returning to the interpreter, which
    # would only note a Ctrl-C; let it stop the command as it stops the binary.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return _main()
