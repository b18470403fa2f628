"""The installed stack really works: imports do not silently exit, Horovod averages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hscode import doctor

pytestmark = pytest.mark.integration


def test_versions_java_and_imports() -> None:
    for check in (doctor.check_versions(), doctor.check_java(), doctor.check_imports()):
        assert check.ok, f"{check.name}: {check.detail}"
    assert "tensorflow-cpu=2.15.1" in doctor.check_versions().detail


def test_horovod_two_ranks_train_identical_weights() -> None:
    # horovod.run pickles the training function into 2 Gloo ranks; run it from a child
    # process with a __main__ guard, as Horovod requires of the calling script.
    code = ("from hscode.doctor import run_horovod_check\n"
            "if __name__ == '__main__':\n"
            "    import json; print('RESULT=' + json.dumps(run_horovod_check(2)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT=")), None)
    assert line, proc.stderr[-3000:]
    import json

    results = json.loads(line[len("RESULT="):])
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert {r["size"] for r in results} == {2}
    # both ranks took part and ended with the same weights: gradients were averaged
    assert len({r["weights_sha256"] for r in results}) == 1
    assert all(r["loss"][-1] < r["loss"][0] for r in results)
