"""The installed stack really works: versions, Java, imports that do not silently exit.

Horovod's averaging across two ranks is checked once, in tests/test_training.py (the
ranks end with identical weights), and on a standalone cluster in tests/test_cluster.py.
"""

from __future__ import annotations

import pytest

from hscode import doctor


@pytest.mark.integration
def test_versions_java_and_imports() -> None:
    for check in (doctor.check_versions(), doctor.check_java(), doctor.check_imports()):
        assert check.ok, f"{check.name}: {check.detail}"
    assert "tensorflow-cpu=2.15.1" in doctor.check_versions().detail


@pytest.mark.integration
def test_the_accelerator_check_reports_this_cpu_install() -> None:
    check = doctor.check_accelerators()
    assert check.ok, check.detail
    assert check.detail == "tensorflow CPU build, 0 GPU(s) visible, horovod NCCL no"


@pytest.mark.unit
@pytest.mark.parametrize(("info", "ok"), [
    ({"cuda_build": False, "gpus": 0, "horovod_nccl": False}, True),   # the CPU venv
    ({"cuda_build": True, "gpus": 0, "horovod_nccl": True}, True),     # CUDA image, no GPU
    ({"cuda_build": True, "gpus": 8, "horovod_nccl": True}, True),     # CUDA image on GPUs
    ({"cuda_build": True, "gpus": 2, "horovod_nccl": False}, False),   # GPUs without NCCL
])
def test_gpus_without_horovod_nccl_fail_the_accelerator_check(info: dict, ok: bool) -> None:
    check = doctor.accelerator_check(info)
    assert check.ok is ok
    assert f"{info['gpus']} GPU(s) visible" in check.detail
    assert ("rebuild Horovod" in check.detail) is not ok
