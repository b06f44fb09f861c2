"""The ahead-of-time compile checks (test_kernels_aot.py: no spills, shared memory, 16-byte stores, wgmma)
under Triton 3.6, the version on the GPU machine, besides the suite's own Triton.

Triton changes how it allocates registers between versions (3.6 spilled tiles 3.9 fits, see
monarch_core/kernels/block_gemm.py), so a kernel verified with one version only is not verified for the
machine that runs it. `.ci/run` builds a virtual environment with Triton 3.6 over the suite's packages
(.venv-triton36); the test runs test_kernels_aot.py with its interpreter, in a subprocess. Without
that environment (a developer machine) it is skipped, saying how to make it.
"""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = Path(os.environ.get("TRITON36_PYTHON", ROOT / ".venv-triton36" / "bin" / "python"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_aot_checks_pass_under_triton_3_6():
    if not PYTHON.exists():
        pytest.skip(f"no Triton 3.6 environment at {PYTHON}: python -m venv --system-site-packages .venv-triton36 "
                    "&& .venv-triton36/bin/pip install triton==3.6.0")
    version = subprocess.run([str(PYTHON), "-c", "import triton; print(triton.__version__)"], capture_output=True,
                             text=True, cwd=ROOT).stdout.strip()
    assert version.startswith("3.6"), f"{PYTHON} has Triton {version!r}, not 3.6"
    done = subprocess.run([str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/monarch_core/test_kernels_aot.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=880, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout.splitlines()[-1], done.stdout[-500:]
