"""Two ensembles of the calibrated single models, and their artifacts.

**Soft vote** (``vote``): the mean of the members' calibrated probabilities; the code is its
argmax.

**Per-code routed ensemble** (``routed``): the paper's per-code recommendation made
operational. The cross-validation's per-code test names, for every HS code, the model to
trust for it (the significantly best model on that code's folds, else the overall best
single model, the *base*). A product's code is decided as follows:

1. every member predicts its top code ``c_m`` with calibrated probability ``p_m``;
2. a member is *in charge* of its prediction when the routing table names it for ``c_m``
   (codes absent from the table are the base model's);
3. of the members in charge, the one with the highest ``p_m`` decides (ties: the first in
   member order); when none is, the base model decides;
4. the product's probabilities (its confidence, its top-2 and top-3) are the deciding
   member's calibrated probabilities.

So a specialist overrides the base model only on the codes where the folds showed it is
better, and only when it predicts such a code itself.

An ensemble artifact holds ``ensemble.json`` (kind, members, base, routing), a copy of each
member artifact under ``members/<name>/`` (so a registry version is self-contained), and the
usual side files; :func:`hscode.predictor.load_predictor` loads it like any model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ENSEMBLES = ("vote", "routed")


def vote(probs: Sequence[np.ndarray]) -> np.ndarray:
    """Soft vote: the mean of the members' probability rows (summed in place: stacking a CV
    fold's members first costs more than the sum)."""
    probs = list(probs)
    out = np.array(probs[0], dtype=float)
    for p in probs[1:]:
        out += p
    out /= len(probs)
    return out


def route(probs: Mapping[str, np.ndarray], labels: Sequence[str], routing: Mapping[str, str],
          base: str) -> tuple[np.ndarray, np.ndarray]:
    """The routed ensemble's probability rows and, per row, the index of the deciding member
    (in ``probs`` order). See the module docstring for the rule.

    Raises:
        ValueError: when ``base`` is not a member.
    """
    names = list(probs)
    if base not in names:
        raise ValueError(f"base model {base!r} is not a member of {names}")
    n = len(next(iter(probs.values())))
    choice = np.full(n, names.index(base))
    best = np.full(n, -1.0)
    for j, m in enumerate(names):
        p = probs[m]
        top = p.argmax(axis=1)
        owns = np.array([routing.get(c, base) == m for c in labels], dtype=bool)  # per code
        in_charge = owns[top]
        conf = p[np.arange(n), top]
        wins = in_charge & (conf > best)
        choice[wins], best[wins] = j, conf[wins]
    out = np.array(probs[base], dtype=float)  # each row from its deciding member, without
    for j, m in enumerate(names):  # stacking every member's probabilities
        if m != base:
            rows = choice == j
            out[rows] = probs[m][rows]
    return out, choice


@dataclass
class Ensemble:
    """Loaded members (calibrated predictors) and the rule that combines them."""

    kind: str
    members: dict[str, Any]  # name -> hscode.predictor.Predictor
    labels: list[str]
    base: str
    routing: dict[str, str]
    # texts -> member probabilities, kept only where given (ensembles of the same members
    # built and calibrated in one run share it; nightly scoring keeps nothing)
    memo: dict[tuple[str, ...], dict[str, np.ndarray]] | None = None

    def member_probabilities(self, texts: Sequence[str], batch_size: int = 2048
                             ) -> dict[str, np.ndarray]:
        def score() -> dict[str, np.ndarray]:
            return {m: p.predict_proba(texts, batch_size) for m, p in self.members.items()}

        if self.memo is None:
            return score()
        key = tuple(texts)
        if key not in self.memo:
            self.memo[key] = score()
        return self.memo[key]

    def predict_proba(self, texts: Sequence[str], batch_size: int = 2048) -> np.ndarray:
        probs = self.member_probabilities(texts, batch_size)
        if self.kind == "vote":
            return vote(list(probs.values()))
        return route(probs, self.labels, self.routing, self.base)[0]


def load_ensemble(artifact: Path, like: Ensemble | None = None) -> Ensemble:
    """Load an ensemble artifact's members (each with its own calibration).

    Args:
        artifact: The ensemble's folder.
        like: An ensemble loaded from copies of the same member artifacts (another kind
            built in the same run): its loaded members and its memo of member probabilities
            are shared instead of loading and scoring every member again (36 s of loading
            and 15 s of scoring per ensemble on the reference data).
    """
    from hscode.predictor import load_predictor

    spec = json.loads((artifact / "ensemble.json").read_text())
    labels = json.loads((artifact / "labels.json").read_text())
    if like is None:
        members = {m: load_predictor(artifact / "members" / m) for m in spec["members"]}
    elif list(like.members) == list(spec["members"]):
        members = like.members
    else:
        raise ValueError(f"{artifact} has members {spec['members']}, not {list(like.members)}")
    for m, p in members.items():
        if list(p.labels) != labels:
            raise ValueError(f"member {m} of {artifact} predicts other codes than the ensemble")
    return Ensemble(spec["kind"], members, labels, spec["base"], dict(spec["routing"]),
                    like.memo if like is not None else None)


def ensemble_spec(kind: str, members: Sequence[str], base: str,
                  routing: Mapping[str, str]) -> dict[str, Any]:
    """The ``ensemble.json`` of an ensemble: kind, members, base and (routed only) the codes
    sent to another model than the base."""
    routing = {c: m for c, m in routing.items() if m != base} if kind == "routed" else {}
    return {"kind": kind, "members": list(members), "base": base, "routing": routing}


def build_ensemble(kind: str, members: Mapping[str, Path], out_dir: Path, *, base: str,
                   routing: Mapping[str, str], lineage: Mapping[str, Any]) -> Path:
    """Write an ensemble artifact from trained member artifacts (copied in).

    Raises:
        ValueError: for an unknown kind, or members trained on different code sets.
    """
    from hscode.training.artifacts import write_metadata

    if kind not in ENSEMBLES:
        raise ValueError(f"unknown ensemble {kind!r}; choose from {ENSEMBLES}")
    labels = None
    for name, path in members.items():
        member_labels = json.loads((path / "labels.json").read_text())
        if labels is not None and member_labels != labels:
            raise ValueError(f"member {name} predicts other codes than the first member")
        labels = member_labels
        shutil.copytree(path, out_dir / "members" / name, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("checkpoints"))
    spec = ensemble_spec(kind, list(members), base, routing)
    (out_dir / "ensemble.json").write_text(json.dumps(spec, indent=2))
    write_metadata(out_dir, labels=list(labels or []),
                   params={"model": kind, "members": list(members), "base": base,
                           "routed_codes": len(spec["routing"])},
                   metrics={}, history={},
                   lineage={**lineage, "members": {m: str(p) for m, p in members.items()}})
    return out_dir
