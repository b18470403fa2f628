"""A directory model registry with versions and aliases (``champion``).

Layout: ``<root>/registry.json`` (versions, aliases, decisions) and
``<root>/versions/<n>/`` (an immutable copy of the registered artifact). Writes replace
``registry.json`` atomically. A directory was chosen over MLflow: it needs no server or extra
dependency stack, works offline and on any shared filesystem, and stays readable by a person.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Decision:
    """The promotion gate's verdict on a challenger against the champion."""

    promote: bool
    reason: str
    champion_accuracy: float | None
    challenger_accuracy: float
    champion_only_right: int  # b: champion right, challenger wrong
    challenger_only_right: int  # c: challenger right, champion wrong
    p_value: float | None  # one-sided: challenger worse
    max_regression: float = 0.0
    rows: int = 0  # calibration rows compared (neither model trained on them)
    rows_left_out: int = 0  # calibration rows either model had trained on


def promotion_decision(champion_correct: np.ndarray | None, challenger_correct: np.ndarray,
                       alpha: float = 0.05, max_regression: float = 0.005) -> Decision:
    """Non-inferiority gate on the same rows (the calibration split in :func:`promote`).

    The challenger is promoted only if (1) its accuracy is at most ``max_regression`` below
    the champion's and (2) it is not significantly worse: exact one-sided McNemar test on
    the discordant pairs; with ``b`` rows only the champion gets right and ``c`` rows only
    the challenger gets right, ``p = P(X >= b)`` for ``X ~ Binomial(b + c, 1/2)``, refused
    when ``p < alpha``.
    """
    from hscode.selection.stats import mcnemar

    chal = np.asarray(challenger_correct, bool)
    n = len(chal)
    if champion_correct is None:
        return Decision(True, "no champion yet", None, float(chal.mean()) if n else 0.0, 0, 0,
                        None, max_regression, n)
    champ = np.asarray(champion_correct, bool)
    if champ.shape != chal.shape:
        raise ValueError("champion and challenger must be scored on the same hold-out rows")
    if not n:
        return Decision(False, "no hold-out rows that neither model trained on", None, 0.0,
                        0, 0, None, max_regression, 0)
    b, c, p = mcnemar(champ, chal, alternative="greater")
    acc_champ, acc_chal = float(champ.mean()), float(chal.mean())
    gap = acc_champ - acc_chal
    if gap > max_regression:
        promote, reason = False, (f"challenger {gap:.4f} below the champion (more than the "
                                  f"allowed {max_regression})")
    elif p < alpha:
        promote, reason = False, f"challenger significantly worse (McNemar p={p:.4g} < {alpha})"
    else:
        promote, reason = True, (f"challenger within {max_regression} of the champion "
                                 f"(difference {-gap:+.4f}) and not significantly worse "
                                 f"(McNemar p={p:.4g} >= {alpha})")
    return Decision(promote, reason, acc_champ, acc_chal, b, c, p, max_regression, n)


class Registry:
    """The registry folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.file = root / "registry.json"

    def _load(self) -> dict[str, Any]:
        if self.file.is_file():
            return json.loads(self.file.read_text())
        return {"versions": [], "aliases": {}, "decisions": []}

    def _save(self, data: dict[str, Any]) -> None:
        from hscode.files import atomic_write_text

        atomic_write_text(self.file, json.dumps(data, indent=2, default=str))

    def versions(self) -> list[dict[str, Any]]:
        return self._load()["versions"]

    def register(self, artifact: Path, model: str, metrics: dict[str, Any]) -> int:
        """Copy ``artifact`` in as the next version; return its number."""
        data = self._load()
        existing = [v for v in data["versions"] if v["source"] == str(artifact)]
        if existing:  # registering the same artifact twice is a no-op
            return int(existing[0]["version"])
        version = 1 + max((v["version"] for v in data["versions"]), default=0)
        target = self.root / "versions" / str(version)
        shutil.copytree(artifact, target, dirs_exist_ok=False,
                        ignore=shutil.ignore_patterns("checkpoints"))
        data["versions"].append({"version": version, "model": model, "source": str(artifact),
                                 "path": str(target), "metrics": metrics,
                                 "registered_at": dt.datetime.now(dt.UTC).isoformat()})
        self._save(data)
        return version

    def decisions(self) -> list[dict[str, Any]]:
        """Every promotion decision, oldest first (each with its time, ``at``)."""
        return self._load()["decisions"]

    def alias(self, name: str = "champion") -> dict[str, Any] | None:
        """The version entry an alias points to, if any."""
        data = self._load()
        v = data["aliases"].get(name)
        return next((e for e in data["versions"] if e["version"] == v), None)

    def record(self, version: int, decision: Decision, alias: str = "champion") -> None:
        """Keep the decision; move the alias when it says promote."""
        data = self._load()
        data["decisions"].append({"version": version, "alias": alias, **asdict(decision),
                                  "at": dt.datetime.now(dt.UTC).isoformat()})
        if decision.promote:
            data["aliases"][alias] = version
        self._save(data)
