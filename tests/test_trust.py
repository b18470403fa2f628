"""Rules that make a prediction worth trusting: calibration, threshold, routing, gate, drift.

Hand-made inputs with known answers, and real declarations for drift; no JVM, no training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hscode.calibration import (
    expected_calibration_error,
    fit_temperature,
    fit_temperature_blocks,
    softmax,
    wilson,
)
from hscode.config import DriftSettings
from hscode.ensemble import Ensemble, ensemble_spec, load_ensemble, route, vote
from hscode.scoring.drift import drift_metrics
from hscode.scoring.reference import build_reference, review_threshold
from hscode.selection.registry import promotion_decision
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.unit

LABELS = ["010121", "020110", "030111"]


def _sampled(temperature: float, rows: int = 4000, classes: int = 20, seed: int = 0
             ) -> tuple[np.ndarray, list[str], list[str]]:
    """Logits and labels drawn from softmax(logits / temperature)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(rows, classes))
    p = softmax(logits, temperature)
    labels = [f"{c:06d}" for c in range(classes)]
    drawn = (rng.random(rows)[:, None] < p.cumsum(axis=1)).argmax(axis=1)
    truth = [labels[i] for i in drawn]
    return logits, truth, labels


def test_temperature_recovers_the_temperature_the_labels_were_drawn_with() -> None:
    logits, truth, labels = _sampled(2.5)
    assert fit_temperature(logits, truth, labels) == pytest.approx(2.5, rel=0.08)
    # codes the model does not know carry no likelihood and do not move the fit
    assert fit_temperature(logits, [*truth[:-50], *["999999"] * 50], labels) == pytest.approx(
        2.5, rel=0.08)
    # several blocks (CV folds with their own code columns) pool into one temperature
    half = len(truth) // 2
    blocks = [(logits[:half], truth[:half], labels),
              (logits[half:, ::-1], truth[half:], labels[::-1])]
    assert fit_temperature_blocks(blocks) == pytest.approx(2.5, rel=0.08)


def test_calibration_lowers_the_calibration_error_on_other_rows() -> None:
    logits, truth, labels = _sampled(2.5, rows=6000, seed=1)
    t = fit_temperature(logits[:3000], truth[:3000], labels)
    lab = np.asarray(labels)
    correct = lab[logits[3000:].argmax(1)] == np.asarray(truth[3000:])
    before = expected_calibration_error(softmax(logits[3000:]).max(1), correct)
    after = expected_calibration_error(softmax(logits[3000:], t).max(1), correct)
    assert before > 0.1 and after < 0.03  # over-confident raw scores, honest after


def test_ece_and_wilson_interval_match_hand_computation() -> None:
    # two bins: 0.95 conf with 1/2 right (gap .45), 0.55 conf with 1/2 right (gap .05)
    conf = np.array([0.95, 0.95, 0.55, 0.55])
    ok = np.array([True, False, True, False])
    assert expected_calibration_error(conf, ok, bins=10) == pytest.approx((0.45 * 2 + 0.05 * 2) / 4)
    w = wilson(8, 10)  # textbook: 0.8, 95% Wilson interval [0.490, 0.943]
    assert (round(w.low, 3), round(w.high, 3), w.value) == (0.490, 0.943, 0.8)
    assert wilson(0, 0).value is None


def test_threshold_is_chosen_on_calibration_rows_and_reported_on_test_rows() -> None:
    ref = {"calibration": {"confidence": [0.99, 0.9, 0.8, 0.7, 0.6],
                           "correct": [True, True, True, False, False]},
           "holdout": {"confidence": [0.95, 0.85, 0.82, 0.75, 0.5],
                       "correct": [True, True, False, True, False]}}
    t = review_threshold(ref, 0.97)
    # chosen on calibration: accepting down to 0.8 is 3/3 right, down to 0.7 is 3/4
    assert t.value == 0.8 and t.chosen_on == "calibration" and t.chosen_precision == 1.0
    # reported on test: 0.95, 0.85, 0.82 accepted, 2 of 3 right: the promise is not kept here
    assert t.precision == pytest.approx(2 / 3) and t.coverage == pytest.approx(3 / 5)
    assert t.precision_low < 2 / 3 < t.precision_high and t.support == 5
    legacy = review_threshold({"holdout": ref["holdout"]}, 0.97)
    assert legacy.chosen_on == "holdout"


