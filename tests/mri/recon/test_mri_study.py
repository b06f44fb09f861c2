"""The MRI application of the study engine (mri.recon.study): the mri-smoke preset end to end through
`run_study` on simulated 32² data, checked against independent computations (skimage's PSNR on the
stored checkpoints' reconstructions, the per-volume metrics of `evaluation.evaluate`, CG-SENSE
recomputed on the validation slices), a rerun that trains nothing, and `run.py mri study --dry-run`."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.errors import ConfigError
from common.study import StudySpec
from common.study.runner import run_study
from mri.recon.metrics import slice_metrics
from mri.recon.study import MriStudyApp
from mri.recon.study_presets import PRESETS

ROOT = Path(__file__).resolve().parents[3]


def smoke_spec(data_root) -> StudySpec:
    spec = PRESETS["mri-smoke"]()
    return spec.replace(problem={**spec.problem, "data_root": str(data_root)})


class CountingApp(MriStudyApp):
    """The application, recording every training run it is asked for."""

    def __init__(self):
        super().__init__()
        self.trained = []

    def train(self, request, callback):
        self.trained.append((request.phase, request.method.name, request.seed))
        super().train(request, callback)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("mri_study")
    spec = smoke_spec(root / "data")
    app = CountingApp()
    results = run_study(spec, app, root / "out", log=lambda text: None)
    return spec, root, app, results


def test_slice_metrics_match_skimage_per_slice_in_the_volume_range():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    target = rng.normal(size=(3, 16, 16)) + 1j * rng.normal(size=(3, 16, 16))
    target[2] *= 0.1  # a dark slice: scored in the volume's range, not its own
    pred = target + 0.05 * rng.normal(size=target.shape)
    values = slice_metrics(target, pred)
    t, p = np.abs(target), np.abs(pred)
    peak = t.max()
    assert values["psnr"] == pytest.approx([peak_signal_noise_ratio(a, b, data_range=peak) for a, b in zip(t, p)])
    assert values["ssim"] == pytest.approx([structural_similarity(a, b, data_range=peak) for a, b in zip(t, p)])
    assert values["nmse"] == pytest.approx([np.sum((a - b) ** 2) / np.sum(a ** 2) for a, b in zip(t, p)])
    with pytest.raises(ValueError):
        slice_metrics(target[0], pred[0])


def test_slice_flops_count_the_inverse_ffts_of_zero_filled_sense_and_nothing_for_numpy_baselines(scan_dir):
    import h5py

    from mri.recon.classical import ClassicalRecon
    from mri.recon.evaluation import slice_flops
    from mri.recon.zero_filled import ZeroFilledSense

    with h5py.File(scan_dir / "SCAN_000.h5") as f:
        _, h, w, _, coils = f["kspace"].shape
    # one inverse 2-D DFT per coil, as two 1-D transforms: 5·H·W·log2 H + 5·H·W·log2 W (common.flops)
    expected = coils * 5 * h * w * math.log2(h * w)
    assert slice_flops(ZeroFilledSense((h, w)), scan_dir, 2.0, "SCAN_000") == pytest.approx(expected, rel=1e-6)
    # a dense IDFT per axis is a (complex) matmul on each axis: 2 FLOPs per multiply-add
    dense = slice_flops(ZeroFilledSense((h, w), "dense"), scan_dir, 2.0, "SCAN_000")
    assert dense == pytest.approx(coils * 2 * h * w * (h + w), rel=1e-6)
    assert slice_flops(ClassicalRecon("cg-sense"), scan_dir, 2.0, "SCAN_000") is None


@pytest.mark.slow
def test_smoke_study_is_complete_with_every_per_slice_record(study):
    spec, root, app, results = study
    assert results["status"]["complete"] and not results["status"]["missing"]
    meta = json.loads(next((root / "data").glob("mri-tiny-*/meta.json")).read_text())
    test_ids, slices = sorted(meta["splits"]["test"]), spec.problem["sim_overrides"]["slices"]
    assert not set(test_ids) & (set(meta["splits"]["train"]) | set(meta["splits"]["val"]))
    n_samples = len(test_ids) * slices
    trained = [m for m in spec.methods if m.trained]
    n_runs = len(trained) * len(spec.seeds) + len(spec.methods) - len(trained)
    assert len(results["records"]) == n_runs * n_samples * 3  # psnr, ssim, nmse
    cell = results["cells"]["exact-4"]
    for name, method in cell["methods"].items():
        for run in method["runs"]:
            assert run["info"]["samples"] == [f"{s}/{i}" for s in test_ids for i in range(slices)]
            assert all(len(v) == n_samples and all(math.isfinite(x) for x in v) for v in run["per_sample"].values())
            assert (run["info"]["flops"] > 0) if method["trained"] else (run["info"]["flops"] is None)
    assert {t for phase, _, t in app.trained if phase == "tune"} == {spec.tune_seed}
    assert {t for phase, _, t in app.trained if phase == "final"} == set(spec.seeds)


@pytest.mark.slow
def test_per_slice_psnr_agrees_with_an_independent_evaluation_of_the_checkpoint(study):
    from mri.recon.evaluation import evaluate
    from mri.recon.training import load_model

    spec, root, app, results = study
    run = results["cells"]["exact-4"]["methods"]["modl-monarch"]["runs"][1]
    model, cfg = load_model(root / "out" / run["run_dir"], "best")
    report = evaluate(model, cfg.data_dir, 4.0, run["info"]["test_scans"], device="cpu", keep_examples=False)
    psnr = np.array(run["per_sample"]["psnr"]).reshape(len(report["per_volume"]), -1)
    # a volume's PSNR is R² over the mean of its slices' MSEs, each R² · 10^(−psnr/10) in the same range R
    from_slices = -10 * np.log10(np.mean(10 ** (-psnr / 10), axis=1))
    assert from_slices == pytest.approx([v["psnr"] for v in report["per_volume"]], abs=1e-6)
    # with problem.sample = "volume" a sample is a test subject: evaluate's per-volume values themselves
    by_volume = spec.replace(problem={**spec.problem, "sample": "volume"})
    result = MriStudyApp().evaluate(by_volume, {"track": "exact", "acceleration": 4.0}, spec.method("modl-monarch"),
                                    run["params"], root / "out" / run["run_dir"], "cpu")
    assert result["info"]["samples"] == run["info"]["test_scans"]
    assert result["per_sample"]["psnr"] == pytest.approx([v["psnr"] for v in report["per_volume"]])
    assert result["per_sample"]["ssim"] == pytest.approx([v["ssim"] for v in report["per_volume"]])
    assert result["per_sample"]["nmse"] == pytest.approx([v["nrmse"] ** 2 for v in report["per_volume"]])


@pytest.mark.slow
def test_the_spec_schedule_and_tuned_point_reach_the_training_runs(study):
    spec, root, app, results = study
    method = results["cells"]["exact-4"]["methods"]["modl-monarch"]
    assert set(method["chosen"]) == {"lr", "weight_decay", "transform_lr"}
    records = [json.loads(line) for line in
               (root / "out" / method["runs"][0]["run_dir"] / "metrics.jsonl").read_text().splitlines()]
    lr, epochs = method["chosen"]["lr"], spec.stopping.max_epochs
    # cosine to zero over the run's cap; a record holds the lr after its epoch's scheduler step
    expected = [lr * (1 + math.cos(math.pi * (e + 1) / epochs)) / 2 for e in range(len(records))]
    assert [r["lr"] for r in records] == pytest.approx(expected)
    config = json.loads((root / "out" / method["runs"][0]["run_dir"] / "config.json").read_text())
    assert config["transform_lr"] == pytest.approx(method["chosen"]["transform_lr"])
    assert config["weight_decay"] == pytest.approx(method["chosen"]["weight_decay"])


@pytest.mark.slow
def test_classical_baseline_is_tuned_on_validation_and_paired_with_every_seed(study):
    from mri.recon.classical import ClassicalRecon
    from mri.recon.study_data import data_dir
    from mri.recon.training import ReconSlices, dataset_splits, open_slices

    spec, root, app, results = study
    cell = results["cells"]["exact-4"]
    tuning = json.loads((root / "out" / "tuning" / "exact-4.json").read_text())["methods"]["cg-sense"]
    complete = [t for t in tuning["trials"] if t["state"] == "COMPLETE"]
    assert len(tuning["trials"]) == spec.tuning.trials and tuning["value"] == min(t["value"] for t in complete)
    lam = cell["methods"]["cg-sense"]["chosen"]["lamda"]
    assert cell["methods"]["cg-sense"]["runs"][0]["params"] == {"lamda": lam}
    # the objective recomputed by hand: minus the mean PSNR of CG-SENSE at λ over the validation slices
    folder = data_dir({**spec.problem}, "exact")
    val = dataset_splits(folder)["val"]
    data = ReconSlices(open_slices(folder, val, 4.0), range(len(val) * spec.problem["sim_overrides"]["slices"]))
    recon = ClassicalRecon("cg-sense", lam, spec.problem["classical_iters"])
    items = [data[i] for i in range(len(data))]
    targets = np.stack([abs(it["target"].numpy()) for it in items])
    preds = np.stack([abs(recon.reconstruct_slice(it["kspace"].numpy(), it["maps"].numpy(), it["mask"].numpy()))
                      for it in items])
    peak = targets.max()  # one validation subject: its volume's range
    mine = np.mean([10 * np.log10(peak ** 2 / np.mean((t - p) ** 2)) for t, p in zip(targets, preds)])
    assert tuning["value"] == pytest.approx(-mine, rel=1e-5)
    comps = {(c["method"], c["baseline"]): c for c in cell["comparisons"]}
    versus = comps[("modl-fft", "cg-sense")]
    assert versus["result"]["n_seeds"] == len(spec.seeds) and versus["goal"] == 1.0
    # the difference is that of the means over seeds and slices of the stored per-slice PSNRs
    fft = np.mean([r["per_sample"]["psnr"] for r in cell["methods"]["modl-fft"]["runs"]])
    cg = np.mean(cell["methods"]["cg-sense"]["runs"][0]["per_sample"]["psnr"])
    assert versus["result"]["estimate"] == pytest.approx(fft - cg)


@pytest.mark.slow
def test_a_rerun_trains_nothing_and_gives_the_same_records(study):
    spec, root, app, results = study
    again = CountingApp()
    rerun = run_study(spec, again, root / "out", log=lambda text: None)
    assert again.trained == []
    assert rerun["records"] == results["records"]


def test_methods_the_application_cannot_build_are_refused_before_any_data(tmp_path):
    spec = smoke_spec(tmp_path / "data").to_dict()
    spec["methods"][1]["options"] = {"model": "cg-sense"}
    with pytest.raises(ConfigError, match="not a trainable model"):
        run_study(StudySpec.from_dict(spec), MriStudyApp(), tmp_path / "out", log=lambda text: None)
    spec = smoke_spec(tmp_path / "data").to_dict()
    spec["problem"]["n_train"] = 3
    with pytest.raises(ConfigError, match="unknown MRI problem key"):
        run_study(StudySpec.from_dict(spec), MriStudyApp(), tmp_path / "out2", log=lambda text: None)
    spec = smoke_spec(tmp_path / "data").to_dict()
    spec["cells"] = [{"track": "exact", "acceleration": 6.0}]
    with pytest.raises(ConfigError, match="acceleration 6 has no stored mask"):
        run_study(StudySpec.from_dict(spec), MriStudyApp(), tmp_path / "out3", log=lambda text: None)
    assert not (tmp_path / "data").exists()


def test_every_preset_is_a_valid_spec_with_the_declared_comparisons():
    for name, make in PRESETS.items():
        spec = make()
        assert spec.application == "mri" and spec.metric == "psnr" and spec.statistic == "difference"
        names = {m.name for m in spec.methods}
        pairs = {(c.method, c.baseline) for c in spec.comparisons}
        if not any(m.trained for m in spec.methods) or name == "mri-msense":
            continue  # mri-cpu-baselines, mri-msense: below
        assert ("modl-fft", "cg-sense") in pairs
        learned = {k for k in names if k in ("modl-monarch", "modl-dense", "modl-diag")}
        assert learned and {(k, "modl-fft") for k in learned} <= pairs
        for method in spec.methods:
            knobs = set(method.knobs)
            if method.trained and method.settings_from is None:
                expected = {"lr", "weight_decay"} | ({"transform_lr"} if method.name != "modl-fft" else set())
                assert knobs == expected, method.name
    cpu = PRESETS["mri-cpu"]()
    assert len(cpu.seeds) >= 5 and cpu.tuning.trials >= 20 and cpu.tuning.pruner == "successive-halving"
    assert cpu.problem["n_train_scans"] == 16 and {c["acceleration"] for c in cpu.cells} == {4.0, 8.0}
    # the follow-ups measure on mri-cpu's subjects with its budget, each tuned on the track it is evaluated on
    mismatch, baselines, at_2x = PRESETS["mri-cpu-mismatch"](), PRESETS["mri-cpu-baselines"](), PRESETS["mri-cpu-2x"]()
    for follow_up in (mismatch, baselines, at_2x):
        assert follow_up.problem == cpu.problem and follow_up.tuning == cpu.tuning
        assert not any("tune_with" in c for c in follow_up.cells)
    assert {c["track"] for c in mismatch.cells} == {"mismatch"}
    assert at_2x.cells == [{"track": "exact", "acceleration": 2.0}] and at_2x.stopping == cpu.stopping
    assert {m.name for m in at_2x.methods} == {"modl-fft", "modl-monarch", "cg-sense", "l1-wavelet"}
    assert mismatch.method("modl-fft-oracle").settings_from == "modl-fft"
    assert {("modl-fft-oracle", "modl-fft"), ("modl-monarch", "modl-fft-oracle")} <= {
        (c.method, c.baseline) for c in mismatch.comparisons}
    assert {(c["track"], c["acceleration"]) for c in baselines.cells} == {
        ("exact", 2.0), ("exact", 4.0), ("exact", 8.0), ("mismatch", 4.0), ("mismatch", 8.0)}
    assert {m.options["classical"] for m in baselines.methods} >= {"cg-sense", "l1-wavelet", "bart-l1", "bart-l2"}
    assert all(not m.trained for m in baselines.methods)
    for method in baselines.methods:  # ℓ1: λ and the wavelet family, chosen on validation (issue 21 item 1)
        assert list(method.knobs) == (["lamda", "wavelet"] if method.options["classical"] == "l1-wavelet" else ["lamda"])
    assert set(baselines.space["wavelet"].choices) >= {"haar", "db4"}
    goals = {(c.method, c.baseline): c.goal for c in baselines.comparisons}
    assert goals[("l1-wavelet", "bart-l1")] == -1.0  # issue 21: within 1 dB of BART's pics -l1
    msense = PRESETS["mri-msense"]()  # issue 21 item 6: mSENSE vs dSENSE at 512×160, equal budgets
    assert msense.method("msense").knobs == msense.method("dsense").knobs == ("transform_lr",)
    assert ("msense", "dsense") in {(c.method, c.baseline) for c in msense.comparisons}
    assert len(msense.seeds) >= 5 and msense.tuning == cpu.tuning


def test_msense_has_ten_times_fewer_transform_parameters_than_dsense_at_512_by_160():
    from mri.recon.models import build_model

    counts = {name: sum(p.numel() for p in build_model(name, (512, 160), "small").parameters())
              for name in ("msense", "dsense")}
    assert counts == {"msense": 57472, "dsense": 575488}  # 2·Σ n·(b1 + b2) and 2·Σ n² real parameters


@pytest.mark.slow
def test_the_msense_preset_runs_end_to_end_at_a_tiny_size(tmp_path):
    """mri-msense's methods and comparisons on the smoke data (32², 2 seeds, 2 trials): every comparison gets a
    two-level interval over both seeds, and the report counts mSENSE's transform parameters below dSENSE's."""
    smoke, spec = PRESETS["mri-smoke"]().to_dict(), PRESETS["mri-msense"]().to_dict()
    spec["problem"] = {**smoke["problem"], "data_root": str(tmp_path / "data")}
    spec.update(cells=smoke["cells"], seeds=[0, 1], tuning=smoke["tuning"], stopping=smoke["stopping"], device="cpu")
    results = run_study(StudySpec.from_dict(spec), MriStudyApp(), tmp_path / "out", log=lambda text: None)
    cell = next(iter(results["cells"].values()))
    for comparison in cell["comparisons"]:
        assert comparison["result"]["method"] == "two-level bootstrap" and comparison["result"]["n_seeds"] == 2
    params = {name: cell["methods"][name]["info"]["parameters"]["transform"] for name in ("msense", "dsense", "zf")}
    assert 0 == params["zf"] < params["msense"] < params["dsense"]


@pytest.mark.slow
def test_cli_report_only_rewrites_the_report_naming_the_study_command(study):
    spec, root, app, results = study
    out = root / "out"
    (out / "report.md").unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "run.py", "mri", "study", "mri-smoke", "--out", str(out), "--report-only",
                           "--overwrite"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = (out / "report.md").read_text()
    assert f"python run.py mri study mri-smoke --out {out}   # the study" in text
    assert "--report-only --overwrite   # this report" in text
    assert json.loads((out / "report.json").read_text())["records"] == results["records"]


def test_cli_dry_run_prints_the_plan_without_running(tmp_path):
    out = tmp_path / "study"
    done = subprocess.run([sys.executable, "run.py", "mri", "study", "mri-smoke", "--out", str(out), "--dry-run"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[1]: line.split() for line in done.stdout.splitlines() if line.startswith("exact-4")}
    assert set(rows) == {"modl-fft", "modl-monarch", "cg-sense"}
    assert rows["modl-fft"][2] == "2" and rows["modl-fft"][4] == "2"  # trials, final runs
    assert rows["cg-sense"][4] == "1"  # one evaluation, no seeds
    assert not out.exists()
    bad = subprocess.run([sys.executable, "run.py", "mri", "study", "no-such-preset", "--dry-run"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "mri-smoke" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_refuses_a_spec_file_the_application_cannot_run_in_one_line(tmp_path):
    spec = smoke_spec(tmp_path / "data").to_dict()
    spec["problem"]["n_subjects"] = 3
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, "run.py", "mri", "study", str(path), "--out", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "unknown MRI problem key(s) ['n_subjects']" in done.stderr
    assert not (tmp_path / "data").exists()
