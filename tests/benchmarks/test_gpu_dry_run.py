"""`run.py bench gpu --dry-run`: the GPU check's own code at tiny sizes on the CPU, end to end."""
from __future__ import annotations

import json

import pytest

import run
from benchmarks import gpu


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-gpu-dry")
    assert run.main(["bench", "gpu", "--dry-run", "--out", str(out)]) == 0
    return out, json.loads((out / "gpu_check.json").read_text())


def test_every_section_is_recorded_with_a_status(dry_run):
    out, result = dry_run
    assert result["dry_run"] and result["complete"]
    assert list(result["sections"]) == list(gpu.SECTIONS)
    for name, section in result["sections"].items():
        assert section["status"] in ("ok", "skipped", "error"), name
        assert section["status"] != "error", f"{name}: {section.get('error')}\n{section.get('traceback')}"
    # every section ran in its own process and left its log
    assert (out / "gpu_check_sections" / "kernels.log").exists()
    assert result["autotune"] is False  # fixed heuristic tiles by default
    # the GPU-only part is skipped with a reason, not silently
    assert result["sections"]["pytest_gpu"]["status"] == "skipped"
    assert "CUDA" in result["sections"]["pytest_gpu"]["reason"]
    for suffix in (".md", ".png"):
        assert (out / f"gpu_check{suffix}").stat().st_size > 0


def test_measurements_are_positive_and_name_the_environment(dry_run):
    _, result = dry_run
    env = result["environment"]
    assert env["torch"] and env["command"].startswith("python") and env["threads"] >= 1
    assert result["sections"]["ceilings"]["copy_GBps"] > 0
    rows = result["sections"]["kernels"]["rows"]
    assert {"dense", "torch", "fft"} <= {r["method"] for r in rows}
    assert {r["pass"] for r in rows} == {"fwd", "fwd+bwd"} and {r["dtype"] for r in rows} >= {"float32", "bfloat16"}
    assert all(r["seconds"] > 0 and 0 < r["copy_fraction"] for r in rows if "seconds" in r)
    # the Monarch DFT reproduces torch.fft (fp32-grade on the PyTorch path)
    dft = {r["method"]: r for r in result["sections"]["dft"]["rows"] if r["n"] == 64}
    assert dft["dft_c64_torch"]["rel_error_vs_fft"] < 1e-5
    steps = result["sections"]["fno_steps"]
    if steps["status"] == "ok":
        kinds = {r["kind"] for r in steps["rows"] if "seconds" in r}
        assert "fft" in kinds and "monarch" in kinds
        assert all(abs(r["ratio_to_fft"] - 1) < 1e-12 for r in steps["rows"] if r["kind"] == "fft")
    assert result["sections"]["ns_generation"]["rows"][0]["sample_steps_per_s"] > 0


def test_existing_results_are_not_overwritten(dry_run):
    from common.errors import RunExistsError

    out, _ = dry_run
    with pytest.raises(RunExistsError):
        gpu.run(gpu_args(out, overwrite=False))


def test_a_failing_section_records_its_error_and_the_rest_still_runs(monkeypatch):
    import torch

    def broken(ctx):
        raise RuntimeError("kernel exploded")

    monkeypatch.setitem(gpu.RUNNERS, "ceilings", broken)
    ctx = {"device": torch.device("cpu"), "cfg": gpu.DRY, "budget": gpu.Budget(60.0), "root": "."}
    results = gpu.run_sections(ctx, ("ceilings", "kernels", "ns_generation"))
    assert results["ceilings"]["status"] == "error" and "kernel exploded" in results["ceilings"]["error"]
    assert results["kernels"]["status"] == "skipped"  # no ceilings: no fractions, said so
    assert results["ns_generation"]["status"] == "ok"


def test_a_spent_budget_skips_what_is_left():
    import torch

    ctx = {"device": torch.device("cpu"), "cfg": gpu.DRY, "budget": gpu.Budget(0.0), "root": "."}
    results = gpu.run_sections(ctx, ("ceilings", "ns_generation"))
    assert all(r["status"] == "skipped" and "budget" in r["reason"] for r in results.values())


def test_a_section_process_that_dies_keeps_its_rows_and_the_next_still_runs(tmp_path, monkeypatch):
    """A CUDA fault kills the process; here os.abort() after the first finished kernel case does."""
    import torch

    monkeypatch.setenv(gpu.ABORT_ENV, "kernels")
    ctx = {"device": torch.device("cpu"), "cfg": gpu.DRY, "budget": gpu.Budget(120.0),
           "root": str(gpu.Path(gpu.__file__).resolve().parents[1])}
    results = gpu.run_sections_isolated(ctx, ("ceilings", "kernels", "ns_generation"), tmp_path)
    assert results["ceilings"]["status"] == "ok" and results["ns_generation"]["status"] == "ok"
    killed = results["kernels"]
    assert killed["status"] == "error" and "before finishing" in killed["error"]
    assert killed["rows"] and all(r["n"] == gpu.DRY["sizes"][0] for r in killed["rows"])  # the first case only


def test_default_output_is_under_OUT_when_set(monkeypatch, tmp_path):
    monkeypatch.setenv("OUT", str(tmp_path))
    assert gpu.default_out(False) == tmp_path / "bench-gpu"
    monkeypatch.delenv("OUT")
    assert str(gpu.default_out(False)) == "benchmarks/results"


@pytest.mark.slow
def test_sanitizer_cases_match_the_pytorch_path_under_the_interpreter():
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "benchmarks.sanitize_cases", "--device", "cpu"],
                          capture_output=True, text=True, env={**os.environ, "TRITON_INTERPRET": "1"},
                          cwd=str(gpu.Path(gpu.__file__).resolve().parents[1]), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "one_pass=1 fwd" in done.stdout and "one_pass=0 bwd" in done.stdout and "adjoint" in done.stdout


def gpu_args(out, overwrite):
    import argparse

    return argparse.Namespace(dry_run=True, device="cpu", out=str(out), overwrite=overwrite, sections=None,
                              budget_s=60.0, autotune=False, in_process=False)
