"""Training on a prepared set the real jobs made (8 frequent codes): Horovod ranks,
artifacts, the search command, the SVM baseline with SMOTE, selection and promotion."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from hscode.catalog import Catalog
from hscode.config import Settings
from hscode.models import default_params
from hscode.training.hvd_train import TrainJob, launch
from hscode.training.search import best_params
from tests.pipeline import TRAIN_DS as DS
from tests.pipeline import job_settings

pytestmark = pytest.mark.integration
SMALL = {"HSCODE_TRAINING__HASH_BUCKETS": "16384", "HSCODE_TRAINING__MAX_WORDS": "16",
         "HSCODE_TRAINING__BATCH_SIZE": "32", "HSCODE_SELECTION__EPOCHS": "1"}


@pytest.fixture(scope="module")
def prepared(small_prepared: dict) -> Path:
    """The session's prepared partition (read only)."""
    return small_prepared["prepared"]


def _home(prepared: Path, home: Path, **env: str) -> Settings:
    """Settings on ``home`` holding a copy of the prepared partition of run date DS."""
    settings = job_settings(home, **{**SMALL, **env})
    catalog = Catalog.from_settings(settings)
    shutil.copytree(prepared, catalog.partition(catalog.prepared, DS))
    return settings


def _job(prepared: Path, out: Path, model: str = "textcnn", epochs: int = 4) -> TrainJob:
    return TrainJob(model=model, prepared_dir=str(prepared), out_dir=str(out), ds=DS,
                    params={"embedding_dim": 16, "filters": 16, "layers": 1,
                            "initial_neurons": 32, "dropout": 0.2, "learning_rate": 0.1},
                    epochs=epochs, batch_size=32, patience=5, validation_fraction=0.1,
                    hash_buckets=2**14, max_words=16, max_pieces=16)


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
    if model == "lstm":  # as by default: batches of similar length, cut from windows
        job = replace(job, params={**job.params, "length_window": 4})
    tf.constant(1.0) + 1.0  # TensorFlow already running here, its thread pools fixed
    (result,) = launch(job, num_proc=1)
    assert result["size"] == 1 and result["metrics"]["rows"] > 0
    assert result["metrics"]["hs6_accuracy"] > 0.5  # it learned (rows kept with their codes)
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
    # the artifact is for inference: no optimizer state; one rolling checkpoint
    import zipfile

    import h5py

    with zipfile.ZipFile(Path(job.out_dir) / "model.keras") as archive:
        archive.extract("model.weights.h5", tmp_path)
    with h5py.File(tmp_path / "model.weights.h5") as weights:
        assert "optimizer" not in weights and "layers" in weights
    checkpoints = sorted(p.name for p in (Path(job.out_dir) / "checkpoints").iterdir())
    assert checkpoints == ["last.weights.h5"]


