"""Per-code statistics over cross-validation fold metrics (the paper's A/B selection).

Input: one row per (model, fold, code) with ``fbeta`` (beta = 1.2), ``precision``, ``recall``.
For each code, the models' fold F-beta values are compared:

1. assumptions: Shapiro-Wilk per model (normality) and Levene across models (equal
   variances), each at ``alpha``;
2. if both hold, a one-way ANOVA (``scipy.stats.f_oneway``); otherwise the rank-based
   Kruskal-Wallis H test (``scipy.stats.kruskal``), which needs neither;
3. p-values are corrected across codes with Benjamini-Hochberg
   (``scipy.stats.false_discovery_control``); a code's difference is significant when its
   adjusted p-value is below ``alpha``;
4. where significant, Tukey's HSD (Tukey-Kramer, as ``scipy.stats.tukey_hsd``) says which
   pairs differ.

The recommended model of a code is the one with the highest mean F-beta; when the
difference is not significant, the overall champion is recommended (no evidence to switch).
The overall champion has the highest mean F-beta over all codes and folds.

Two models scored on the same rows are compared by :func:`mcnemar` (the promotion gate, and
``hscode evaluate --all-candidates`` against the SVM).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

BETA = 1.2
TIE = 1e-12  # mean F-betas closer than this are a tie (the champion: the simplest)


@dataclass(frozen=True)
class CodeTest:
    """The test of one code."""

    code: str
    test: str  # anova, kruskal, or none (too little variation / data)
    statistic: float
    p_value: float
    normal: bool
    equal_variance: bool


def run_code_test(groups: dict[str, np.ndarray], alpha: float = 0.05) -> tuple[str, float, float,
                                                                          bool, bool]:
    """Choose and run the test for one code's per-model fold values."""
    from scipy import stats

    values = list(groups.values())
    if len(values) < 2 or any(len(v) < 3 for v in values):
        return "none", float("nan"), 1.0, False, False
    pooled = np.concatenate(values)
    if np.allclose(pooled, pooled[0]):
        return "none", 0.0, 1.0, True, True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        normal = all(np.ptp(v) == 0 or stats.shapiro(v).pvalue >= alpha for v in values)
        equal_var = stats.levene(*values).pvalue >= alpha
        if normal and equal_var:
            res = stats.f_oneway(*values)
            return "anova", float(res.statistic), float(res.pvalue), normal, equal_var
        res = stats.kruskal(*values)
    return "kruskal", float(res.statistic), float(res.pvalue), normal, equal_var


def compare_models(folds: pd.DataFrame, alpha: float = 0.05,
                   prefer: Sequence[str] = ()) -> tuple[pd.DataFrame, str]:
    """Per-code comparison table and the overall champion.

    Args:
        folds: Columns ``model, fold, code, fbeta`` (plus anything else).
        alpha: Significance level for assumptions and the corrected tests.
        prefer: Tie-break for the champion among models with the same mean F-beta: the first
            of them in this order (simplest first: single models before the ensembles built
            from them); then alphabetical.

    Returns:
        ``(table, champion)``; the table has one row per code with the means per model,
        the test used, its statistic, raw and BH-adjusted p-values, ``significant``,
        ``recommended`` and the Tukey pairs that differ.
    """
    from scipy import stats

    models = sorted(folds["model"].unique())
    means = folds.groupby("model")["fbeta"].mean()
    tied = means.index[np.isclose(means, means.max(), rtol=0, atol=TIE)]
    rank = {m: i for i, m in enumerate(prefer)}
    champion = str(min(tied, key=lambda m: (rank.get(m, len(rank)), m)))
    rows = []
    for code, by_model in _fold_values(folds).items():
        groups = {m: by_model.get(m, np.empty(0)) for m in models}
        test, stat, p, normal, equal_var = run_code_test(groups, alpha)
        row = {"code": code, "test": test, "statistic": stat, "p_value": p,
               "normal": normal, "equal_variance": equal_var}
        row.update({f"mean_{m}": float(np.mean(v)) if len(v) else float("nan")
                    for m, v in groups.items()})
        row["best"] = max(models, key=lambda m: row[f"mean_{m}"])
        row["_groups"] = groups
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table, champion
    table["p_adjusted"] = stats.false_discovery_control(table["p_value"].clip(0, 1).to_numpy())
    table["significant"] = table["p_adjusted"] < alpha
    table["recommended"] = np.where(table["significant"], table["best"], champion)
    table["tukey_pairs"] = [
        _tukey_pairs(r["_groups"], alpha) if r["significant"] else "" for _, r in table.iterrows()]
    return table.drop(columns="_groups"), champion


