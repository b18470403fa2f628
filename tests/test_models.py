"""Network builders and metrics."""

from __future__ import annotations

import numpy as np
import pytest

from hscode.models import ModelParams, build_model, default_params
from hscode.training.metrics import classification_metrics, top_k_codes

pytestmark = pytest.mark.unit


def test_widths_shrink_with_a_floor() -> None:
    p = ModelParams(layers=4, initial_neurons=256, neuron_shrink=0.5, min_neurons=40)
    assert p.widths() == [256, 128, 64, 40]
    assert ModelParams.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("name", ["dnn", "lstm", "textcnn"])
def test_models_map_piece_ids_to_class_probabilities(name: str) -> None:
    model = build_model(name, buckets=50, max_pieces=4, n_classes=5,
                        params=ModelParams(embedding_dim=8, layers=2, initial_neurons=16,
                                           filters=4))
    x = np.random.default_rng(0).integers(1, 50, size=(3, 8, 4))
    x[:, 5:, :] = 0  # padded words
    probs = model.predict(x, verbose=0)
    assert probs.shape == (3, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # padding is masked: the same texts without their padded words get the same answer
    np.testing.assert_allclose(model.predict(x[:, :5], verbose=0), probs, rtol=1e-5, atol=1e-6)


def test_textcnn_follows_the_paper() -> None:
    model = build_model("textcnn", 100, 4, 3, default_params("textcnn"))
    convs = [layer for layer in model.layers if layer.name.startswith("conv_")]
    assert sorted(c.kernel_size[0] for c in convs) == [3, 4, 5]
    assert {c.filters for c in convs} == {128}
    assert model.get_layer("embedding").dim == 100
    assert model.get_layer("code").activation.__name__ == "softmax"


def test_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        build_model("svm", 10, 4, 2)


def test_classification_metrics_by_hand() -> None:
    y_true = ["392410", "392410", "851713", "940161"]
    y_pred = ["392410", "392490", "851713", "851713"]
    top = [["392410"], ["392490", "392410"], ["851713"], ["851713", "940171", "940180"]]
    m = classification_metrics(y_true, y_pred, top)
    assert m["hs6_accuracy"] == m["accuracy"] == 0.5
    assert m["hs4_accuracy"] == 0.75  # 3924 == 3924 on row 2
    assert m["hs2_accuracy"] == 0.75
    assert m["top3_accuracy"] == 0.75
    assert m["rows"] == 4


def test_top_k_codes() -> None:
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert top_k_codes(probs, ["a", "b", "c"], 2) == [["b", "c"], ["a", "c"]]


def test_the_search_starts_from_the_incumbent_clipped_into_its_caps() -> None:
    import optuna

    from hscode.training.search import incumbent_trial, suggest

    # an earlier search's deeper, wider LSTM, searched again with tighter caps
    wide = ModelParams(layers=4, initial_neurons=1024, embedding_dim=300, learning_rate=0.5,
                       dropout=0.2)
    values = incumbent_trial(wide, "lstm", max_layers=2, max_neurons=256)
    assert values["layers"] == 2 and values["initial_neurons"] == 256
    assert values["embedding_dim"] == 128 and values["learning_rate"] == 3e-2
    assert values["dropout"] == 0.2  # inside its range: kept
    params = suggest(optuna.trial.FixedTrial(values), "lstm", max_layers=2, max_neurons=256)
    assert (params.layers, params.initial_neurons, params.dropout) == (2, 256, 0.2)
    # the defaults are inside every range: the first trial is exactly what training uses now
    dnn = default_params("dnn")
    again = suggest(optuna.trial.FixedTrial(incumbent_trial(dnn, "dnn")), "dnn")
    assert again == dnn
    # the Text-CNN keeps the paper's architecture: only its training knobs are searched
    assert set(incumbent_trial(default_params("textcnn"), "textcnn")) == {
        "learning_rate", "dropout", "piece_dropout"}


def test_a_search_keeps_the_incumbent_unless_a_trial_beats_it_by_the_minimum_gain() -> None:
    from hscode.training.search import winner

    # the LSTM's search of 2026-12-04: +0.07 points on validation, -0.7 on test
    assert winner([0.6107, 0.4106, 0.6114, 0.5987], min_gain=0.01) == 0
    assert winner([0.6107, 0.4106, 0.6250, 0.6300], min_gain=0.01) == 3
    assert winner([0.6107, 0.6114], min_gain=0.0) == 1
    # a tie goes to the earlier trial: the incumbent when it is the best
    assert winner([0.60, 0.60], min_gain=0.0) == 0