def test_ambiguous_descriptions_are_never_auto_accepted() -> None:
    # the same rows as above, with the catalog's conflicting-description flag
    ref = {"calibration": {"confidence": [0.99, 0.9, 0.8, 0.7, 0.6],
                           "correct": [True, False, True, True, False],
                           "conflicting": [False, True, False, False, False]},
           "holdout": {"confidence": [0.95, 0.85, 0.82, 0.75, 0.5],
                       "correct": [True, True, False, True, False],
                       "conflicting": [False, False, True, False, False]}}
    t = review_threshold(ref, 0.97)
    # chosen without the ambiguous 0.9 row (wrong): down to 0.7 the rest are 3/3 right
    assert t.value == 0.7 and t.chosen_precision == 1.0
    # on test the ambiguous 0.82 row is reviewed although confident: 3 accepted, all right;
    # coverage is a share of every row
    assert t.precision == 1.0 and t.coverage == pytest.approx(3 / 5)
    flagged = review_threshold(ref, 0.97, fixed=0.8)
    assert flagged.precision == 1.0 and flagged.coverage == pytest.approx(2 / 5)
    # the reference records the flag from the splits' conflicting_code column
    train = pd.DataFrame({"product_id": ["1"], "hs6": ["010121"]})
    test = pd.DataFrame({"hs6": ["010121", "010121"], "conflicting_code": [True, None]})
    built = build_reference(train, test, np.array([[0.8, 0.1, 0.1]] * 2), LABELS)
    assert built["holdout"]["conflicting"] == [True, False]


def test_reference_keeps_calibration_and_test_outcomes_apart() -> None:
    train = pd.DataFrame({"product_id": ["1", "2"], "hs6": ["010121", "020110"]})
    test = pd.DataFrame({"hs6": ["010121", "999999"]})  # a code the model does not know
    cal = pd.DataFrame({"hs6": ["020110"]})
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    ref = build_reference(train, test, probs, LABELS, cal, np.array([[0.1, 0.6, 0.3]]))
    assert ref["holdout"]["correct"] == [True, False]
    assert ref["holdout"]["predicted"] == ["010121", "020110"]
    assert ref["calibration"]["correct"] == [True]


def test_soft_vote_is_the_mean_of_the_members() -> None:
    a = np.array([[0.6, 0.3, 0.1]])
    b = np.array([[0.2, 0.7, 0.1]])
    np.testing.assert_allclose(vote([a, b]), [[0.4, 0.5, 0.1]])


def test_routed_ensemble_trusts_the_model_recommended_for_the_code_it_predicts() -> None:
    base = np.array([[0.7, 0.2, 0.1],    # row 0: base says 010121
                     [0.5, 0.4, 0.1],    # row 1: base says 010121
                     [0.1, 0.8, 0.1],    # row 2: base says 020110
                     [0.2, 0.3, 0.5]])   # row 3: base says 030111
    # row 0: cnn says 030111 (routed to cnn) at 0.8 > the base's 0.7 -> cnn decides
    # row 1: cnn says 020110, which is the base's code -> base decides
    # row 2: cnn says 030111 at 0.8, the base its own 020110 at 0.8: a tie, the base is first
    # row 3: the base says 030111 but is not in charge of it; cnn says it too -> cnn decides
    cnn = np.array([[0.05, 0.15, 0.8],
                    [0.4, 0.5, 0.1],
                    [0.1, 0.1, 0.8],
                    [0.05, 0.05, 0.9]])
    svm = np.array([[0.3, 0.3, 0.4]] * 4)
    routing = {"030111": "cnn"}
    probs, choice = route({"base": base, "cnn": cnn, "svm": svm}, LABELS, routing, "base")
    assert choice.tolist() == [1, 0, 0, 1]
    np.testing.assert_allclose(probs[0], cnn[0])
    np.testing.assert_allclose(probs[1], base[1])
    # with no routing the routed ensemble is exactly the base model
    same, _ = route({"base": base, "cnn": cnn}, LABELS, {}, "base")
    np.testing.assert_allclose(same, base)
    with pytest.raises(ValueError, match="base model"):
        route({"cnn": cnn}, LABELS, {}, "base")


