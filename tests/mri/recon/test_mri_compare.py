"""`mri compare` as an untuned study of the engine (mri.recon.compare): the cells of the paper's Tables 4
and 5 on a folder of scans without meta.json splits, nothing tuned, every run trained exactly `epochs`
epochs on the first N scans, per-slice values that agree with `evaluation.evaluate`, and the command line."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.errors import ConfigError
from mri.recon.compare import compare_spec, run_compare

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def compared(scan_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    results = run_compare(scan_dir, ("zf", "msense", "unrolled-fft"), (2.0,), (1, 2), epochs=1, out_dir=out,
                          device="cpu", n_test_scans=1, scale="tiny", batch_size=2)
    return out, results


def test_every_cell_runs_untuned_on_the_first_scans_and_tests_on_the_last(compared, scan_dir):
    out, results = compared
    assert results["status"]["complete"] and set(results["cells"]) == {"2-2", "2-1"}
    for label, n_train in (("2-2", 2), ("2-1", 1)):
        methods = results["cells"][label]["methods"]
        assert set(methods) == {"zf", "msense", "unrolled-fft"}
        for name, method in methods.items():
            assert method["trials"]["total"] == 0 and method["chosen"] is None
            (run,) = method["runs"]
            assert run["info"]["test_scans"] == ["SCAN_002"] and len(run["per_sample"]["psnr"]) == 3
            if method["trained"]:
                config = json.loads((out / run["run_dir"] / "config.json").read_text())
                assert config["resolved"]["train_scans"] == [f"SCAN_{i:03d}" for i in range(n_train)]
                assert config["masks"] == "fixed" and config["scale"] == "tiny" and len(run["curve"]) == 0
                lines = (out / run["run_dir"] / "metrics.jsonl").read_text().splitlines()
                assert len(lines) == 1  # exactly `epochs` epochs
    assert (out / "report.md").read_text().count("unrolled-fft vs zf") == 2


def test_per_slice_values_agree_with_evaluate_and_the_differences_with_them(compared, scan_dir):
    from mri.recon.evaluation import evaluate
    from mri.recon.training import load_model

    out, results = compared
    cell = results["cells"]["2-1"]
    run = cell["methods"]["unrolled-fft"]["runs"][0]
    model, _ = load_model(out / run["run_dir"], "best")
    report = evaluate(model, scan_dir, 2.0, ["SCAN_002"], device="cpu", keep_examples=False)
    psnr = np.array(run["per_sample"]["psnr"])
    assert -10 * np.log10(np.mean(10 ** (-psnr / 10))) == pytest.approx(report["per_volume"][0]["psnr"], abs=1e-6)
    comp = next(c for c in cell["comparisons"] if c["method"] == "unrolled-fft")
    zf = cell["methods"]["zf"]["runs"][0]["per_sample"]["psnr"]
    assert comp["baseline"] == "zf" and comp["result"]["estimate"] == pytest.approx(psnr.mean() - np.mean(zf))


def test_bad_comparisons_are_refused_before_anything_runs(scan_dir, tmp_path):
    with pytest.raises(ConfigError, match="undersampling factors > 1"):
        compare_spec(scan_dir, ("zf",), (-2.0,), (1,), epochs=1)
    with pytest.raises(ConfigError, match="nowhere: no such data folder"):
        compare_spec(tmp_path / "nowhere", ("zf",), (2.0,), (1,), epochs=1)
    with pytest.raises(ConfigError, match="unknown"):
        compare_spec(scan_dir, ("zf", "no-such-model"), (2.0,), (1,), epochs=1)
    with pytest.raises(ConfigError, match="not enough for 3 training"):
        run_compare(scan_dir, ("zf",), (2.0,), (3,), epochs=1, out_dir=tmp_path / "o", device="cpu")


def test_cli_runs_a_comparison_and_writes_the_report(scan_dir, tmp_path):
    out = tmp_path / "cmp"
    done = subprocess.run([sys.executable, "run.py", "mri", "compare", "--data", str(scan_dir), "--models", "zf",
                           "msense", "--accelerations", "2", "--n-train-scans", "1", "--n-test-scans", "1",
                           "--epochs", "1", "--scale", "tiny", "--device", "cpu", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "msense vs zf" in done.stdout and (out / "report.png").stat().st_size > 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["records"]) == 2 * 3 * 3  # (zf, msense) × 3 test slices × (psnr, ssim, nmse)
