"""``hscode train``: one model on one date's prepared data, with its artifact."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hscode.catalog import Catalog
from hscode.config import Settings

ALL_MODELS = ("textcnn", "lstm", "dnn", "svm")


@dataclass(frozen=True)
class TrainOutcome:
    """Where the artifact is and what it scored."""

    model: str
    artifact: Path
    metrics: dict[str, Any]
    ranks: list[dict[str, Any]]


def train_job_for(settings: Settings, ds: str, model: str, out_dir: Path,
                  params: dict[str, Any] | None = None) -> Any:
    """The :class:`TrainJob` for ``model`` with the configured training settings."""
    from hscode.training.hvd_train import TrainJob
    from hscode.training.search import best_params

    t = settings.training
    catalog = Catalog.from_settings(settings)
    return TrainJob(
        model=model, prepared_dir=str(catalog.partition(catalog.prepared, ds)),
        out_dir=str(out_dir), ds=ds,
        params=params or ({} if model == "svm" else best_params(model, catalog.search).to_dict()),
        epochs=t.epochs, batch_size=t.batch_size, seed=t.seed, hash_buckets=t.hash_buckets,
        max_words=t.max_words, max_pieces=t.max_pieces, subwords=t.subwords,
        subwords_max=t.subwords_max, word_bigrams=t.word_bigrams, patience=t.patience,
        validation_fraction=t.validation_fraction, label_smoothing=t.label_smoothing,
        warmup_epochs=t.warmup_epochs,
        lineage={"trusted_assurance_levels": list(t.trusted_assurance_levels),
                 "assurance_weights": {str(k): v for k, v in t.assurance_weights.items()},
                 "min_rows_per_code": t.min_rows_per_code, "test_size": t.test_size,
                 "upsample": f"{t.upsample_target}<{t.upsample_threshold}"})


def train(settings: Settings, ds: str, model: str, num_proc: int | None = None,
          launcher: str = "local") -> TrainOutcome:
    """Train ``model`` (a network through Horovod, or the SVM baseline) and save it.

    Raises:
        ValueError: for an unknown model.
        RuntimeError: when the Horovod ranks did not end with identical weights.
    """
    from hscode.training.artifacts import new_version
    from hscode.training.finalise import finalise_artifact

    if model not in ALL_MODELS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(ALL_MODELS)}")
    catalog = Catalog.from_settings(settings)
    out_dir = catalog.models / model / new_version()
    if model == "svm":
        return _train_baseline(settings, ds, out_dir)
    from hscode.training.hvd_train import launch

    job = train_job_for(settings, ds, model, out_dir)
    ranks = launch(job, num_proc or settings.training.num_proc, launcher)
    if len({r["weights_sha256"] for r in ranks}) != 1:
        raise RuntimeError(f"Horovod ranks diverged: {[r['weights_sha256'] for r in ranks]}")
    finalise_artifact(out_dir, Path(job.prepared_dir))
    metrics = json.loads((out_dir / "metrics.json").read_text())
    return TrainOutcome(model=model, artifact=out_dir, metrics=metrics, ranks=ranks)


def _train_baseline(settings: Settings, ds: str, out_dir: Path) -> TrainOutcome:
    from hscode.training.artifacts import snapshot_id, write_metadata
    from hscode.training.baseline import TOL, C, fit_predict, save_baseline
    from hscode.training.data import load_prepared
    from hscode.training.finalise import finalise_artifact
    from hscode.training.metrics import classification_metrics

    catalog = Catalog.from_settings(settings)
    prepared = catalog.partition(catalog.prepared, ds)
    data = load_prepared(prepared)
    t = settings.training
    targets = None
    if t.upsample_method == "smote":
        from hscode.training.prepare import minority_targets

        targets = minority_targets(data.train["hs6"].value_counts().to_dict(),
                                   t.upsample_threshold, t.upsample_target)
    model, pred, top3 = fit_predict(data.train, data.test, t.seed, targets)
    metrics = classification_metrics(list(data.test["hs6"]), pred, top3)
    save_baseline(model, out_dir)
    write_metadata(out_dir, labels=[str(c) for c in model.classes_],
                   params={"model": "svm", "features": "tfidf word1-2 + char_wb2-5", "C": C,
                           "tol": TOL, "multiclass": "one-vs-rest",
                           "upsample_method": t.upsample_method},
                   metrics=metrics, history={},
                   lineage={"ds": ds, "prepared_dir": str(prepared),
                            "data_snapshot": snapshot_id(ds, data.train, data.test)},
                   train_texts=data.train["text"])
    finalise_artifact(out_dir, prepared)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    return TrainOutcome(model="svm", artifact=out_dir, metrics=metrics, ranks=[])
