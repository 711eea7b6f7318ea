"""The TensorFlow and safetensors side of `cargo xtask bench`.

Run with the project's virtualenv by `xtask/src/bench/`, which sends one
command per line on stdin and reads one reply per line on stdout, so that it
can interleave these measurements with its own (same data, same page-cache
state, same machine load). Only lines starting with `@@ ` are replies.

Commands:

* `layout DATA COUNT`: load DATA (raw little-endian float32, written by
  `checkpoint-bench gen`) and split it as `savedmodel_benches::checkpoint`
  does: COUNT one-dimensional float32 tensors named `w/000000`, ... (the
  first `elements % COUNT` one element longer), then the int64 scalar
  `global_step` = 1000000. Converts them to TensorFlow tensors once (not
  timed).
* `tf_write PREFIX`: `tf.raw_ops.SaveV2` of every tensor, in that order.
* `tf_read PREFIX`: `tf.train.load_checkpoint` + `get_tensor` of every
  tensor (results kept until the memory is measured).
* `tf_open PREFIX`: `tf.train.load_checkpoint` + `get_tensor("global_step")`.
* `st_write PATH`: `safetensors.numpy.save_file` of every tensor.
* `st_write_fsync PATH`: `st_write`, then fsync of the file and of its
  directory (what a crash-safe save adds; our writer does it by default).
* `st_read PATH`: `safetensors.numpy.load_file`.
* `st_open PATH`: `safe_open` + `get_tensor("global_step")`.
* `py_write PREFIX`: our package's `savedmodel.save_checkpoint` of every
  tensor (the same numpy arrays safetensors saves).
* `py_write_nofsync PREFIX`: `py_write` with `fsync=False`.
* `py_read PREFIX`: `savedmodel.load_checkpoint` (read-only numpy views
  into the memory map, CRCs checked).
* `quit`.

Our package is imported from `$SAVEDMODEL_BENCH_WHEEL_DIR` (the release
wheel unpacked) when that is set; the `py_` commands fail without it.

Each reply is `@@ ok key=value ...` with `seconds` (wall time of the
operation alone, `time.perf_counter`), `cpu_seconds` and `wait_seconds`
(time this process's threads spent on a CPU and waiting on a run queue for
one, from `/proc/self/task/*/schedstat`) and, from `/proc/self/status`,
`rss_before`, `anon_before`, `peak` (VmHWM, reset just before the operation
through `/proc/self/clear_refs`), `anon_after` and `file_after` (results
still alive), in bytes; or `@@ error <message>`.
"""

import gc
import os
import sys
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import tensorflow as tf  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402

if os.environ.get("SAVEDMODEL_BENCH_WHEEL_DIR"):
    sys.path.insert(0, os.environ["SAVEDMODEL_BENCH_WHEEL_DIR"])
    import savedmodel  # noqa: E402

SMALL_TENSOR = "global_step"
SMALL_TENSOR_VALUE = 1_000_000


def memory():
    """VmRSS, VmHWM, RssAnon, RssFile of this process, in bytes."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                values[key] = int(value.split()[0]) * 1024
    return values


def cpu_times():
    """Seconds this process's threads spent on a CPU and waiting for one."""
    on_cpu = waiting = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/schedstat") as f:
                fields = f.read().split()
        except OSError:
            continue
        on_cpu += int(fields[0])
        waiting += int(fields[1])
    return on_cpu * 1e-9, waiting * 1e-9


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Layout:
    """The tensors of one benchmark layout, as NumPy views and TF tensors."""

    def __init__(self, data_path, count):
        data = np.fromfile(data_path, dtype="<f4")
        elements = data.size
        base, extra = divmod(elements, count)
        self.names = []
        self.arrays = []
        start = 0
        for i in range(count):
            n = base + (1 if i < extra else 0)
            self.names.append(f"w/{i:06d}")
            self.arrays.append(data[start : start + n])
            start += n
        self.names.append(SMALL_TENSOR)
        self.arrays.append(np.array(SMALL_TENSOR_VALUE, dtype=np.int64))
        self.total_bytes = data.nbytes
        self.tf_tensors = [tf.constant(a) for a in self.arrays]
        self.tf_names = tf.constant(self.names)
        self.tf_slices = tf.constant([""] * len(self.names))
        self.st_dict = dict(zip(self.names, self.arrays))


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_small(value):
    if int(value) != SMALL_TENSOR_VALUE:
        raise ValueError(f"{SMALL_TENSOR} is {value!r}, expected {SMALL_TENSOR_VALUE}")


