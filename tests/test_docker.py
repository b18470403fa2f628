"""The container files, checked without a Docker engine: references, pins, users, secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.unit
DOCKER = REPO / "docker"


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def _stages(dockerfile: Path) -> dict[str, list[str]]:
    """Instructions per stage (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    stages: dict[str, list[str]] = {}
    current = "_"
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            current = m.group(1) or f"stage{len(stages)}"
        stages.setdefault(current, []).append(line)
    return stages


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfiles_copy_existing_files_and_run_as_non_root(name: str) -> None:
    stages = _stages(DOCKER / name)
    for instructions in stages.values():
        for line in instructions:
            if line.upper().startswith("COPY") and "--from=" not in line:
                for src in line.split()[1:-1]:
                    if not src.startswith("--"):
                        assert (REPO / src).exists(), f"{name}: COPY {src} does not exist"
    final = list(stages.values())[-1]
    users = [ln.split()[1] for ln in final if ln.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), f"{name}: last stage runs as root"
    text = (DOCKER / name).read_text()
    assert "requirements.txt" in text
    assert not re.search(r"(PASSWORD|SECRET|TOKEN)\s*=\s*\S", text, re.I), "secret baked in"


def test_images_pin_the_same_versions_as_requirements() -> None:
    pins = _pins()
    cpu, gpu = (DOCKER / "Dockerfile").read_text(), (DOCKER / "Dockerfile.cuda").read_text()
    install = (REPO / "scripts" / "install.sh").read_text()
    horovod = re.search(r"HOROVOD_VERSION=([\d.]+)", install).group(1)
    uv = re.search(r"UV_VERSION=([\d.]+)", install).group(1)
    for text in (cpu, gpu):
        assert f"ARG HOROVOD_VERSION={horovod}" in text
        assert f"ARG UV_VERSION={uv}" in text
    assert f"ARG TF_VERSION={pins['tensorflow-cpu']}" in gpu  # the GPU build of the same TF
    assert "3.11" in cpu and "3.11" in gpu


def test_compose_stack_services_entry_points_and_no_secrets() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert {"airflow-db", "warehouse", "spark-master", "spark-worker-1", "spark-worker-2",
            "airflow-init", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor"} <= set(services)
    stages = _stages(DOCKER / "Dockerfile")
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).is_file(), name
            assert build["target"] in stages, f"{name}: no stage {build['target']}"
        for key, value in (svc.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET", key):
                assert str(value).startswith("${"), f"{name}: {key} is not from the environment"
            if "://" in str(value) and "@" in str(value):
                assert "${" in str(value), f"{name}: {key} holds a literal credential"
    workers = [s for n, s in services.items() if n.startswith("spark-worker")]
    assert all("spark://spark-master:7077" in s["command"] for s in workers)
    assert services["spark-master"]["command"][:2] == ["spark-class",
                                                      "org.apache.spark.deploy.master.Master"]
    for component in ("api-server", "scheduler", "dag-processor"):
        assert any(s.get("command") == [component] for s in services.values()), component
    entry = DOCKER / "airflow-entrypoint.sh"
    assert entry.is_file() and entry.stat().st_mode & 0o111
    conn = services["airflow-scheduler"]["environment"]["AIRFLOW_CONN_SPARK_DEFAULT"]
    assert "spark-master" in conn and "7077" in conn
    assert (DOCKER / ".env.example").is_file()
    assert "docker/.env" in (REPO / ".gitignore").read_text()
