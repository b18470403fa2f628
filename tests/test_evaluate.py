"""The paired comparison of ``hscode evaluate --all-candidates``: a candidate against the SVM
baseline on the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from hscode.evaluate import compare_with_reference, markdown_table, paired_difference


def _pair(n: int, wins: int, losses: int, both: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness of a model and a reference: ``wins`` rows only the model gets right,
    ``losses`` only the reference, ``both`` both, the rest neither."""
    model, ref = np.zeros(n, bool), np.zeros(n, bool)
    model[:wins] = True
    ref[wins:wins + losses] = True
    model[wins + losses:wins + losses + both] = ref[wins + losses:wins + losses + both] = True
    return model, ref


@pytest.mark.unit
def test_a_difference_carried_by_many_rows_is_significant_and_signed() -> None:
    model, ref = _pair(1000, wins=40, losses=10, both=600)
    d = paired_difference(model, ref)
    assert d["diff"] == pytest.approx(0.03)
    assert 0 < d["low"] < 0.03 < d["high"] and d["p"] < 1e-4
    back = paired_difference(ref, model)  # the same pair the other way round
    assert back["diff"] == pytest.approx(-0.03) and back["p"] == pytest.approx(d["p"])
    assert back["high"] == pytest.approx(-d["low"])


@pytest.mark.unit
def test_a_few_rows_either_way_are_not_a_difference() -> None:
    # 0.07 points on a 2,746-row hold-out: the interval holds zero, McNemar does not reject
    model, ref = _pair(2746, wins=6, losses=4, both=1800)
    d = paired_difference(model, ref)
    assert d["low"] < 0 < d["high"] and d["p"] > 0.5
    same = paired_difference(model, model)
    assert same == {"diff": 0.0, "low": 0.0, "high": 0.0, "p": 1.0}
    with pytest.raises(ValueError, match="not the same rows"):
        paired_difference(model, ref[:-1])


@pytest.mark.unit
def test_candidates_are_compared_with_the_svm_when_it_was_evaluated() -> None:
    model, ref = _pair(200, wins=30, losses=2, both=100)
    rows = [{"model": "textcnn"}, {"model": "svm"}]
    compare_with_reference(rows, [model, ref])
    assert rows[1]["hs6_vs_svm"] == 0.0 and rows[1]["hs6_vs_svm_p"] == 1.0
    assert rows[0]["hs6_vs_svm"] == pytest.approx(0.14) and rows[0]["hs6_vs_svm_p"] < 1e-5
    table = markdown_table(rows)
    assert "| hs6_vs_svm |" in table and "| 0.140 |" in table
    alone = [{"model": "textcnn"}]  # the champion alone: nothing to compare with
    compare_with_reference(alone, [model])
    assert alone == [{"model": "textcnn"}]
