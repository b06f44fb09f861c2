"""benchmarks/gpu_command.sh: fits one device call and runs its steps on the CPU (DRY_RUN=1)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_command.sh"


def test_the_command_fits_a_device_call_and_parses():
    assert len(SCRIPT.read_text()) <= 2000
    for script in (SCRIPT, ROOT / "benchmarks" / "download_wheels.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.slow
def test_dry_run_writes_everything_under_OUT(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "DRY_RUN": "1", "BUDGET_S": "25", "OMP_NUM_THREADS": "1"}
    subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, check=True, timeout=400, capture_output=True)
    log = (tmp_path / "gpu_command.log").read_text()
    assert "bench gpu exit 0" in log
    result = json.loads((tmp_path / "bench-gpu" / "gpu_check.json").read_text())
    assert result["complete"] and result["sections"]["sanitizer"]["status"] == "ok"
