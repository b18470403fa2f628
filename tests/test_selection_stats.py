"""Selection statistics against hand-computed scipy results, and the promotion gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hscode.selection.registry import Registry, promotion_decision
from hscode.selection.stats import compare_models, fbeta_per_code, run_code_test

pytestmark = pytest.mark.unit
FOLDS = 8


def _folds(values: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    rows = [{"model": m, "fold": i, "code": code, "fbeta": v}
            for code, per_model in values.items() for m, vals in per_model.items()
            for i, v in enumerate(vals)]
    return pd.DataFrame(rows)


# Known answers, worked by hand (no scipy call repeated in the test):
# ANOVA: groups (.7 .8 .9), (.4 .5 .6), (.1 .2 .3): grand mean .5, SS_between = 3 x (.09 + 0
# + .09) = .54 on 2 df, SS_within = 3 x .02 = .06 on 6 df, F = (.54/2) / (.06/6) = 27;
# for 2 numerator df the F tail is (1 + 2F/df2)^(-df2/2) = (1 + 9)^-3 = 0.001.
ANOVA = {"dnn": [0.7, 0.8, 0.9], "lstm": [0.4, 0.5, 0.6], "textcnn": [0.1, 0.2, 0.3]}
# Kruskal-Wallis: dnn spreads over the whole range (unequal variances: no ANOVA); ranks of
# the 18 values: dnn 1,2,3,16,17,18 (sum 57), lstm 10..15 (75), textcnn 4..9 (39);
# H = 12/(18 x 19) x (57^2 + 75^2 + 39^2)/6 - 3 x 19 = 72/19 = 3.789474; with 2 df the
# chi-square tail is exp(-H/2) = exp(-36/19) = 0.150358.
KRUSKAL = {"dnn": [0.05, 0.99, 0.10, 0.98, 0.15, 0.97],
           "lstm": [0.60, 0.61, 0.62, 0.63, 0.64, 0.65],
           "textcnn": [0.30, 0.31, 0.32, 0.33, 0.34, 0.35]}


def test_anova_when_assumptions_hold_matches_the_hand_computation() -> None:
    test, stat, p, normal, equal_var = run_code_test({m: np.array(v) for m, v in ANOVA.items()})
    assert (test, normal, equal_var) == ("anova", True, True)
    assert stat == pytest.approx(27.0) and p == pytest.approx(0.001)


def test_kruskal_when_variances_differ_matches_the_hand_computation() -> None:
    test, stat, p, _, equal_var = run_code_test({m: np.array(v) for m, v in KRUSKAL.items()})
    assert test == "kruskal" and not equal_var
    assert stat == pytest.approx(72 / 19) and p == pytest.approx(0.150358, abs=1e-6)


def test_compare_models_adjusts_with_benjamini_hochberg_and_recommends_per_code() -> None:
    table, champion = compare_models(_folds({"111111": ANOVA, "222222": KRUSKAL}))
    # overall mean F-beta over all (code, fold) rows: dnn (2.4 + 3.24)/9 = .627,
    # lstm (1.5 + 3.75)/9 = .583, textcnn (.6 + 1.95)/9 = .283
    assert champion == "dnn"
    t = table.set_index("code")
    # BH with m = 2: the smaller p (.001) x 2/1 = .002; the larger (.150358) x 2/2
    assert t.loc["111111", "p_adjusted"] == pytest.approx(0.002)
    assert t.loc["222222", "p_adjusted"] == pytest.approx(0.150358, abs=1e-6)
    assert bool(t.loc["111111", "significant"]) and not bool(t.loc["222222", "significant"])
    # significant: the code's best model; not significant: lstm is best on 222222 (.625 vs
    # .54) but without evidence the champion stays recommended
    assert t.loc["111111", "recommended"] == "dnn"
    assert t.loc["222222", "best"] == "lstm" and t.loc["222222", "recommended"] == "dnn"
    # Tukey HSD on 111111: MSE .01, n 3, q = .3/sqrt(.01/3) = 5.20 > q(.05; 3, 6) = 4.34
    assert t.loc["111111", "tukey_pairs"] == "dnn>lstm, dnn>textcnn, lstm>textcnn"
    assert t.loc["222222", "tukey_pairs"] == ""


def test_constant_folds_are_not_a_difference() -> None:
    same = {m: [1.0] * FOLDS for m in ("dnn", "textcnn")}
    table, _ = compare_models(_folds({"333333": same}))
    assert table.loc[0, "test"] == "none" and not table.loc[0, "significant"]


def test_a_tied_champion_is_the_simplest_candidate() -> None:
    # a routed ensemble that routes no code scores exactly like its base model
    svm = [0.5, 0.7, 0.6, 0.9, 0.4, 0.8, 0.6, 0.7]
    folds = _folds({"111111": {"routed": svm, "svm": svm, "dnn": [0.1] * FOLDS}})
    assert compare_models(folds)[1] == "routed"  # alphabetical without a preference
    assert compare_models(folds, prefer=["dnn", "svm", "vote", "routed"])[1] == "svm"
    # a better ensemble still wins
    better = _folds({"111111": {"routed": [v + 0.01 for v in svm], "svm": svm}})
    assert compare_models(better, prefer=["svm", "routed"])[1] == "routed"


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
    # exact McNemar: all 25 discordant pairs favour the champion, P = 0.5^25
    assert refused.p_value == pytest.approx(0.5**25)
    slightly = champion.copy()
    slightly[:2] = False
    slightly[90:91] = True
    # 2 pairs for the champion, 1 for the challenger: P(X >= 2 | n=3) = (3 + 1)/8; one
    # point worse: within a 2-point margin it passes, beyond the default half point not
    kept = promotion_decision(champion, slightly, max_regression=0.02)
    assert kept.promote and kept.p_value == pytest.approx(0.5)
    assert not promotion_decision(champion, slightly).promote
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


def test_tukey_pairs_agree_with_scipys_tukey_hsd() -> None:
    """The critical-value shortcut names exactly the pairs whose scipy p-value is < alpha,
    for equal and unequal fold counts, ties and zero spread."""
    from scipy import stats

    from hscode.selection.stats import _tukey_pairs

    rng = np.random.default_rng(7)
    cases = []
    for _ in range(60):
        k = int(rng.integers(2, 6))
        cases.append({f"m{i}": rng.normal(rng.uniform(0.3, 0.7), rng.uniform(0.01, 0.2),
                                          size=int(rng.integers(3, 9))) for i in range(k)})
    cases.append({"a": np.full(4, 0.5), "b": np.full(4, 0.5), "c": np.array([.1, .2, .3, .4])})
    seen = 0
    for groups in cases:
        with np.errstate(divide="ignore", invalid="ignore"):
            p = stats.tukey_hsd(*groups.values()).pvalue
        names = list(groups)
        expected = {tuple(sorted((names[i], names[j])))
                    for i in range(len(names)) for j in range(i + 1, len(names))
                    if p[i, j] < 0.05}
        found = {tuple(sorted(pair.split(">"))) for pair in
                 filter(None, _tukey_pairs(groups, 0.05).split(", "))}
        assert found == expected, groups
        seen += len(found)
    assert seen > 20  # the cases hold differing pairs, not only equal ones
