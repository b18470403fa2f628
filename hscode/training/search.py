"""Bayesian hyper-parameter search (Optuna's TPE sampler) over the paper's ranges.

Each trial trains one process for ``search_epochs`` on the train split and is scored by
validation accuracy (a grouped hold-out of the train split; the test split is never seen).
The first trial is the **incumbent** - the parameters training uses now (the defaults, or an
earlier search's result) - so the search reports how far it beats them and never saves
worse parameters than those on its own measure. TPE models the trials after its first
third of random ones (Optuna's default of 10 random trials would leave a budget of 8 a random
search). The best trial replaces the incumbent only when it is better by at least
``training.search_min_gain``; the kept parameters are saved to ``models/search/<model>.json``
and reused by training.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hscode.models import ModelParams, default_params

if TYPE_CHECKING:
    from hscode.training.hvd_train import TrainJob

# The paper's ranges: dropout 0.1-0.75, embedding 11-87, 1-15 layers, shrinking neurons.
# Two deviations, measured (README "Results"): the DNN may have no hidden layer (a softmax
# over the mean of the hashed pieces, fastText's shape, beat every hidden-layer DNN tried),
# and embeddings go to 128 (the probe's 96 sits above the paper's 87). One addition: the
# share of a word's pieces dropped while training (0 = off, the defaults' value).
RANGES = {"dropout": (0.1, 0.75), "piece_dropout": (0.0, 0.5), "embedding_dim": (11, 128), "layers": (1, 15),
          "initial_neurons": (32, 1024), "neuron_shrink": (0.3, 1.0),
          "learning_rate": (1e-4, 3e-2)}
MIN_LAYERS = {"dnn": 0, "lstm": 1}


def bounds(model: str, max_layers: int = 15, max_neurons: int = 1024
           ) -> dict[str, tuple[float, float]]:
    """Each searched parameter's range for ``model``: :data:`RANGES`, layers from the model's
    minimum, layers and first-layer neurons capped at ``max_layers`` / ``max_neurons``."""
    out = dict(RANGES)
    low = MIN_LAYERS.get(model, RANGES["layers"][0])
    out["layers"] = (low, max(low, min(RANGES["layers"][1], max_layers)))
    lo, hi = RANGES["initial_neurons"]
    out["initial_neurons"] = (lo, max(lo, min(hi, max_neurons)))
    return out


def suggest(trial: Any, model: str, max_layers: int = 15, max_neurons: int = 1024
            ) -> ModelParams:
    """Parameters for one trial (Text-CNN keeps the paper's fixed architecture), within
    :func:`bounds`."""
    base = default_params(model)
    r = bounds(model, max_layers, max_neurons)
    lr = trial.suggest_float("learning_rate", *r["learning_rate"], log=True)
    dropout = trial.suggest_float("dropout", *r["dropout"])
    pieces = trial.suggest_float("piece_dropout", *r["piece_dropout"])
    if model == "textcnn":
        return replace(base, dropout=dropout, learning_rate=lr, piece_dropout=pieces)
    return replace(
        base, dropout=dropout, learning_rate=lr, piece_dropout=pieces,
        embedding_dim=trial.suggest_int("embedding_dim", *r["embedding_dim"]),
        layers=trial.suggest_int("layers", *r["layers"]),
        initial_neurons=trial.suggest_int("initial_neurons", *r["initial_neurons"], log=True),
        neuron_shrink=trial.suggest_float("neuron_shrink", *r["neuron_shrink"]),
    )


def incumbent_trial(params: ModelParams, model: str, max_layers: int = 15,
                    max_neurons: int = 1024) -> dict[str, Any]:
    """``params`` as the values of a trial's suggestions, clipped into :func:`bounds`."""
    values: dict[str, Any] = {"learning_rate": params.learning_rate, "dropout": params.dropout,
                              "piece_dropout": params.piece_dropout}
    if model != "textcnn":
        values.update(embedding_dim=params.embedding_dim, layers=params.layers,
                      initial_neurons=params.initial_neurons,
                      neuron_shrink=params.neuron_shrink)
    r = bounds(model, max_layers, max_neurons)
    return {name: type(value)(min(max(value, r[name][0]), r[name][1]))
            for name, value in values.items()}


def winner(values: list[float], min_gain: float) -> int:
    """Index of the trial to keep: the best one if it beats the incumbent (index 0) by at
    least ``min_gain``, else the incumbent.

    A validation split of a few thousand rows ranks trials within about a point by chance:
    a winner by less is noise (the LSTM's +0.07-point winner of 2026-12-04 scored 0.7 points
    under the incumbent on the test split, mean of three seeds).
    """
    best = max(range(len(values)), key=lambda i: (values[i], -i))
    return best if values[best] >= values[0] + min_gain else 0


def run_search(template: TrainJob, out_file: Path, trials: int, max_layers: int = 15,
               max_neurons: int = 1024, min_gain: float = 0.0) -> dict[str, Any]:
    """Run the search and save ``{"params": ..., "value": ..., "incumbent_value": ...,
    "trials": [...]}``.

    Args:
        template: The training job each trial starts from (model, data, epochs, seed, ...);
            a trial replaces its parameters and saves no artifact. Its parameters are the
            incumbent, the first trial.
        out_file: Where the best parameters are written.
        trials: The trial budget, the incumbent's included.
        max_layers: Cap on the number of layers (the paper's range goes to 15).
        max_neurons: Cap on the first layer's neurons (the paper's range goes to 1,024).
        min_gain: Validation accuracy the best trial must add to the incumbent's to replace
            it (:func:`winner`).
    """
    import optuna

    from hscode.training.hvd_train import train_worker

    model = template.model

    def objective(trial: Any) -> float:
        params = suggest(trial, model, max_layers, max_neurons)
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            job = replace(template, params=params.to_dict(), out_dir=tmp, save_artifact=False)
            history = train_worker(job)["history"]
        trial.set_user_attr("seconds", round(time.monotonic() - started, 1))
        trial.set_user_attr("epochs_run", len(history.get("loss", [])))
        return max(history.get("val_accuracy", history.get("accuracy", [0.0])))

    sampler = optuna.samplers.TPESampler(seed=template.seed,
                                         n_startup_trials=max(1, min(10, trials // 3)))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    incumbent = ModelParams.from_dict(template.params) if template.params else default_params(model)
    study.enqueue_trial(incumbent_trial(incumbent, model, max_layers, max_neurons))
    study.optimize(objective, n_trials=trials)
    values = [t.value if t.value is not None else float("-inf") for t in study.trials]
    kept = study.trials[winner(values, min_gain)]
    best = suggest(optuna.trial.FixedTrial(kept.params), model, max_layers, max_neurons)
    result = {"model": model, "params": best.to_dict(), "value": kept.value,
              "kept_trial": kept.number, "best_trial_value": study.best_value,
              "min_gain": min_gain, "incumbent_value": study.trials[0].value,
              "epochs": template.epochs,
              "trials": [{"params": t.params, "value": t.value, **t.user_attrs}
                         for t in study.trials]}
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def best_params(model: str, search_dir: Path) -> ModelParams:
    """Saved search result for ``model`` if any, else the defaults."""
    path = search_dir / f"{model}.json"
    if path.is_file():
        return ModelParams.from_dict(json.loads(path.read_text())["params"])
    return default_params(model)
