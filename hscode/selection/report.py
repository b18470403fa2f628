"""One self-contained HTML report per selection run, for a compliance lead to read."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _fig(width: float = 9, height: float = 4) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def per_code_plot(folds: pd.DataFrame, top: int = 25) -> str:
    """Mean F-beta per model for the codes with the most validation rows."""
    support = folds.groupby("code")["support"].sum().nlargest(top).index
    means = (folds[folds["code"].isin(support)].groupby(["code", "model"])["fbeta"].mean()
             .unstack("model").reindex(support))
    fig, ax = _fig(11, 4)
    means.plot.bar(ax=ax, width=0.8)
    ax.set_ylabel("mean F-beta (beta=1.2)")
    ax.set_title(f"Per-code F-beta, {top} most frequent codes")
    ax.set_ylim(0, 1)
    return _png(fig)


def fold_box_plot(fold_accuracy: pd.DataFrame) -> str:
    """Distribution of fold accuracy per model."""
    fig, ax = _fig(6, 3.5)
    models = sorted(fold_accuracy["model"].unique())
    ax.boxplot([fold_accuracy.loc[fold_accuracy["model"] == m, "accuracy"] for m in models])
    ax.set_xticks(range(1, len(models) + 1), models)
    ax.set_ylabel("fold accuracy (HS6)")
    ax.set_title("Cross-validation accuracy by fold")
    return _png(fig)


def confusion_plot(y_true: list[str], y_pred: list[str], top: int = 12) -> str:
    """Confusion matrix (row-normalised) of the most frequent hold-out codes."""
    from sklearn.metrics import confusion_matrix

    codes = list(pd.Series(y_true).value_counts().index[:top])
    cm = confusion_matrix(y_true, y_pred, labels=codes).astype(float)
    cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = _fig(7, 6)
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(codes)), codes, rotation=90)
    ax.set_yticks(range(len(codes)), codes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Champion on the hold-out: top codes (row share)")
    fig.colorbar(im, ax=ax)
    return _png(fig)


def level_plot(holdout: dict[str, dict[str, float]]) -> str:
    """HS2 / HS4 / HS6 hold-out accuracy per model (baseline included)."""
    frame = pd.DataFrame({m: {f"HS{d}": v.get(f"hs{d}_accuracy", np.nan) for d in (2, 4, 6)}
                          for m, v in holdout.items()})
    fig, ax = _fig(7, 3.5)
    frame.plot.bar(ax=ax, rot=0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("hold-out accuracy")
    ax.set_title("Accuracy by HS level")
    return _png(fig)


def reliability_plot(outcomes: dict[str, dict[str, Any]]) -> str:
    """Reliability diagram: accuracy per confidence bin on the test split, one line per
    candidate (calibrated confidence; the diagonal is a perfect promise)."""
    from hscode.calibration import reliability_table

    fig, ax = _fig(6, 5)
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", label="perfect")
    for model, o in outcomes.items():
        t = reliability_table(np.asarray(o["confidence"], float), np.asarray(o["correct"], bool))
        t = t[t["rows"] > 0]
        ax.plot(t["confidence"], t["accuracy"], marker="o", label=model)
    ax.set_xlabel("confidence (calibrated)")
    ax.set_ylabel("accuracy on the test split")
    ax.set_title("Reliability")
    ax.legend(fontsize=8)
    return _png(fig)


def _table(frame: pd.DataFrame, float_fmt: str = "{:.4f}") -> str:
    return frame.to_html(index=False, float_format=lambda v: float_fmt.format(v), border=0,
                         classes="t", na_rep="")


def write_report(path: Path, *, summary: dict[str, Any], folds: pd.DataFrame,
                 fold_accuracy: pd.DataFrame, comparison: pd.DataFrame,
                 holdout: dict[str, dict[str, float]], y_true: list[str], y_pred: list[str],
                 decision: dict[str, Any], candidates: pd.DataFrame | None = None,
                 reliability: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write the report and return its path."""
    esc = html.escape
    facts = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>"
                    for k, v in summary.items())
    model_cols = [c for c in comparison.columns if c.startswith("mean_")]
    anova = comparison.sort_values("p_adjusted")[
        ["code", "test", "statistic", "p_value", "p_adjusted", "significant", "recommended",
         *model_cols, "tukey_pairs"]].head(60)
    wins = comparison["recommended"].value_counts().rename_axis("model").reset_index(
        name="codes recommended")
    hold = pd.DataFrame([{"model": m, **{k: v.get(k) for k in (
        "hs6_accuracy", "hs4_accuracy", "hs2_accuracy", "top3_accuracy", "macro_f1",
        "weighted_f1", "reviewed_test_rows", "reviewed_hs6_accuracy")}}
        for m, v in holdout.items()])
    dec = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>"
                  for k, v in decision.items())
    body = f"""<!doctype html><html><head><meta charset="utf-8">
<title>hscode model selection {esc(str(summary.get('ds', '')))}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table.t,table.f{{border-collapse:collapse;font-size:13px}}
.t td,.t th,.f td,.f th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}
h2{{border-bottom:1px solid #ddd;padding-bottom:4px}}</style></head><body>
<h1>HS code model selection</h1>
<p>Champion: <b>{esc(str(summary.get('champion')))}</b>. {esc(str(decision.get('reason', '')))}</p>
<p>{esc(str(summary.get('champion_reason', '')))}</p>
<h2>Candidates</h2>
<p>Every single model and both ensembles competed in the same cross-validation; the champion
has the highest mean F-beta (beta={esc(str(summary.get('beta')))}). Test-split figures come from
rows nothing was chosen on; the review threshold was chosen on the calibration split.
ECE: expected calibration error before/after temperature scaling.</p>
{_table(candidates) if candidates is not None else ""}
<h2>Calibration: reliability on the test split</h2>
{reliability_plot(reliability) if reliability else ""}
<table class="f">{facts}</table>
<h2>Hold-out accuracy (every candidate)</h2>{_table(hold)}{level_plot(holdout)}
<h2>Cross-validation</h2>{fold_box_plot(fold_accuracy)}{per_code_plot(folds)}
<h2>Per-code tests (one-way ANOVA or Kruskal-Wallis, Benjamini-Hochberg adjusted)</h2>
<p>Codes where a model is significantly better: {int(comparison['significant'].sum())} of
{len(comparison)}. Elsewhere the champion is recommended.</p>{_table(wins)}
{_table(anova)}
<h2>Champion confusion on the hold-out</h2>{confusion_plot(y_true, y_pred)}
<h2>Promotion decision (on the calibration split)</h2><table class="f">{dec}</table>
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path