def test_search_command_saves_best_parameters_and_training_reuses_them(
        prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hscode.cli import app
    from hscode.training.train import train_job_for
    from tests.pipeline import job_env

    settings = _home(prepared, tmp_path, HSCODE_TRAINING__SEARCH_EPOCHS="1")
    for name, value in {**job_env(settings), **SMALL,
                        "HSCODE_TRAINING__SEARCH_EPOCHS": "1"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["search", "--model", "dnn", "--ds", DS, "--trials", "2",
                                      "--max-layers", "2"])
    assert result.exit_code == 0, result.output
    catalog = Catalog.from_settings(settings)
    saved = json.loads((catalog.search / "dnn.json").read_text())
    assert "validation accuracy: incumbent" in result.output and "saved:" in result.output
    assert len(saved["trials"]) == 2
    # the first trial is the incumbent (no search saved yet: the defaults); the saved best is
    # never below it on the search's own measure
    defaults = default_params("dnn")
    assert saved["trials"][0]["params"] == {
        "learning_rate": defaults.learning_rate, "dropout": defaults.dropout,
        "piece_dropout": defaults.piece_dropout, "embedding_dim": defaults.embedding_dim,
        "layers": defaults.layers, "initial_neurons": defaults.initial_neurons,
        "neuron_shrink": defaults.neuron_shrink}
    assert saved["incumbent_value"] == saved["trials"][0]["value"] <= saved["best_trial_value"]
    kept = saved["trials"][saved["kept_trial"]]
    assert saved["value"] == kept["value"]
    assert saved["min_gain"] == settings.training.search_min_gain
    assert all(t["seconds"] > 0 and t["epochs_run"] == 1 for t in saved["trials"])
    assert not (catalog.search / "unused").exists()  # trials save no artifact
    p = best_params("dnn", catalog.search)
    assert p.to_dict() == saved["params"]
    assert 0.1 <= p.dropout <= 0.75 and 11 <= p.embedding_dim <= 128 and 0 <= p.layers <= 2
    # the next training of the model starts from the saved parameters, others do not
    assert train_job_for(settings, DS, "dnn", tmp_path / "x").params == saved["params"]
    assert train_job_for(settings, DS, "lstm", tmp_path / "y").params != saved["params"]


def test_svm_baseline_on_the_same_split(prepared: Path) -> None:
    from hscode.training.baseline import fit_predict
    from hscode.training.data import load_prepared
    from hscode.training.metrics import classification_metrics

    data = load_prepared(prepared)
    _, pred, top3 = fit_predict(data.train, data.test)
    m = classification_metrics(list(data.test["hs6"]), pred, top3)
    assert m["hs6_accuracy"] > 0.6 and m["top3_accuracy"] >= m["hs6_accuracy"]


def test_train_entry_point_svm_with_smote_writes_versioned_artifacts(
        spark, small_prepared: dict, tmp_path: Path) -> None:
    """`upsample_method: smote`: prepare writes no duplicates, SMOTE synthesises at fit."""
    import numpy as np

    from hscode.predictor import load_predictor
    from hscode.training.data import load_prepared
    from hscode.training.prepare import minority_targets
    from hscode.training.train import train
    from jobs import prepare_training
    from tests.pipeline import args

    # 8 codes of about 12 % each: codes under a 20 % share are raised to the mean
    settings = job_settings(tmp_path, HSCODE_TRAINING__UPSAMPLE_METHOD="smote",
                            HSCODE_TRAINING__TEST_SIZE="0.2",
                            HSCODE_TRAINING__UPSAMPLE_THRESHOLD="0.2",
                            HSCODE_TRAINING__UPSAMPLE_TARGET="mean")
    catalog = Catalog.from_settings(settings)
    source = Catalog.from_settings(small_prepared["settings"])
    for dataset in ("training_set", "scoring_set"):
        shutil.copytree(source.partition(getattr(source, dataset), DS),
                        catalog.partition(getattr(catalog, dataset), DS))
    summary = prepare_training.run(args(DS), settings)
    assert summary["train_rows_upsampled"] == summary["train_rows"]  # no duplicated rows
    data = load_prepared(catalog.partition(catalog.prepared, DS))
    t = settings.training
    assert minority_targets(data.train["hs6"].value_counts().to_dict(), t.upsample_threshold,
                            t.upsample_target)  # SMOTE has codes to raise
    svm = train(settings, DS, "svm")
    assert (svm.artifact / "model.npz").is_file()
    assert svm.artifact.parent == catalog.models / "svm"
    assert json.loads((svm.artifact / "params.json").read_text())["upsample_method"] == "smote"
    assert json.loads((svm.artifact / "lineage.json").read_text())["data_snapshot"].startswith(DS)
    # the saved baseline loads through the shared predictor and reproduces its test metrics
    test = data.test
    predictor = load_predictor(svm.artifact)
    probs = predictor.predict_proba(list(test["text"]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    accuracy = float(np.mean(np.array(predictor.predict(list(test["text"]))) == test["hs6"]))
    assert accuracy == pytest.approx(svm.metrics["hs6_accuracy"]) and accuracy > 0.6
    with pytest.raises(FileNotFoundError):
        load_predictor(tmp_path)
    with pytest.raises(ValueError, match="unknown model"):
        train(settings, DS, "bert")


@pytest.mark.timeout(1200)
def test_select_on_spark_every_candidate_competes_and_folds_are_keyed_by_data(
        spark, prepared: Path, tmp_path: Path) -> None:
    import numpy as np

    from hscode.selection.registry import Registry
    from hscode.selection.select import cross_validate, select_models

    settings = _home(prepared, tmp_path, HSCODE_TRAINING__EPOCHS="2")
    catalog = Catalog.from_settings(settings)
    # folds as Spark tasks on the session's local[2] SparkSession
    summary = select_models(settings, DS, folds=3, models=["dnn", "svm"], runner="spark")
    assert set(summary["candidates"]) == {"dnn", "svm", "vote", "routed"}
    fbeta = summary["cv_mean_fbeta"]
    best = [m for m, v in fbeta.items() if v >= max(fbeta.values()) - 1e-12]
    assert summary["champion"] in best  # best CV F-beta, ensembles too ...
    if any(m in ("dnn", "svm") for m in best):  # ... and a tie goes to a single model
        assert summary["champion"] in ("dnn", "svm")
    assert summary["promoted"] and summary["registry_version"] == 1  # empty registry
    assert Registry(catalog.registry).alias("champion")["model"] == summary["champion"]
    table = {r["model"]: r for r in summary["candidate_table"]}
    # every candidate with an artifact (the champion and what it needs are trained when
    # missing; the retrain DAG trains all of them) is measured on the test split, calibrated
    measured = [r for r in table.values() if r["hs6_accuracy"] == r["hs6_accuracy"]]  # not NaN
    assert summary["champion"] in {r["model"] for r in measured}
    for row in measured:
        assert 0 < row["hs6_accuracy"] <= 1 and row["ece"] is not None
    folds = list((catalog.selection_dir(DS) / "cv").glob("k3-*/folds/*/fold_*.json"))
    assert len(folds) == 6 and all(f.with_suffix(".npz").is_file() for f in folds)
    html = Path(summary["report"]).read_text()
    assert "data:image/png;base64" in html and "Per-code tests" in html
    assert "Calibration: reliability" in html and summary["champion_reason"] in html
    # resume: finished folds are reused, not retrained
    stamps = {f: f.stat().st_mtime_ns for f in folds}
    again = select_models(settings, DS, folds=3, models=["dnn", "svm"], runner="spark")
    assert {f: f.stat().st_mtime_ns for f in folds} == stamps
    assert again["registry_version"] == 1
    # a new snapshot for the same date: its folds are trained afresh, the old ones untouched
    train_dir = catalog.partition(catalog.prepared, DS) / "split=train"
    rows = pd.read_parquet(train_dir)
    shutil.rmtree(train_dir)
    train_dir.mkdir()
    rows.iloc[np.arange(len(rows)) % 10 != 0].to_parquet(train_dir / "part.parquet")
    fresh = cross_validate(settings, DS, folds=3, models=["svm"], runner="local")
    assert fresh["cv_dir"] != summary["cv_dir"]
    assert len(list(Path(fresh["cv_dir"]).glob("folds/svm-*/fold_*.json"))) == 3
    assert {f: f.stat().st_mtime_ns for f in folds} == stamps


@pytest.mark.timeout(1200)
def test_promotion_gate_refuses_a_worse_challenger_and_promotes_a_better_one(
        prepared: Path, tmp_path: Path) -> None:
    from hscode.selection.registry import Registry
    from hscode.selection.select import cross_validate, promote
    from hscode.training.data import load_prepared
    from hscode.training.train import train

    settings = _home(prepared, tmp_path, HSCODE_TRAINING__EPOCHS="2",
                     HSCODE_SELECTION__ENSEMBLES="[]")
    catalog = Catalog.from_settings(settings)
    registry = Registry(catalog.registry)
    cv = cross_validate(settings, DS, folds=2, models=["dnn"])
    first = promote(settings, DS)  # trains the CV champion's artifact
    assert cv["champion"] == "dnn" and first["promoted"] and first["registry_version"] == 1
    # a worse challenger (trained at a learning rate that learns nothing) is registered but
    # refused: the champion alias stays
    params = {**best_params("dnn", catalog.search).to_dict(), "learning_rate": 1e-7}
    catalog.search.mkdir(parents=True, exist_ok=True)
    (catalog.search / "dnn.json").write_text(json.dumps({"params": params}))
    worse = train(settings.model_copy(update={"training": settings.training.model_copy(
        update={"epochs": 1})}), DS, "dnn")
    refused = promote(settings, DS)
    assert refused["artifact"] == str(worse.artifact)
    assert not refused["promoted"] and refused["registry_version"] == 2
    decision = refused["decision"]
    assert decision["champion_only_right"] > decision["challenger_only_right"]
    # decided on every calibration row (neither model trained on any), never on the test
    # split the reported figures come from
    calibration = load_prepared(prepared).calibration
    assert decision["split"] == "calibration" and decision["rows_left_out"] == 0
    assert decision["rows"] == len(calibration)
    assert registry.alias("champion")["version"] == 1
    # a better one (default parameters, more epochs) takes the alias
    (catalog.search / "dnn.json").unlink()
    better = train(settings.model_copy(update={"training": settings.training.model_copy(
        update={"epochs": 6})}), DS, "dnn")
    promoted = promote(settings, DS)
    assert promoted["artifact"] == str(better.artifact) and promoted["promoted"], promoted
    assert registry.alias("champion")["version"] == promoted["registry_version"] == 3
    assert better.metrics["hs6_accuracy"] > worse.metrics["hs6_accuracy"]


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


def test_saved_svm_is_one_sparse_linear_model_with_the_same_scores(prepared: Path,
                                                                  tmp_path: Path) -> None:
    import numpy as np
    import scipy.sparse as sp

    from hscode.predictor import load_predictor
    from hscode.training.baseline import fit_baseline, save_baseline
    from hscode.training.data import load_prepared

    data = load_prepared(prepared)
    fitted = fit_baseline(data.train)
    expected = fitted.decision_function(data.test["text"])
    n_codes, n_features = fitted.named_steps["svm"].coef_.shape
    path = save_baseline(fitted, tmp_path)
    (tmp_path / "labels.json").write_text(json.dumps([str(c) for c in fitted.classes_]))
    loaded = load_predictor(tmp_path)
    svm = loaded.model.named_steps["svm"]
    assert sp.issparse(svm.coef_) and svm.coef_.shape == (len(fitted.classes_),
                                                           svm.n_features_in_)
    np.testing.assert_allclose(loaded.raw_scores(data.test["text"]), expected, atol=1e-12)
    with np.load(path) as stored:  # the weights a code's support vectors never touch: absent
        assert stored["coef_data"].size == svm.coef_.nnz < n_codes * n_features
        arrays = dict(stored)
    # a file of the earlier layout (weights by row, no layout recorded) scores the same
    by_row = sp.csr_matrix(svm.coef_)
    config = json.loads(str(arrays["config"]))
    del config["coef_layout"]
    arrays.update(coef_data=by_row.data, coef_indices=by_row.indices,
                  coef_indptr=by_row.indptr, config=np.asarray(json.dumps(config)))
    np.savez(path, **arrays)
    np.testing.assert_allclose(load_predictor(tmp_path).raw_scores(data.test["text"]), expected,
                               atol=1e-12)
