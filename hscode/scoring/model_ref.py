"""Which model scores tonight: the registry's champion, a pinned version, or a fallback.

Order: an explicit registry version (``--model-version`` / ``scoring.model_version``, used
by backfills), else the ``champion`` alias, else - before any selection has run - the newest
trained artifact of any model, so a fresh installation can score after ``hscode train``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hscode.catalog import Catalog

# a trained single model's file: a network, the SVM, the SVM as written before model.npz
MODEL_FILES = ("model.keras", "model.npz", "model.skops")


@dataclass(frozen=True)
class ModelRef:
    """A model artifact and how it was chosen."""

    path: Path
    name: str  # textcnn, lstm, dnn, svm
    version: str  # "registry:<n>" or the artifact's folder name
    source: str  # pinned | champion | latest_artifact


def _artifact_model(path: Path) -> str:
    params = path / "params.json"
    return str(json.loads(params.read_text()).get("model", path.parent.name)) \
        if params.is_file() else path.parent.name


def resolve_model(catalog: Catalog, version: int | None = None) -> ModelRef:
    """The artifact to score with.

    Raises:
        FileNotFoundError: when the pinned version does not exist or no model was trained.
    """
    from hscode.selection.registry import Registry

    registry = Registry(catalog.registry)
    if version is not None:
        entry = next((v for v in registry.versions() if v["version"] == version), None)
        if entry is None:
            known = [v["version"] for v in registry.versions()]
            raise FileNotFoundError(f"model version {version} is not in the registry "
                                    f"({catalog.registry}); known versions: {known}")
        return ModelRef(Path(entry["path"]), entry["model"], f"registry:{version}", "pinned")
    champion = registry.alias("champion")
    if champion is not None:
        return ModelRef(Path(champion["path"]), champion["model"],
                        f"registry:{champion['version']}", "champion")
    artifacts = [p.parent for p in catalog.models.glob("*/*/labels.json")
                 if any((p.parent / f).is_file() for f in MODEL_FILES)]
    if not artifacts:
        raise FileNotFoundError(f"no model to score with: no champion in {catalog.registry} and "
                                f"no trained artifact under {catalog.models}; run `hscode train` "
                                "(or `hscode select`) first")
    newest = max(artifacts, key=lambda p: p.name)
    return ModelRef(newest, _artifact_model(newest), newest.name, "latest_artifact")