def _fold_values(folds: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """``code -> model -> fbeta per fold`` (fold order; codes sorted), from one sort of the
    table instead of a filter per code and model (9,000 codes x 6 models in a CV)."""
    ordered = folds.sort_values(["code", "model", "fold"], kind="stable")
    codes, models = ordered["code"].to_numpy(), ordered["model"].to_numpy()
    values = ordered["fbeta"].to_numpy(float)
    starts = np.flatnonzero(np.r_[True, (codes[1:] != codes[:-1]) | (models[1:] != models[:-1])])
    out: dict[str, dict[str, np.ndarray]] = {}
    for start, end in zip(starts, np.r_[starts[1:], len(values)], strict=True):
        out.setdefault(codes[start], {})[models[start]] = values[start:end]
    return out


def _tukey_pairs(groups: dict[str, np.ndarray], alpha: float) -> str:
    """The pairs Tukey's HSD (Tukey-Kramer for unequal folds) finds different at ``alpha``.

    A pair differs when its studentized range statistic exceeds the critical value
    ``q(1 - alpha; k, N - k)``: the same decision as ``scipy.stats.tukey_hsd``'s p-value
    ``< alpha``, but the critical value is computed once per (k, N - k) instead of a
    numerical integral per pair and code (144 s of a 4-minute demo CV for 1,200 codes).
    """
    names = list(groups)
    values = [np.asarray(v, float) for v in groups.values()]
    sizes = np.array([len(v) for v in values], float)
    means = np.array([v.mean() for v in values])
    dof = int(sizes.sum()) - len(values)
    mse = sum(float(((v - v.mean()) ** 2).sum()) for v in values) / dof
    critical = _studentized_range_critical(alpha, len(values), dof)
    pairs = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            with np.errstate(divide="ignore", invalid="ignore"):  # zero spread: no pair
                q = abs(means[i] - means[j]) / np.sqrt(mse / 2 * (1 / sizes[i] + 1 / sizes[j]))
            if np.isfinite(q) and q > critical:
                first, second = (i, j) if means[i] > means[j] else (j, i)
                pairs.append(f"{names[first]}>{names[second]}")
    return ", ".join(pairs)


@functools.lru_cache(maxsize=64)
def _studentized_range_critical(alpha: float, k: int, dof: int) -> float:
    from scipy import stats

    return float(stats.studentized_range.isf(alpha, k, dof))


def fbeta_per_code(y_true: list[str], y_pred: list[str], codes: list[str],
                   beta: float = BETA) -> pd.DataFrame:
    """Precision, recall and F-beta for each code (zero where undefined)."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, support = precision_recall_fscore_support(
        y_true, y_pred, labels=codes, beta=beta, average=None, zero_division=0)
    return pd.DataFrame({"code": codes, "precision": p, "recall": r, "fbeta": f,
                         "support": support})


def mcnemar(a: np.ndarray, b: np.ndarray, alternative: str = "two-sided"
            ) -> tuple[int, int, float]:
    """McNemar's exact test of two models' correctness on the same rows.

    Args:
        a: Whether model A is right, one boolean per row.
        b: Whether model B is right on the same rows.
        alternative: ``two-sided``, or ``greater`` (A right more often than B).

    Returns:
        ``(only_a, only_b, p)``: the rows only A gets right, the rows only B gets right, and
        the binomial test's p-value of ``only_a`` among those discordant rows (1 without any).

    Raises:
        ValueError: when ``a`` and ``b`` are not the same number of rows.
    """
    from scipy.stats import binomtest

    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"not the same rows: {a.shape} vs {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = (float(binomtest(only_a, only_a + only_b, 0.5, alternative=alternative).pvalue)
         if only_a + only_b else 1.0)
    return only_a, only_b, p