def run(layout, command, arg):
    """Runs one timed operation; returns (results to keep alive, extra text)."""
    if command == "tf_write":
        tf.raw_ops.SaveV2(
            prefix=arg,
            tensor_names=layout.tf_names,
            shape_and_slices=layout.tf_slices,
            tensors=layout.tf_tensors,
        )
        return None, f"tensors={len(layout.names)}"
    if command == "tf_read":
        reader = tf.train.load_checkpoint(arg)
        results = [reader.get_tensor(name) for name in layout.names]
        return (reader, results), f"tensors={len(results)}"
    if command == "tf_open":
        reader = tf.train.load_checkpoint(arg)
        value = reader.get_tensor(SMALL_TENSOR)
        check_small(value)
        return (reader, value), "tensors=1"
    if command == "py_write":
        savedmodel.save_checkpoint(layout.st_dict, arg)
        return None, f"tensors={len(layout.names)}"
    if command == "py_write_nofsync":
        savedmodel.save_checkpoint(layout.st_dict, arg, fsync=False)
        return None, f"tensors={len(layout.names)}"
    if command == "py_read":
        results = savedmodel.load_checkpoint(arg)
        return results, f"tensors={len(results)}"
    if command == "st_write":
        save_file(layout.st_dict, arg)
        return None, f"tensors={len(layout.names)}"
    if command == "st_write_fsync":
        save_file(layout.st_dict, arg)
        fsync_path(arg)
        fsync_path(os.path.dirname(os.path.abspath(arg)))
        return None, f"tensors={len(layout.names)}"
    if command == "st_read":
        results = load_file(arg)
        return results, f"tensors={len(results)}"
    if command == "st_open":
        handle = safe_open(arg, framework="numpy")
        with handle as f:
            value = f.get_tensor(SMALL_TENSOR)
        check_small(value)
        return value, "tensors=1"
    raise ValueError(f"unknown command {command!r}")


def check_results(layout, command, results):
    """Checks what a read returned (not timed)."""
    if command == "tf_read":
        arrays = results[1]
    elif command in ("st_read", "py_read"):
        arrays = [results[name] for name in layout.names]
    else:
        return
    if len(arrays) != len(layout.names):
        raise ValueError(f"{len(arrays)} tensors read, expected {len(layout.names)}")
    got = sum(a.nbytes for a in arrays[:-1])
    if got != layout.total_bytes:
        raise ValueError(f"{got} float32 bytes read, expected {layout.total_bytes}")
    for i in (0, len(arrays) // 2 - 1, len(arrays) - 2):
        if i >= 0 and not np.array_equal(arrays[i], layout.arrays[i]):
            raise ValueError(f"tensor {layout.names[i]} differs from the data")
    check_small(arrays[-1])


def reply(text):
    sys.stdout.write("@@ " + text + "\n")
    sys.stdout.flush()


def main():
    layout = None
    reply(
        f"ready tensorflow={tf.__version__} safetensors={safetensors.__version__}"
        f" numpy={np.__version__} python={sys.version.split()[0]}"
    )
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        command, args = words[0], words[1:]
        if command == "quit":
            reply("ok")
            return
        try:
            if command == "layout":
                layout = None
                gc.collect()
                layout = Layout(args[0], int(args[1]))
                reply(f"ok tensors={len(layout.names)}")
                continue
            if layout is None:
                raise ValueError("no layout loaded")
            gc.collect()
            peak_reset = reset_peak()
            before = memory()
            cpu_before, wait_before = cpu_times()
            started = time.perf_counter()
            results, extra = run(layout, command, args[0])
            seconds = time.perf_counter() - started
            cpu_after, wait_after = cpu_times()
            after = memory()
            check_results(layout, command, results)
            del results
            gc.collect()
            reply(
                f"ok seconds={seconds:.9f} cpu_seconds={cpu_after - cpu_before:.9f}"
                f" wait_seconds={wait_after - wait_before:.9f} rss_before={before['VmRSS']}"
                f" anon_before={before['RssAnon']} peak={after['VmHWM']}"
                f" anon_after={after['RssAnon']} file_after={after['RssFile']}"
                f" peak_reset={str(peak_reset).lower()} {extra}"
            )
        except Exception as e:  # noqa: BLE001 - reported to the driver
            traceback.print_exc(file=sys.stderr)
            reply(f"error {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


if __name__ == "__main__":
    main()
