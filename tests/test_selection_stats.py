"""Selection statistics against hand-computed scipy results, and the promotion gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hscode.selection.registry import Registry, promotion_decision
from hscode.selection.stats import compare_models, fbeta_per_code, run_code_test

pytestmark = pytest.mark.unit
FOLDS = 8


def _folds(values: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    rows = [{"model": m, "fold": i, "code": code, "fbeta": v}
            for code, per_model in values.items() for m, vals in per_model.items()
            for i, v in enumerate(vals)]
    return pd.DataFrame(rows)


rng = np.random.default_rng(7)
CLEAR = {"dnn": list(0.70 + 0.01 * rng.standard_normal(FOLDS)),
         "lstm": list(0.72 + 0.01 * rng.standard_normal(FOLDS)),
         "textcnn": list(0.85 + 0.01 * rng.standard_normal(FOLDS))}
SAME = {m: list(0.80 + 0.02 * rng.standard_normal(FOLDS)) for m in ("dnn", "lstm", "textcnn")}


def test_anova_matches_scipy_when_assumptions_hold() -> None:
    groups = {m: np.array(v) for m, v in CLEAR.items()}
    test, stat, p, normal, equal_var = run_code_test(groups)
    expected = stats.f_oneway(*groups.values())
    assert (test, normal, equal_var) == ("anova", True, True)
    assert stat == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)
    assert p < 1e-10


def test_kruskal_fallback_when_variances_differ() -> None:
    groups = {"dnn": np.array([0.5, 0.9, 0.1, 0.95, 0.05, 0.6, 0.4, 0.99]),
              "lstm": np.array([0.70, 0.71, 0.70, 0.72, 0.71, 0.70, 0.71, 0.70]),
              "textcnn": np.array([0.80, 0.81, 0.80, 0.82, 0.81, 0.80, 0.81, 0.80])}
    test, stat, p, _, equal_var = run_code_test(groups)
    expected = stats.kruskal(*groups.values())
    assert test == "kruskal" and not equal_var
    assert stat == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)


def test_compare_models_significant_and_not_with_bh_correction() -> None:
    table, champion = compare_models(_folds({"111111": CLEAR, "222222": SAME}))
    assert champion == "textcnn"
    t = table.set_index("code")
    raw = [stats.f_oneway(*CLEAR.values()).pvalue, t.loc["222222", "p_value"]]
    np.testing.assert_allclose(t["p_adjusted"].to_numpy(), stats.false_discovery_control(raw))
    assert bool(t.loc["111111", "significant"]) and t.loc["111111", "recommended"] == "textcnn"
    assert "textcnn>dnn" in t.loc["111111", "tukey_pairs"]
    assert not bool(t.loc["222222", "significant"])
    assert t.loc["222222", "recommended"] == champion  # no evidence to switch
    assert t.loc["222222", "p_value"] > 0.05


def test_constant_folds_are_not_a_difference() -> None:
    same = {m: [1.0] * FOLDS for m in ("dnn", "textcnn")}
    table, _ = compare_models(_folds({"333333": same}))
    assert table.loc[0, "test"] == "none" and not table.loc[0, "significant"]


def test_fbeta_per_code_uses_beta_1_2() -> None:
    y_true = ["a", "a", "a", "b", "b"]
    y_pred = ["a", "b", "b", "b", "b"]
    out = fbeta_per_code(y_true, y_pred, ["a", "b"]).set_index("code")
    p, r, b2 = 1.0, 1 / 3, 1.2**2
    assert out.loc["a", "fbeta"] == pytest.approx((1 + b2) * p * r / (b2 * p + r))


def test_gate_refuses_a_significantly_worse_challenger() -> None:
    champion = np.array([True] * 90 + [False] * 10)
    worse = champion.copy()
    worse[:25] = False  # loses 25 rows the champion gets right, wins none
    refused = promotion_decision(champion, worse)
    assert not refused.promote and refused.champion_only_right == 25
    assert refused.p_value == pytest.approx(stats.binomtest(25, 25, 0.5, "greater").pvalue)
    slightly = champion.copy()
    slightly[:2] = False
    slightly[90:91] = True
    kept = promotion_decision(champion, slightly)
    assert kept.promote and kept.p_value > 0.05
    assert promotion_decision(None, worse).promote


def test_registry_versions_alias_and_decisions(tmp_path: Path) -> None:
    art = tmp_path / "art"
    art.mkdir()
    (art / "labels.json").write_text("[]")
    reg = Registry(tmp_path / "registry")
    v1 = reg.register(art, "textcnn", {"hs6_accuracy": 0.7})
    assert reg.register(art, "textcnn", {}) == v1  # same artifact: no new version
    reg.record(v1, promotion_decision(None, np.array([True])))
    assert reg.alias("champion")["version"] == v1
    art2 = tmp_path / "art2"
    art2.mkdir()
    v2 = reg.register(art2, "lstm", {})
    reg.record(v2, promotion_decision(np.array([True] * 30), np.array([False] * 30)))
    assert v2 == 2 and reg.alias("champion")["version"] == v1  # refused: alias stays
    assert (tmp_path / "registry" / "versions" / "2").is_dir()
