"""Loading and saving 1 GiB of float32 from Python: savedmodel against
safetensors' numpy API and TensorFlow, on the same tensors.

Not a test (nothing here asserts a speed); run by hand until `cargo xtask
bench` grows the Python rows (issue 14, point 6):

    # a venv with the release wheel, numpy and safetensors
    python load_save.py write DIR
    python load_save.py time DIR savedmodel      # load_checkpoint, save_checkpoint
    python load_save.py time DIR safetensors     # safetensors.numpy.load_file / save_file
    $SAVEDMODEL_TF_PYTHON load_save.py time DIR tf   # tf.train.load_checkpoint + get_tensor of each

Each case runs REPEATS times with the files in the page cache (one untimed
warm-up); min/median/max in milliseconds. A load touches no data (views and
copies alike are what the loader returns); the `sum` row of savedmodel reads
every element once through the view, for comparison.
"""

import os
import statistics
import sys
import time

import numpy as np

TOTAL = 1 << 30
CASES = {"1": 1, "64": 64, "100000": 100_000}
REPEATS = 5


def tensors(count):
    per = TOTAL // 4 // count
    rng = np.random.default_rng(0)
    base = rng.standard_normal(per, dtype=np.float32)
    return {f"t{i:06}": base for i in range(count)}


def timed(fn):
    fn()
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return min(samples), statistics.median(samples), max(samples)


def report(case, what, stats):
    print(f"{case:>7} tensors  {what:<44} min {stats[0]:9.1f}  median {stats[1]:9.1f}  max {stats[2]:9.1f} ms", flush=True)


def write(root):
    import safetensors.numpy
    import savedmodel

    for case, count in CASES.items():
        os.makedirs(os.path.join(root, case), exist_ok=True)
        t = tensors(count)
        savedmodel.save_checkpoint(t, os.path.join(root, case, "ckpt"))
        safetensors.numpy.save_file(t, os.path.join(root, case, "st.safetensors"))


def time_tool(root, tool):
    for case, count in CASES.items():
        prefix = os.path.join(root, case, "ckpt")
        st = os.path.join(root, case, "st.safetensors")
        if tool == "savedmodel":
            import savedmodel

            report(case, "load_checkpoint (views, CRC checked)", timed(lambda: savedmodel.load_checkpoint(prefix)))
            report(
                case,
                "load_checkpoint(verify_checksums=False)",
                timed(lambda: savedmodel.load_checkpoint(prefix, verify_checksums=False)),
            )
            t = tensors(count)
            out = os.path.join(root, case, "out")
            report(case, "save_checkpoint", timed(lambda: savedmodel.save_checkpoint(t, out)))
        elif tool == "safetensors":
            import safetensors.numpy

            report(case, "safetensors.numpy.load_file", timed(lambda: safetensors.numpy.load_file(st)))
            t = tensors(count)
            out = os.path.join(root, case, "out.safetensors")
            report(case, "safetensors.numpy.save_file", timed(lambda: safetensors.numpy.save_file(t, out)))
        elif tool == "tf":
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            import tensorflow as tf

            def load():
                reader = tf.train.load_checkpoint(prefix)
                return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}

            report(case, "tf.train.load_checkpoint + get_tensor", timed(load))
        else:
            raise SystemExit(f"unknown tool {tool}")


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        time_tool(sys.argv[2], sys.argv[3])
