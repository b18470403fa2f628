"""The ensembles in the cross-validation, without looking at the fold they are scored on.

For fold ``i`` of ``k``, from the single models' stored fold scores:

* each member's temperature is fitted on the **other** folds' scores (a seeded sample of at
  most ``calibration_rows`` rows, pooled);
* the routing table comes from the per-code tests over the **other** folds' F-beta values
  (:func:`routing_table`);
* the soft vote and the routed ensemble (:mod:`hscode.ensemble`) then predict fold ``i``'s
  rows, and their per-code precision / recall / F-beta join the fold table like any model's.

So an ensemble's cross-validated figures are as honest as a single model's: nothing it uses
on a fold was chosen on that fold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hscode.calibration import fit_temperature_blocks, softmax
from hscode.ensemble import route, vote
from hscode.selection.cv import load_fold_scores
from hscode.selection.stats import compare_models, fbeta_per_code


def routing_table(folds: pd.DataFrame, alpha: float) -> tuple[dict[str, str], str]:
    """``(code -> recommended model, base model)`` from the single models' fold table.

    The base is the single model with the highest mean F-beta; a code is routed to another
    model only where the per-code test found a significant difference and that model's
    mean was the highest (see :func:`hscode.selection.stats.compare_models`).
    """
    comparison, base = compare_models(folds, alpha)
    if comparison.empty:
        return {}, base
    routed = comparison[comparison["recommended"] != base]
    return dict(zip(routed["code"].astype(str), routed["recommended"], strict=True)), base


def _aligned(scores: np.ndarray, labels: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """``scores`` re-ordered to the ``target`` columns (absent codes: very unlikely)."""
    if list(labels) == list(target):
        return scores
    col = {c: j for j, c in enumerate(labels)}
    out = np.full((len(scores), len(target)), scores.min() - 50.0 if scores.size else 0.0,
                  dtype=scores.dtype)
    for j, c in enumerate(target):
        if c in col:
            out[:, j] = scores[:, col[c]]
    return out


def ensemble_folds(result_files: Mapping[str, Sequence[Path]], folds: pd.DataFrame,
                   kinds: Sequence[str], alpha: float, beta: float, seed: int = 42,
                   calibration_rows: int = 4000) -> list[dict[str, Any]]:
    """Fold results (``model, fold, accuracy, rows, per_code``) of each ensemble in ``kinds``.

    Args:
        result_files: Per member model, its fold result files in fold order.
        folds: The members' long fold table (``model, fold, code, fbeta, ...``).
        kinds: ``vote`` and/or ``routed``.
        alpha: Significance level of the per-code tests (routing).
        beta: F-beta's beta.
        seed: Seed of the calibration sample.
        calibration_rows: Rows (at most) a member's temperature is fitted on per fold.
    """
    members = list(result_files)
    if len(members) < 2 or not kinds:
        return []
    stored = {m: [load_fold_scores(f) for f in files] for m, files in result_files.items()}
    k = len(next(iter(stored.values())))
    rng = np.random.default_rng(seed)
    results = []
    for i in range(k):
        blocks = {}
        for m in members:
            others = [stored[m][j] for j in range(k) if j != i]
            per = max(1, calibration_rows // max(1, len(others)))
            sample = []
            for scores, labels, truth in others:
                take = rng.permutation(len(truth))[:per]
                sample.append((scores[take], [truth[t] for t in take], labels))
            blocks[m] = fit_temperature_blocks(sample)
        labels = stored[members[0]][i][1]
        truth = stored[members[0]][i][2]
        probs = {m: softmax(_aligned(stored[m][i][0], stored[m][i][1], labels), blocks[m])
                 for m in members}
        lab = np.asarray(labels, dtype=object)
        for kind in kinds:
            if kind == "vote":
                combined = vote(list(probs.values()))
            else:
                routing, base = routing_table(folds[folds["fold"] != i], alpha)
                combined = route(probs, labels, routing, base)[0]
            pred = list(lab[combined.argmax(axis=1)])
            per_code = fbeta_per_code(truth, pred, sorted(set(truth)), beta)
            results.append({
                "model": kind, "fold": i, "rows": len(truth),
                "accuracy": float(np.mean(np.asarray(pred) == np.asarray(truth))) if truth else 0.0,
                "per_code": per_code.to_dict(orient="records"),
                "temperatures": {m: round(t, 4) for m, t in blocks.items()}})
    return results