class _FixedMember:
    """A member whose probabilities are fixed per text; counts how often it is asked."""

    def __init__(self, rows: dict[str, list[float]]) -> None:
        self.rows, self.calls, self.labels = rows, 0, LABELS

    def predict_proba(self, texts: list[str], batch_size: int = 2048) -> np.ndarray:
        self.calls += 1
        return np.array([self.rows[t] for t in texts])


def test_ensembles_of_one_run_share_their_members_and_score_them_once(tmp_path: Path) -> None:
    texts = ["steel screws", "cotton shirt"]
    base = _FixedMember({"steel screws": [0.6, 0.3, 0.1], "cotton shirt": [0.2, 0.5, 0.3]})
    cnn = _FixedMember({"steel screws": [0.1, 0.1, 0.8], "cotton shirt": [0.1, 0.8, 0.1]})
    members = {"base": base, "cnn": cnn}
    voted = Ensemble("vote", members, LABELS, "base", {}, memo={})
    np.testing.assert_allclose(voted.predict_proba(texts), [[0.35, 0.2, 0.45], [0.15, 0.65, 0.2]])
    voted.predict_proba(texts)
    assert (base.calls, cnn.calls) == (1, 1)  # the second call came from the memo
    routed_dir = tmp_path / "routed"
    routed_dir.mkdir()
    (routed_dir / "ensemble.json").write_text(json.dumps(
        ensemble_spec("routed", ["base", "cnn"], "base", {"030111": "cnn", "020110": "base"})))
    (routed_dir / "labels.json").write_text(json.dumps(LABELS))
    routed = load_ensemble(routed_dir, like=voted)
    assert routed.members is members and routed.routing == {"030111": "cnn"}
    expected, _ = route({"base": base.predict_proba(texts), "cnn": cnn.predict_proba(texts)},
                        LABELS, {"030111": "cnn"}, "base")
    calls = (base.calls, cnn.calls)
    np.testing.assert_allclose(routed.predict_proba(texts), expected)
    assert (base.calls, cnn.calls) == calls  # no member scored the same texts again
    other = Ensemble("vote", {"cnn": cnn, "base": base}, LABELS, "base", {})
    with pytest.raises(ValueError, match="members"):
        load_ensemble(routed_dir, like=other)


def test_gate_refuses_a_small_regression_that_is_not_significant() -> None:
    rng = np.random.default_rng(3)
    champion = rng.random(2000) < 0.70
    # the challenger loses 120 of the champion's right answers and wins 100 others: one point
    # worse, which McNemar alone lets through (p ~ 0.1)
    challenger = champion.copy()
    challenger[np.flatnonzero(champion)[:120]] = False
    challenger[np.flatnonzero(~champion)[:100]] = True
    d = promotion_decision(champion, challenger, alpha=0.05, max_regression=0.005)
    assert not d.promote and "below the champion" in d.reason and d.rows == 2000
    assert d.p_value > 0.05 and (d.champion_only_right, d.challenger_only_right) == (120, 100)
    loose = promotion_decision(champion, challenger, alpha=0.05, max_regression=0.02)
    assert loose.promote
    # a challenger far worse is refused by McNemar even under a loose margin
    worse = champion.copy()
    worse[np.flatnonzero(champion)[:200]] = False
    assert not promotion_decision(champion, worse, 0.05, max_regression=0.5).promote
    assert promotion_decision(None, challenger).promote
    assert not promotion_decision(champion[:0], challenger[:0]).promote


