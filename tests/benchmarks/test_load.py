"""common.machine_load: CPU benchmark results are refused on a loaded machine unless --allow-loaded (then labelled)."""
import argparse
import json
import os

import pytest
import torch

import common.machine_load as load
from benchmarks import kernels, monarch
from common.machine_load import LoadGuard, MachineLoadedError

CORES = os.cpu_count() or 1


def fake_load(monkeypatch, *values):
    """os.getloadavg returning the given 1-minute loads one call after another (the last one repeats)."""
    values = list(values)

    def getloadavg():
        value = values.pop(0) if len(values) > 1 else values[0]
        return (value, value, value)

    monkeypatch.setattr(load.os, "getloadavg", getloadavg)


def test_idle_machine_records_before_and_after(monkeypatch):
    fake_load(monkeypatch, 0.25, 0.5)
    guard = LoadGuard(torch.device("cpu"))
    record = guard.finish()
    assert record == {"load_1min_before": 0.25, "load_1min_after": 0.5, "cores": CORES, "loaded": False,
                      "allow_loaded": False}
    assert guard.label() == ""


def test_loaded_cpu_is_refused_before_measuring_and_cuda_only_records(monkeypatch):
    fake_load(monkeypatch, CORES + 0.5)
    with pytest.raises(MachineLoadedError, match=f"load average was {CORES + 0.5:.2f} on {CORES} cores before") as info:
        LoadGuard(torch.device("cpu"), what="bench x")
    assert "--allow-loaded" in info.value.hint
    record = LoadGuard(torch.device("cuda")).finish()  # a GPU timing is not refused (and not labelled)
    assert record["load_1min_before"] == CORES + 0.5 and record["loaded"] is False


def test_load_rising_during_the_run_refuses_the_write(monkeypatch):
    fake_load(monkeypatch, 0.1, CORES + 1.0)
    guard = LoadGuard(torch.device("cpu"))
    with pytest.raises(MachineLoadedError, match="when it ended"):
        guard.finish()


def test_allow_loaded_writes_a_labelled_result(monkeypatch):
    fake_load(monkeypatch, CORES * 4.0)
    guard = LoadGuard(torch.device("cpu"), allow_loaded=True)
    assert guard.finish()["loaded"] is True
    assert "LOADED" in guard.label() and f"{CORES * 4.0:.2f}" in guard.label()


def test_a_load_at_the_core_count_is_not_loaded(monkeypatch):
    fake_load(monkeypatch, float(CORES))  # the benchmark's own threads can make it that busy
    assert LoadGuard(torch.device("cpu")).finish()["loaded"] is False


def _kernels_args(out, allow_loaded):
    return argparse.Namespace(device="cpu", out=str(out), allow_loaded=allow_loaded, repeats=1)


def _no_measurement(args):
    # stands in for the timing run (no timings on a shared machine): an empty result of the right shape
    from common.environment import describe_environment

    env = describe_environment(torch.device("cpu"))
    env.update(device_type="cpu", interpreted=False, fp32_precision="ieee", autotune=False, one_pass_available=True)
    return {"environment": env, "ceilings": {"copy_GBps": 1.0, "matmul_dtype": "float32", "matmul_size": 8,
                                              "matmul_TFLOPs": 1.0}, "rows": []}


def test_bench_kernels_writes_nothing_when_the_load_rises_and_labels_with_allow_loaded(tmp_path, monkeypatch):
    monkeypatch.setattr(kernels, "run", _no_measurement)
    fake_load(monkeypatch, 0.1, CORES + 2.0)
    with pytest.raises(MachineLoadedError):
        kernels.main(_kernels_args(tmp_path / "refused", allow_loaded=False))
    assert not (tmp_path / "refused").exists()
    fake_load(monkeypatch, 0.1, CORES + 2.0)
    assert kernels.main(_kernels_args(tmp_path / "labelled", allow_loaded=True)) == 0
    result = json.loads((tmp_path / "labelled" / "kernels_cpu.json").read_text())
    assert result["environment"]["load"]["loaded"] is True
    assert "LOADED" in (tmp_path / "labelled" / "kernels_cpu.md").read_text().splitlines()[0]


def test_bench_monarch_refuses_before_any_timing(tmp_path, monkeypatch):
    monkeypatch.setattr(monarch, "run", lambda *a, **k: pytest.fail("measured on a loaded machine"))
    fake_load(monkeypatch, CORES + 3.0)
    args = argparse.Namespace(device="cpu", dtype="float32", elements=[256], sizes=[16], repeats=1,
                              out=str(tmp_path), allow_loaded=False)
    with pytest.raises(MachineLoadedError):
        monarch.main(args)
    assert list(tmp_path.iterdir()) == []


def test_the_bench_parsers_take_allow_loaded():
    from benchmarks.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    for command in ("monarch", "kernels", "steps"):
        assert parser.parse_args([command, "--allow-loaded"]).allow_loaded is True
        assert parser.parse_args([command]).allow_loaded is False
        assert parser.parse_args([command, "--overwrite"]).overwrite is True  # results are never replaced silently


# the applications' timing benchmarks follow the same rule: (command, the function that would time)
APP_BENCHES = [(["bench", "data"], "pde.data.bench", "ns_throughput", "pde_data_bench"),
               (["bench", "mri-data"], "mri.data.bench", "run", "mri_data_cpu"),
               (["bench", "mri"], "mri.recon.benchmark", "bench_models", "mri_recon_bench")]


@pytest.mark.parametrize("command, module, timer, stem", APP_BENCHES, ids=[" ".join(c[0]) for c in APP_BENCHES])
def test_app_benches_refuse_a_loaded_cpu_and_existing_results_before_timing(tmp_path, monkeypatch, command, module,
                                                                             timer, stem):
    import importlib

    from common.errors import RunExistsError
    from run import build_parser

    monkeypatch.setattr(importlib.import_module(module), timer, lambda *a, **k: pytest.fail("timed anyway"))
    args = build_parser().parse_args([*command, "--device", "cpu", "--out", str(tmp_path)] if command[1] != "mri-data"
                                     else [*command, "--out", str(tmp_path)])
    fake_load(monkeypatch, CORES + 3.0)
    with pytest.raises(MachineLoadedError):
        args.func(args)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / f"{stem}.json").write_text("{}")
    fake_load(monkeypatch, 0.1)
    with pytest.raises(RunExistsError):
        args.func(args)
    assert build_parser().parse_args([*command, "--allow-loaded", "--overwrite"]).allow_loaded is True
