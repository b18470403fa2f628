"""Data-parallel training of one network with Horovod (Gloo on CPU, NCCL on GPU).

The same :func:`train_worker` runs

* in-process with one rank and no launcher (:func:`launch` with ``num_proc=1``),
* on ``N`` local ranks through ``horovod.run`` (:func:`launch`),
* on ``N`` Spark tasks through ``horovod.spark.run`` (``launcher="spark"``), and
* under ``horovodrun -np N python -m hscode.training.hvd_train JOB.json``.

Every rank reads the prepared data, builds the same vocabulary, and trains on its own shard;
gradients are averaged by ``hvd.DistributedOptimizer`` and initial weights broadcast from
rank 0. Only rank 0 writes checkpoints, logs and the model artifact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainJob:
    """Everything a rank needs; plain data so it pickles to any launcher."""

    model: str
    prepared_dir: str
    out_dir: str
    params: dict[str, Any]
    ds: str = ""
    epochs: int = 10
    batch_size: int = 128  # global: split across the ranks
    seed: int = 42
    hash_buckets: int = 2**18
    max_words: int = 32
    max_pieces: int = 28
    subwords: int = 3  # smallest character n-gram of each word; 0 = no n-grams
    subwords_max: int = 5  # largest character n-gram
    word_bigrams: bool = True
    patience: int = 2
    validation_fraction: float = 0.05
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    save_artifact: bool = True  # False for cross-validation folds
    return_predictions: bool = False  # rank 0 returns test-split predictions
    lineage: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainJob:
        return cls(**json.loads(text))


def _weights_digest(model: Any) -> str:
    return hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()


def row_weights(frame: Any) -> Any:
    """Per-row training weights: the prepared ``weight`` column (assurance), else 1."""
    import numpy as np

    if "weight" in frame.columns:
        return frame["weight"].to_numpy(dtype="float32")
    return np.ones(len(frame), dtype="float32")


def _share_cores(tf: Any, threads: int) -> None:
    """Give this rank ``threads`` TensorFlow threads per pool.

    TensorFlow fixes its pools when its runtime starts: a rank run in a process that has
    already used TensorFlow (one rank in the caller's process, after scoring or another
    training) keeps the pools it has, with a warning, instead of failing.
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:  # "cannot be modified after initialization"
        log.warning("TensorFlow already running in this process; its thread pools stay "
                    "(%s threads wanted): %s", threads, exc)


