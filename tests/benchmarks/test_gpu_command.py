"""benchmarks/gpu_command.sh: fits one device call and runs its steps on the CPU (DRY_RUN=1)."""
from __future__ import annotations

import json
import os
import subprocess
import tarfile
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
    # what a device call brings back: at most 8 files, none deeper than two folders under $OUT
    files = [path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) <= 8 and all(len(path.parts) <= 3 for path in files), files
    with tarfile.open(tmp_path / "gpu_check_sections.tar.gz") as archive:
        assert "gpu_check_sections/sanitizer.json" in archive.getnames()
