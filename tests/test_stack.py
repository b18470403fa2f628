"""The installed stack really works: versions, Java, imports that do not silently exit.

Horovod's averaging across two ranks is checked once, in tests/test_training.py (the
ranks end with identical weights), and on a standalone cluster in tests/test_cluster.py.
"""

from __future__ import annotations

import pytest

from hscode import doctor

pytestmark = pytest.mark.integration


def test_versions_java_and_imports() -> None:
    for check in (doctor.check_versions(), doctor.check_java(), doctor.check_imports()):
        assert check.ok, f"{check.name}: {check.detail}"
    assert "tensorflow-cpu=2.15.1" in doctor.check_versions().detail
