"""Scoring rules on small hand-made inputs: threshold, top-k, bands, agreement, drift."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from hscode.config import DriftSettings
from hscode.scoring.drift import drift_metrics, kl_divergence, psi
from hscode.scoring.reference import build_reference, choose_threshold, review_threshold
from hscode.scoring.score import (
    ScoringSpec,
    allowed_mask,
    confidence_band,
    heading_probability,
    score_batch,
    top_k,
)

pytestmark = pytest.mark.unit


def test_threshold_is_the_lowest_cut_reaching_the_target_precision() -> None:
    conf = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    ok = np.array([True, True, True, False, True, False])
    t = choose_threshold(conf, ok, 0.75)
    # accepting down to 0.7 gives 4/5 = 0.8 >= 0.75; down to 0.6 gives 4/6 < 0.75
    assert t.value == 0.7 and t.precision == pytest.approx(0.8)
    assert t.coverage == pytest.approx(5 / 6) and t.support == 6
    strict = choose_threshold(conf, ok, 0.97)
    assert strict.value == 0.9 and strict.precision == 1.0 and strict.coverage == 0.5


def test_threshold_never_splits_ties_and_can_accept_nothing() -> None:
    conf = np.array([0.9, 0.9, 0.5])
    t = choose_threshold(conf, np.array([True, False, True]), 0.9)
    assert t.value > 1.0 and t.coverage == 0.0 and t.precision is None
    assert choose_threshold(np.zeros(0), np.zeros(0, bool), 0.97).support == 0


def test_fixed_threshold_reports_its_holdout_precision() -> None:
    ref = {"holdout": {"confidence": [0.9, 0.8, 0.4, 0.3], "correct": [True, False, True, False]}}
    t = review_threshold(ref, 0.97, fixed=0.5)
    assert (t.value, t.precision, t.coverage) == (0.5, 0.5, 0.5)


def test_top_k_never_predicts_codes_outside_the_nomenclature() -> None:
    labels = ["010121", "999999", "020110"]
    mask = allowed_mask(labels, ["010121", "020110", "030111"])
    assert mask.tolist() == [True, False, True]
    probs = np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    codes, p = top_k(probs, labels, mask)
    assert codes.shape == (2, 2)  # only two allowed labels
    assert codes[0].tolist() == ["010121", "020110"]
    np.testing.assert_allclose(p[0], [2 / 3, 1 / 3])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_top_k_orders_by_probability_and_breaks_ties_by_label_order() -> None:
    labels = ["a", "b", "c", "d"]
    mask = np.ones(4, bool)
    probs = np.array([[0.2, 0.3, 0.3, 0.2],     # ties at the top and at the cut
                      [0.25, 0.25, 0.25, 0.25],  # all equal
                      [0.0, 0.0, 1.0, 0.0]])     # one sure code, the rest tied at zero
    codes, p = top_k(probs, labels, mask)
    assert codes.tolist() == [["b", "c", "a"], ["a", "b", "c"], ["c", "a", "b"]]
    np.testing.assert_allclose(p, [[0.3, 0.3, 0.2], [0.25] * 3, [1.0, 0.0, 0.0]])
    # a batch as the score job sees it: coarse probabilities make many ties
    rng = np.random.default_rng(7)
    many = np.round(rng.dirichlet(np.full(300, 0.1), size=500), 2)
    labels = [f"{i:06d}" for i in range(300)]
    codes, p = top_k(many, labels, np.ones(300, bool))
    for row, got, got_p in zip(many / many.sum(axis=1, keepdims=True), codes, p, strict=True):
        ranked = sorted(range(300), key=lambda j: (-row[j], j))[:3]  # probability, then label
        assert list(got) == [labels[j] for j in ranked]
        np.testing.assert_allclose(got_p, row[ranked])


def test_an_unsure_subheading_can_still_name_a_sure_heading() -> None:
    d = dt.date(2026, 11, 1)
    batch = pd.DataFrame({"ds": [d] * 2, "product_id": ["a", "b"], "hs_code": [None] * 2,
                          "hs6": [None] * 2})
    # three subheadings of heading 8471 share the mass of row a; 999999 is not a code
    labels = ["847130", "847141", "847149", "940360", "999999"]
    probs = np.array([[0.40, 0.30, 0.20, 0.05, 0.05], [0.10, 0.05, 0.05, 0.80, 0.00]])
    spec = ScoringSpec("x", "textcnn", "registry:1", tuple(labels[:4]), 0.9, 0.5)
    out = score_batch(batch, probs, labels, spec, allowed_mask(labels, labels[:4]))
    assert out["predicted_hs4"].tolist() == ["8471", "9403"]
    np.testing.assert_allclose(out["probability"], [0.40 / 0.95, 0.80])
    np.testing.assert_allclose(out["hs4_probability"], [0.90 / 0.95, 0.80])
    assert out["needs_review"].tolist() == [True, True]  # the HS6 answer is still unsure
    # a batch of many rows over many headings, labels not grouped by heading
    rng = np.random.default_rng(3)
    labels = [f"{h:04d}{s:02d}" for s in range(5) for h in range(1, 41)]
    p = rng.dirichlet(np.full(len(labels), 0.2), size=400)
    best = [labels[j] for j in rng.integers(0, len(labels), size=400)]
    want = [sum(q for q, c in zip(row, labels, strict=True) if c[:4] == b[:4])
            for row, b in zip(p, best, strict=True)]
    np.testing.assert_allclose(heading_probability(p, labels, best), want, rtol=1e-12)
    assert heading_probability(p[:0], labels, []).shape == (0,)


def test_bands() -> None:
    got = confidence_band(np.array([0.95, 0.9, 0.6, 0.5, 0.2]), 0.9, 0.5)
    assert got.tolist() == ["high", "high", "medium", "medium", "low"]


def test_score_batch_flags_review_and_disagreement() -> None:
    d = dt.date(2026, 11, 1)
    batch = pd.DataFrame({"ds": [d] * 3, "product_id": ["a", "b", "c"],
                          "hs_code": ["0101.21", "0201.10", None],
                          "hs6": ["010121", "020110", None]})
    labels = ["010121", "020110", "030111"]
    probs = np.array([[0.95, 0.03, 0.02], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    spec = ScoringSpec("x", "textcnn", "registry:1", tuple(labels), 0.9, 0.5)
    out = score_batch(batch, probs, labels, spec, allowed_mask(labels, labels))
    assert out["predicted_hs6"].tolist() == ["010121", "010121", "030111"]
    assert out["predicted_hs4"].tolist() == ["0101", "0101", "0301"]
    assert out["predicted_hs2"].tolist() == ["01", "01", "03"]
    assert out["top2_hs6"].tolist() == ["020110", "020110", "010121"]
    assert out["needs_review"].tolist() == [False, True, True]
    assert out["agrees_with_assigned"].tolist() == [True, False, pd.NA]
    assert out["review_reason"].tolist() == [None, "low_confidence+disagrees", "low_confidence"]
    assert out["confidence_band"].tolist() == ["high", "medium", "medium"]
    assert (out["probability"] >= out["top2_probability"]).all()
    # a description the catalog files under several codes is reviewed however confident
    batch["conflicting_code"] = [True, True, None]
    out = score_batch(batch, probs, labels, spec, allowed_mask(labels, labels))
    assert out["needs_review"].tolist() == [True, True, True]
    assert out["review_reason"].tolist() == [
        "ambiguous_description", "low_confidence+ambiguous_description+disagrees",
        "low_confidence"]
    assert out["confidence_band"].tolist() == ["high", "medium", "medium"]


def test_psi_and_kl_match_hand_computation() -> None:
    a, e = {"x": 0.5, "y": 0.5}, {"x": 0.25, "y": 0.75}
    assert psi(a, e) == pytest.approx(0.25 * math.log(2) + (-0.25) * math.log(0.5 / 0.75))
    assert kl_divergence(a, e) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75))
    assert psi(e, e) == pytest.approx(0.0)
    assert psi({"x": 30, "y": 10}, {"x": 0.75, "y": 0.25}) == pytest.approx(0.0)  # counts ok


def test_drift_marks_a_shifted_night() -> None:
    train = pd.DataFrame({"product_id": ["1", "2", "3", "4", "4"],
                          "hs6": ["010121", "010121", "020110", "030111", "030111"]})
    test = pd.DataFrame({"hs6": ["010121", "020110"]})
    labels = ["010121", "020110", "030111"]
    ref = build_reference(train, test, np.array([[0.95, 0.05, 0], [0.1, 0.85, 0.05]]), labels)
    assert ref["code_shares"] == {"010121": 0.5, "020110": 0.25, "030111": 0.25}
    assert ref["holdout"]["correct"] == [True, True]
    cfg = DriftSettings()
    same = drift_metrics({"010121": 50, "020110": 25, "030111": 25}, ref["confidence_hist"],
                         ref, cfg)
    assert not any(r["breached"] for r in same)
    shifted = drift_metrics({"030111": 100}, [10, 0, 0, 0, 0, 0, 0, 0, 0, 0], ref, cfg)
    assert {r["metric"] for r in shifted if r["breached"]} == {"code_psi", "code_kl",
                                                               "confidence_psi"}
