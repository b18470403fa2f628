"""Stack checks for a fresh machine: the traps recorded in the README, tested for real.

``hscode doctor`` runs them. Each check returns a :class:`Check`; none raises.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """Outcome of one check."""

    name: str
    ok: bool
    detail: str


# one child imports the stack and reports what it trains on: ``hscode doctor`` pays for
# TensorFlow's import once (check_imports and check_accelerators share it)
_PROBE = (
    "import json, pyarrow, great_expectations, pyspark.sql.connect.utils, tensorflow as tf, "
    "horovod.tensorflow.keras, horovod.tensorflow as hvd; "
    "print('PROBE=' + json.dumps({'cuda_build': tf.test.is_built_with_cuda(), "
    "'gpus': len(tf.config.list_physical_devices('GPU')), "
    "'horovod_nccl': bool(hvd.nccl_built())}))")


@dataclass(frozen=True)
class Probe:
    """What the stack's import child printed: the accelerator facts, or why it printed none."""

    info: dict[str, Any] | None
    error: str = ""


def probe_stack() -> Probe:
    """Import GX, pyspark's Arrow path, TensorFlow and Horovod in a child process that must
    print a marker line (with TensorFlow's build, the GPUs it sees, Horovod's NCCL).

    pyspark 4 without pyarrow calls ``sys.exit(0)`` on import, so a bare exit code is not
    proof; the marker is.
    """
    import json

    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          timeout=300, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE=")), "")
    if not line:
        return Probe(None, proc.stderr[-2000:] or "exited silently")
    return Probe(json.loads(line.removeprefix("PROBE=")))


def check_imports(probe: Probe | None = None) -> Check:
    """The stack imports in a child process (:func:`probe_stack`, run here if not given)."""
    probe = probe or probe_stack()
    return Check("imports", probe.info is not None, "ok" if probe.info is not None
                 else probe.error)


def check_java() -> Check:
    """Spark needs a JVM on PATH (or JAVA_HOME)."""
    java = shutil.which("java")
    return Check("java", java is not None, java or "no java on PATH: install OpenJDK 17")


def check_spark_classes() -> Check:
    """Whether Spark's drivers map the install step's class archive (they start ~5 s faster;
    without one they still run: informative, never a failure)."""
    from hscode.spark_classes import archive_path, current

    if current():
        return Check("spark classes", True, f"archive current: {archive_path()}")
    return Check("spark classes", True, "no current archive (Spark drivers start ~5 s "
                 f"slower): {sys.executable} -m hscode.spark_classes makes it")


def check_versions() -> Check:
    """Report the versions that matter for Horovod compatibility.

    TensorFlow is ``tensorflow-cpu`` in the venv and the CPU images, ``tensorflow`` (with
    its CUDA libraries) in the CUDA image: whichever is installed is reported.
    """
    tensorflow = next((d for d in ("tensorflow-cpu", "tensorflow") if _version(d)),
                      "tensorflow-cpu")
    names = [tensorflow, "keras", "horovod", "pyspark", "pyarrow", "numpy",
             "apache-airflow", "great-expectations"]
    found = {n: _version(n) or "missing" for n in names}
    return Check("versions", "missing" not in found.values(),
                 ", ".join(f"{k}={v}" for k, v in found.items()))


def _version(distribution: str) -> str | None:
    try:
        return md.version(distribution)
    except md.PackageNotFoundError:
        return None


def accelerator_check(info: dict[str, Any]) -> Check:
    """The verdict on what TensorFlow and Horovod report (see :func:`check_accelerators`).

    A CPU install is fine; GPUs that Horovod cannot reduce on with NCCL are not (their
    gradients would be averaged through host memory).
    """
    gpus = int(info["gpus"])
    ok = gpus == 0 or bool(info["horovod_nccl"])
    detail = (f"tensorflow {'CUDA' if info['cuda_build'] else 'CPU'} build, {gpus} GPU(s) "
              f"visible, horovod NCCL {'yes' if info['horovod_nccl'] else 'no'}")
    return Check("accelerators", ok, detail if ok else
                 detail + ": rebuild Horovod with HOROVOD_GPU_OPERATIONS=NCCL "
                          "(docker/Dockerfile.cuda)")


def check_accelerators(probe: Probe | None = None) -> Check:
    """What this install trains on: TensorFlow's build, the GPUs it sees, Horovod's NCCL
    (:func:`probe_stack`, run here if not given).

    In the CUDA image on a GPU host (``docker run --gpus all hscode-jobs-cuda hscode
    doctor``) this is the line that shows the GPUs are in use.
    """
    probe = probe or probe_stack()
    if probe.info is None:
        return Check("accelerators", False, probe.error)
    return accelerator_check(probe.info)


def _tiny_horovod_training(epochs: int = 3) -> dict[str, Any]:
    """Train a small tf.keras model data-parallel; runs inside each Horovod rank."""
    import horovod.tensorflow.keras as hvd
    import numpy as np
    import tensorflow as tf

    hvd.init()  # Horovod: one process per rank, Gloo on CPU
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    # Horovod: each rank trains on its own shard of the data
    x, y = x[hvd.rank()::hvd.size()], y[hvd.rank()::hvd.size()]
    tf.keras.utils.set_random_seed(1234 + hvd.rank())  # different inits: broadcast must align
    model = tf.keras.Sequential([tf.keras.layers.Dense(16, activation="relu", input_shape=(8,)),
                                 tf.keras.layers.Dense(2, activation="softmax")])
    # Horovod: scale the learning rate by the number of ranks, average gradients
    opt = hvd.DistributedOptimizer(tf.keras.optimizers.SGD(0.05 * hvd.size()))
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    hist = model.fit(x, y, batch_size=32, epochs=epochs, verbose=0,
                     callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0)])
    digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
    return {"rank": hvd.rank(), "size": hvd.size(), "loss": hist.history["loss"],
            "weights_sha256": digest}


def run_horovod_check(num_proc: int = 2) -> list[dict[str, Any]]:
    """Run :func:`_tiny_horovod_training` on ``num_proc`` Gloo ranks; one result per rank."""
    import horovod

    return horovod.run(_tiny_horovod_training, np=num_proc, use_gloo=True)


def check_horovod(num_proc: int = 2) -> Check:
    """Ranks must end with identical weights and a falling loss (averaging really works)."""
    try:
        results = run_horovod_check(num_proc)
    except Exception as exc:
        return Check("horovod", False, f"{type(exc).__name__}: {exc}")
    ranks = sorted(r["rank"] for r in results)
    same = len({r["weights_sha256"] for r in results}) == 1
    fell = all(r["loss"][-1] < r["loss"][0] for r in results)
    ok = ranks == list(range(num_proc)) and same and fell
    return Check("horovod", ok, f"ranks={ranks} identical_weights={same} loss_fell={fell}")


def run_all(horovod: bool = True) -> list[Check]:
    """All checks, the slow Horovod one optional."""
    probe = probe_stack()
    checks = [check_versions(), check_java(), check_imports(probe), check_spark_classes(),
              check_accelerators(probe)]
    if horovod:
        checks.append(check_horovod())
    return checks