def test_gate_rows_leave_out_what_the_champion_trained_on(tmp_path: Path) -> None:
    from hscode.selection.select import gate_rows
    from hscode.training.artifacts import TRAIN_TEXTS_FILE, text_hashes

    champ, chal = tmp_path / "champ", tmp_path / "chal"
    for art, texts in ((champ, ["steel bolts", "cotton shirts"]), (chal, ["plastic cups"])):
        art.mkdir()
        np.save(art / TRAIN_TEXTS_FILE, text_hashes(texts))
    test = pd.DataFrame({"text": ["steel bolts", "wooden chairs", "cotton shirts", "tea"]})
    assert gate_rows(test, chal, champ).tolist() == [False, True, False, True]
    # an ensemble carries its members' texts
    ens = tmp_path / "ens"
    (ens / "members" / "svm").mkdir(parents=True)
    np.save(ens / "members" / "svm" / TRAIN_TEXTS_FILE, text_hashes(["tea"]))
    assert gate_rows(test, ens).tolist() == [True, True, True, False]


def _declared_codes() -> pd.Series:
    path = SHARED_DATA / "declarations.csv"
    return pd.read_csv(path, dtype=str, usecols=["hs10"])["hs10"].str[:6]


def test_drift_does_not_cry_wolf_on_a_same_source_sample_and_marks_a_shift() -> None:
    codes = _declared_codes().sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, held, tonight = codes[:40000], codes[40000:45000], codes[45000:48000]
    top = train.value_counts().index[:400]  # the model's codes: frequent ones
    train = train[train.isin(top)]
    labels = sorted(set(train))
    # a model that is right 70% of the time and otherwise says the most frequent code
    rng = np.random.default_rng(0)
    predicted = np.where(rng.random(len(held)) < 0.7, held, train.value_counts().index[0])
    predicted = np.where(np.isin(predicted, labels), predicted, labels[0])
    probs = np.zeros((len(held), len(labels)))
    probs[np.arange(len(held)), np.searchsorted(labels, predicted)] = 0.8
    ref = build_reference(pd.DataFrame({"product_id": train.index.astype(str), "hs6": train}),
                          pd.DataFrame({"hs6": held.to_numpy()}), probs, labels)
    cfg = DriftSettings()
    night = np.where(rng.random(len(tonight)) < 0.7, tonight, train.value_counts().index[0])
    night = pd.Series(np.where(np.isin(night, labels), night, labels[0]))
    hist = [0] * 8 + [len(night), 0]  # the same confidence as the hold-out
    same = drift_metrics(night.value_counts().to_dict(), hist, ref, cfg)
    assert not any(r["breached"] for r in same), same
    psi_row = next(r for r in same if r["metric"] == "code_psi")
    assert psi_row["value"] > cfg.code_psi_threshold  # the fixed rule of thumb would breach
    # ... and does, with the null turned off (the thresholds exactly as configured)
    fixed = drift_metrics(night.value_counts().to_dict(), hist, ref,
                          DriftSettings(bootstrap_samples=0))
    assert {r["metric"]: r["breached"] for r in fixed}["code_psi"]
    assert next(r for r in fixed if r["metric"] == "code_psi")["threshold"] == \
        cfg.code_psi_threshold
    # a catalog of machines only (chapters 84-85), predicted as such
    machines = pd.Series([c for c in labels if c[:2] in ("84", "85")])
    shifted = machines.sample(3000, replace=True, random_state=1).value_counts().to_dict()
    low_conf = [300] * 10
    breached = {r["metric"] for r in drift_metrics(shifted, low_conf, ref, cfg) if r["breached"]}
    assert breached == {"code_psi", "code_kl", "confidence_psi"}