def train_worker(job: TrainJob) -> dict[str, Any]:
    """Train on this rank; rank 0 evaluates on the test split and saves the artifact."""
    import horovod.tensorflow.keras as hvd
    import numpy as np
    import tensorflow as tf

    from hscode.calibration import log_probabilities
    from hscode.models import ModelParams, build_model
    from hscode.models.text import HashedSubwords, present_words
    from hscode.training.artifacts import snapshot_id, write_metadata
    from hscode.training.data import load_prepared, validation_mask
    from hscode.training.metrics import classification_metrics, top_k_codes
    from hscode.training.optim import LazyAdam, WarmupCosine

    hvd.init()  # Horovod: one process per rank
    rank, size = hvd.rank(), hvd.size()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:  # Horovod: pin one GPU per local rank
        tf.config.experimental.set_memory_growth(gpus[hvd.local_rank()], True)
        tf.config.set_visible_devices(gpus[hvd.local_rank()], "GPU")
    else:  # Horovod: CPU ranks share the cores instead of each taking them all
        _share_cores(tf, max(1, (os.cpu_count() or 1) // hvd.local_size()))
    tf.keras.utils.set_random_seed(job.seed)

    data = load_prepared(Path(job.prepared_dir))
    index = {c: i for i, c in enumerate(data.labels)}
    n_classes = len(data.labels)
    held_out = validation_mask(data.train["text"], job.validation_fraction, job.seed)
    fit_rows, val_rows = data.train[~held_out], data.train[held_out]
    # hashed word pieces: nothing is fitted, so every rank tokenises identically
    pieces = HashedSubwords(job.hash_buckets, job.max_words, job.max_pieces, job.subwords,
                            job.subwords_max, job.word_bigrams, name="pieces")

    def encode(texts: Any) -> np.ndarray:
        texts = np.asarray(texts, dtype=str)
        chunks = [pieces(tf.constant(texts[i:i + 8192])).numpy().astype("int32")
                  for i in range(0, len(texts), 8192)]
        return (np.concatenate(chunks) if chunks
                else np.zeros((0, job.max_words, job.max_pieces), "int32"))

    def codes(frame: Any) -> np.ndarray:
        return frame["hs6"].map(index).to_numpy(dtype="int64")  # train codes only

    def shortest_first(x: np.ndarray) -> np.ndarray:
        """Row order by word count: the model cuts a batch to its longest text, so batches
        of similar length evaluate faster (and each row's scores are the same)."""
        return np.argsort((x != 0).any(axis=2).sum(axis=1), kind="stable")

    x_fit, y_fit, w_fit = encode(fit_rows["text"]), codes(fit_rows), row_weights(fit_rows)
    x_val, y_val = encode(val_rows["text"]), codes(val_rows)
    # Horovod: the global batch is fixed and split across the ranks (each rank its own shard,
    # equal steps per rank keep allreduce aligned), so 1 and N ranks follow the same
    # schedule and the learning rate is not scaled by the rank count
    per_rank = max(1, math.ceil(job.batch_size / size))
    x_shard, y_shard, w_shard = x_fit[rank::size], y_fit[rank::size], w_fit[rank::size]
    steps = max(1, math.ceil(len(x_fit) / (per_rank * size)))

    def one_hot(x: tf.Tensor, y: tf.Tensor, *w: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return (x, tf.one_hot(y, n_classes), *w)  # label smoothing needs one-hot targets

    def by_length(*window: tf.Tensor) -> tf.data.Dataset:
        """A shuffled window of batches, re-cut into batches of texts of similar length (the
        model trims each batch to its longest text, so short batches cost little)."""
        order = tf.argsort(tf.reduce_sum(tf.cast(present_words(window[0]), tf.int32), axis=1),
                           stable=True)
        cut = tf.data.Dataset.from_tensor_slices(tuple(tf.gather(t, order) for t in window))
        return cut.batch(per_rank)

    train_ds = (tf.data.Dataset.from_tensor_slices((x_shard, y_shard, w_shard))
                .shuffle(len(x_shard), seed=job.seed + rank, reshuffle_each_iteration=True)
                .repeat())
    params = ModelParams.from_dict(job.params)
    if params.length_window > 1:
        train_ds = (train_ds.batch(per_rank * params.length_window).flat_map(by_length)
                    .shuffle(params.length_window, seed=job.seed + rank))
    else:
        train_ds = train_ds.batch(per_rank)
    train_ds = train_ds.map(one_hot).prefetch(tf.data.AUTOTUNE)
    val_order = shortest_first(x_val)
    val_ds = (tf.data.Dataset.from_tensor_slices((x_val[val_order], y_val[val_order]))
              .batch(1024).map(one_hot) if len(x_val) else None)

    model = build_model(job.model, job.hash_buckets, job.max_pieces, n_classes, params)
    schedule = WarmupCosine(params.learning_rate, warmup_steps=int(job.warmup_epochs * steps),
                            total_steps=job.epochs * steps)
    # Horovod: average gradients across ranks
    opt = hvd.DistributedOptimizer(LazyAdam(schedule))
    model.compile(optimizer=opt, metrics=["accuracy"],
                  loss=tf.keras.losses.CategoricalCrossentropy(
                      label_smoothing=job.label_smoothing))
    out_dir = Path(job.out_dir)
    callbacks: list[Any] = [
        hvd.callbacks.BroadcastGlobalVariablesCallback(0),  # Horovod: same start everywhere
        hvd.callbacks.MetricAverageCallback(),  # Horovod: average metrics across ranks
    ]
    if val_ds is not None:  # stop on what matters: accuracy, not a loss that over-confidence
        callbacks.append(tf.keras.callbacks.EarlyStopping(  # on conflicting labels inflates
            monitor="val_accuracy", mode="max", patience=job.patience,
            restore_best_weights=True))
    if rank == 0 and job.save_artifact:  # Horovod: only rank 0 writes checkpoints and logs
        out_dir.mkdir(parents=True, exist_ok=True)
        callbacks.append(tf.keras.callbacks.ModelCheckpoint(  # the latest epoch only: with
            str(out_dir / "checkpoints" / "last.weights.h5"),  # Adam's state, 330 MB each
            save_weights_only=True))
        callbacks.append(tf.keras.callbacks.CSVLogger(str(out_dir / "training_log.csv")))
    hist = model.fit(train_ds, steps_per_epoch=steps, epochs=job.epochs,
                     validation_data=val_ds, callbacks=callbacks, verbose=2 if rank == 0 else 0)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    result: dict[str, Any] = {"rank": rank, "size": size, "history": history,
                              "weights_sha256": _weights_digest(model),
                              "shard_rows": int(len(x_shard))}
    if rank == 0:
        x_test = encode(data.test["text"])  # may hold codes unknown to the model
        probs = np.zeros((len(x_test), n_classes), "float32")
        if len(x_test):
            order = shortest_first(x_test)
            probs[order] = model.predict(x_test[order], batch_size=1024, verbose=0)
        pred = [data.labels[i] for i in probs.argmax(axis=1)]
        metrics = classification_metrics(list(data.test["hs6"]), pred,
                                         top_k_codes(probs, data.labels))
        metrics.update(ranks=size, epochs_run=len(history.get("loss", [])))
        result["metrics"] = metrics
        if job.return_predictions:
            result["truth"], result["predictions"] = list(data.test["hs6"]), pred
            result["labels"], result["scores"] = data.labels, log_probabilities(probs)
        if not job.save_artifact:
            return result
        # the saved model takes raw model text: hashed pieces + network
        text_in = tf.keras.Input(shape=(1,), dtype=tf.string, name="text")
        text = tf.squeeze(text_in, axis=1)
        # a copy without the optimizer: Adam's two moments per embedding row were 2/3 of
        # model.keras (327 MB -> 110 MB for the Text-CNN), read again at every load
        network = tf.keras.models.clone_model(model)
        network.set_weights(model.get_weights())
        inference = tf.keras.Model(text_in, network(pieces(text)),
                                   name=f"{job.model}_inference")
        inference.save(out_dir / "model.keras")
        write_metadata(out_dir, labels=data.labels,
                       params={"model": job.model, **params.to_dict(),
                               **{k: getattr(job, k) for k in (
                                   "epochs", "batch_size", "seed", "hash_buckets",
                                   "max_words", "max_pieces", "subwords", "subwords_max",
                                   "word_bigrams", "patience", "validation_fraction",
                                   "label_smoothing", "warmup_epochs")}},
                       metrics=metrics, history=history,
                       lineage={**job.lineage, "ds": job.ds, "ranks": size,
                                "data_snapshot": snapshot_id(job.ds, data.train, data.test),
                                "prepared_dir": job.prepared_dir},
                       train_texts=data.train["text"])
    return result


def launch(job: TrainJob, num_proc: int = 1, launcher: str = "local") -> list[dict[str, Any]]:
    """Run :func:`train_worker` on ``num_proc`` ranks; one result per rank.

    Args:
        job: The training job.
        num_proc: Number of ranks; 1 runs in this process without a launcher.
        launcher: ``local`` (``horovod.run`` with Gloo) or ``spark`` (``horovod.spark.run``
            on the active SparkSession's executors).
    """
    if num_proc == 1 and launcher == "local":
        return [train_worker(job)]
    if launcher == "spark":
        import horovod.spark

        return horovod.spark.run(train_worker, args=(job,), num_proc=num_proc,
                                 use_gloo=True, stdout=sys.stdout, stderr=sys.stderr)
    import horovod

    return horovod.run(train_worker, args=(job,), np=num_proc, use_gloo=True)


def main(argv: list[str] | None = None) -> int:
    """``horovodrun -np N python -m hscode.training.hvd_train JOB.json``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m hscode.training.hvd_train JOB.json", file=sys.stderr)
        return 2
    result = train_worker(TrainJob.from_json(Path(args[0]).read_text()))
    print("HVD_RESULT=" + json.dumps({k: v for k, v in result.items() if k != "history"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
