"""Training on a small slice of the real declarations: Horovod ranks, artifacts, baseline."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from hscode.training.hvd_train import TrainJob, launch
from hscode.training.search import best_params, run_search
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.integration
DS = "2026-11-01"


def make_prepared(root: Path, codes: int = 8, per_code: int = 150) -> Path:
    """Prepared data of the ``codes`` most frequent codes (up to ``per_code`` rows each),
    split 80/20 by a hash of the text, written like the prepare job does."""
    raw = pd.read_csv(SHARED_DATA / "declarations.csv", dtype=str, keep_default_na=False)
    raw["hs6"] = raw["hs10"].str[:6]
    raw["text"] = (raw["goods_description"].str.lower()
                   .str.replace(r"[^a-z ]+", " ", regex=True).str.split().str.join(" "))
    raw = raw[raw["text"].str.len() > 2]
    top = raw["hs6"].value_counts().index[:codes]
    df = raw[raw["hs6"].isin(top)].groupby("hs6").head(per_code).reset_index(drop=True)
    df["product_id"] = [f"P{i:05d}" for i in range(len(df))]
    is_test = df["text"].map(lambda t: hashlib.sha256(t.encode()).digest()[0] < 51)
    for name, part in (("train", df[~is_test]), ("test", df[is_test])):
        (root / f"split={name}").mkdir(parents=True)
        part[["product_id", "text", "hs6"]].to_parquet(root / f"split={name}" / "p.parquet")
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """8 frequent codes, up to 150 rows each, grouped 80/20 split by text hash."""
    return make_prepared(tmp_path_factory.mktemp("prep") / f"ds={DS}")


def _job(prepared: Path, out: Path, model: str = "textcnn", epochs: int = 4) -> TrainJob:
    return TrainJob(model=model, prepared_dir=str(prepared), out_dir=str(out), ds=DS,
                    params={"embedding_dim": 16, "filters": 16, "layers": 1,
                            "initial_neurons": 32, "dropout": 0.2, "learning_rate": 3e-3},
                    epochs=epochs, batch_size=32, sequence_length=48, patience=5,
                    validation_fraction=0.1, max_tokens=5000)


def test_horovod_two_ranks_take_part_and_end_identical(prepared: Path, tmp_path: Path) -> None:
    job = _job(prepared, tmp_path / "model")
    code = ("import json, sys\n"
            "from hscode.training.hvd_train import TrainJob, launch\n"
            "if __name__ == '__main__':\n"
            "    res = launch(TrainJob.from_json(sys.argv[1]), num_proc=2)\n"
            "    print('RESULT=' + json.dumps(res))\n")
    proc = subprocess.run([sys.executable, "-c", code, job.to_json()], capture_output=True,
                          text=True, timeout=900, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT=")), None)
    assert line, proc.stderr[-4000:]
    ranks = sorted(json.loads(line[7:]), key=lambda r: r["rank"])
    assert [r["rank"] for r in ranks] == [0, 1] and {r["size"] for r in ranks} == {2}
    # each rank trained on its own half of the data, and gradients were averaged
    assert all(r["shard_rows"] > 0 for r in ranks)
    assert abs(ranks[0]["shard_rows"] - ranks[1]["shard_rows"]) <= 1
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    for r in ranks:
        assert r["history"]["loss"][-1] < r["history"]["loss"][0]
    out = Path(job.out_dir)
    for name in ("model.keras", "labels.json", "params.json", "metrics.json", "history.json",
                 "lineage.json", "training_log.csv"):
        assert (out / name).is_file(), name
    lineage = json.loads((out / "lineage.json").read_text())
    assert lineage["ranks"] == 2 and lineage["data_snapshot"].startswith(DS + ":")
    assert lineage["code_version"]["package"]
    assert json.loads((out / "metrics.json").read_text())["hs6_accuracy"] > 0.5


@pytest.mark.parametrize("model", ["dnn", "lstm"])
def test_one_process_without_launcher_and_saved_model_scores_raw_text(
    prepared: Path, tmp_path: Path, model: str
) -> None:
    import numpy as np
    import tensorflow as tf

    job = _job(prepared, tmp_path / "m1", model=model, epochs=3)
    (result,) = launch(job, num_proc=1)
    assert result["size"] == 1 and result["metrics"]["rows"] > 0
    model = tf.keras.models.load_model(Path(job.out_dir) / "model.keras", safe_mode=True)
    labels = json.loads((Path(job.out_dir) / "labels.json").read_text())
    probs = model.predict(tf.constant([["plastic cups"], ["used car"]]), verbose=0)
    assert probs.shape == (2, len(labels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
    # the saved model reproduces the in-training evaluation on the test split
    test = pd.read_parquet(Path(prepared) / "split=test")
    pred = [labels[i] for i in model.predict(test[["text"]].to_numpy(), verbose=0).argmax(1)]
    accuracy = float(np.mean(np.array(pred) == test["hs6"].to_numpy()))
    assert accuracy == pytest.approx(result["metrics"]["hs6_accuracy"], abs=1e-6)


def test_search_saves_best_parameters_and_training_reuses_them(prepared: Path, tmp_path: Path
                                                               ) -> None:
    out = tmp_path / "search" / "dnn.json"
    template = replace(_job(prepared, tmp_path / "unused", model="dnn", epochs=1),
                       batch_size=64, seed=1)
    result = run_search(template, out, trials=2, max_layers=2)
    assert not (tmp_path / "unused").exists()  # trials save no artifact
    assert len(result["trials"]) == 2
    saved = json.loads(out.read_text())
    p = best_params("dnn", out.parent)
    assert p.to_dict() == saved["params"]
    assert 0.1 <= p.dropout <= 0.75 and 11 <= p.embedding_dim <= 87 and 1 <= p.layers <= 2


def test_svm_baseline_on_the_same_split(prepared: Path) -> None:
    from hscode.training.baseline import fit_predict
    from hscode.training.data import load_prepared
    from hscode.training.metrics import classification_metrics

    data = load_prepared(prepared)
    _, pred, top3 = fit_predict(data.train, data.test)
    m = classification_metrics(list(data.test["hs6"]), pred, top3)
    assert m["hs6_accuracy"] > 0.6 and m["top3_accuracy"] >= m["hs6_accuracy"]


def test_horovod_spark_run_hosts_the_same_training(spark, prepared: Path, tmp_path: Path  # noqa: ANN001
                                                   ) -> None:
    job = _job(prepared, tmp_path / "spark-model", epochs=2)
    ranks = launch(job, num_proc=2, launcher="spark")
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    assert len({r["weights_sha256"] for r in ranks}) == 1
    assert (Path(job.out_dir) / "model.keras").is_file()


def test_train_entry_point_writes_versioned_artifacts(prepared: Path, tmp_path: Path) -> None:
    import shutil

    from hscode.catalog import Catalog
    from hscode.training.train import train
    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    catalog = Catalog.from_settings(settings)
    shutil.copytree(prepared, catalog.partition(catalog.prepared, DS))
    svm = train(settings, DS, "svm")
    assert (svm.artifact / "model.skops").is_file()
    assert svm.artifact.parent == catalog.models / "svm"
    assert json.loads((svm.artifact / "lineage.json").read_text())["data_snapshot"].startswith(DS)
    # the saved baseline loads through the shared predictor and reproduces its test metrics
    import numpy as np

    from hscode.predictor import load_predictor
    from hscode.training.data import load_prepared

    test = load_prepared(prepared).test
    predictor = load_predictor(svm.artifact)
    probs = predictor.predict_proba(list(test["text"]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    accuracy = float(np.mean(np.array(predictor.predict(list(test["text"]))) == test["hs6"]))
    assert accuracy == pytest.approx(svm.metrics["hs6_accuracy"])
    with pytest.raises(FileNotFoundError):
        load_predictor(prepared)
    with pytest.raises(ValueError, match="unknown model"):
        train(settings, DS, "bert")


def test_select_cross_validates_promotes_and_reports(prepared: Path, tmp_path: Path) -> None:
    import shutil

    from hscode.catalog import Catalog
    from hscode.selection.registry import Registry
    from hscode.selection.select import select_models
    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    settings = settings.model_copy(update={
        "selection": settings.selection.model_copy(update={"epochs": 1}),
        "training": settings.training.model_copy(update={
            "epochs": 2, "sequence_length": 48, "max_tokens": 5000, "num_proc": 1})})
    catalog = Catalog.from_settings(settings)
    shutil.copytree(prepared, catalog.partition(catalog.prepared, DS))
    summary = select_models(settings, DS, folds=3, models=["dnn", "textcnn"])
    assert summary["champion"] in {"dnn", "textcnn"} and summary["promoted"]
    folds = list((catalog.selection_dir(DS) / "k3" / "folds").glob("*/fold_*.json"))
    assert len(folds) == 6
    html = Path(summary["report"]).read_text()
    assert "data:image/png;base64" in html and "Per-code tests" in html
    assert Registry(catalog.registry).alias("champion")["model"] == summary["champion"]
    # resume: finished folds are reused, not retrained
    stamps = {f: f.stat().st_mtime_ns for f in folds}
    again = select_models(settings, DS, folds=3, models=["dnn", "textcnn"])
    assert {f: f.stat().st_mtime_ns for f in folds} == stamps
    assert again["registry_version"] == summary["registry_version"]


def test_svm_with_smote_synthesises_minority_rows(prepared: Path) -> None:
    from hscode.training.baseline import build_baseline
    from hscode.training.data import load_prepared
    from hscode.training.prepare import minority_targets

    data = load_prepared(prepared)
    counts = data.train["hs6"].value_counts().to_dict()
    targets = minority_targets(counts, 0.2, "mean")
    assert targets
    pipe = build_baseline(smote_targets=targets)
    features = pipe.named_steps["tfidf"].fit_transform(data.train["text"])
    _, y = pipe.named_steps["smote"].fit_resample(features, data.train["hs6"])
    after = y.value_counts().to_dict()
    for code, n in counts.items():
        assert after[code] == targets.get(code, n)
    pipe.fit(data.train["text"], data.train["hs6"])
    assert pipe.score(data.test["text"], data.test["hs6"]) > 0.5
