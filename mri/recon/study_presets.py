"""The MRI study presets of `run.py mri study PRESET` ({name: () -> StudySpec}; application: `mri.recon.study`).

    mri-cpu    the sizing's study-cpu recipe (benchmarks/results/mri_sizing.md): 64², 6 coils, 16 / 2 / 10
               subjects × 8 slices; small MoDL networks (5 steps, 32 channels, 10 CG iterations, λ₀ 0.01) with
               every transform kind against tuned CG-SENSE and L1-wavelet at 4× and 8× (exact track); 5 seeds.
               Tens of CPU-hours (see `--dry-run --measure`): plan it as resumable.
    mri-cpu-mismatch   mri-cpu's data and networks on the mismatch track (4×, 8×): MoDL with the FFT and with
               Monarch, tuned on that track, beside the oracle-physics FFT model (the known delay and B0 in
               its operator, the FFT model's settings) and the classical baselines. About half mri-cpu's hours.
    mri-cpu-2x mri-cpu's data and networks at 2× (exact track): MoDL with the FFT and with Monarch beside the
               classical baselines, tuned at 2×. About a third of mri-cpu's hours.
    mri-cpu-baselines  the classical reconstructions on mri-cpu's data at 2×, 4×, 8× (exact) and 4×, 8×
               (mismatch), λ (and the L1-wavelet's wavelet family) tuned on validation with the same trial
               budget: CG-SENSE, L1-wavelet (random shifts) and, as references, BART's own `pics -l1` /
               `-l2`; the L1-wavelet without random shifts as a control. No training: CPU-minutes; needs the
               `bart` executable.
    mri-msense the Monarch paper's mSENSE against dSENSE at 512×160 (SKM-TEA-like slices, exact track, 4× and
               8×), both beside the zero-filled SENSE they start from; transform_lr tuned; 5 seeds.
    mri-gpu    one GPU: 128², 8 coils, 32 / 4 / 16 subjects × 8 slices, both tracks at 2×, 4× and 8×, and the
               oracle-physics FFT model (known delay and B0 in A) as a control with the FFT model's settings.
    mri-smoke  the same code path in well under a minute on a CPU (32², 2 seeds, 2 trials, 2 epochs): tests
               and the demo. Nothing is learned; it only shows that everything runs.

Every preset: the same log-uniform ranges for the knobs methods share (lr, weight decay: 2 and 3 decades),
transform_lr for the learnable kinds inside the same trial budget, λ of the classical baselines (4
decades) tuned on the validation subjects with the same number of trials; magnitude PSNR per test slice
as the primary metric (differences in dB, two-level intervals over seeds and slices).
"""
from __future__ import annotations

from common.study import StudySpec

#: the learned transforms compared inside the MoDL network, and the FFT model they are measured against
LEARNABLE = ("monarch", "dense", "diag")
BASELINE = "modl-fft"
SPACE = {"lr": {"low": 1e-4, "high": 1e-2}, "weight_decay": {"low": 1e-6, "high": 1e-3},
         "transform_lr": {"low": 1e-4, "high": 1e-1}, "lamda": {"low": 1e-5, "high": 1e-1}}
#: MoDL as the sizing found it beats tuned CG-SENSE: 10 CG iterations per step, λ₀ 0.01 (≈ CG-SENSE's λ)
MODL_KWARGS = {"cg_iters": 10, "cg_lambda": 0.01}


def _methods(kinds=LEARNABLE, classical=("cg-sense", "l1-wavelet"), oracle: bool = False) -> list:
    methods = [{"name": BASELINE, "label": "MoDL-FFT", "role": "baseline", "knobs": ["lr", "weight_decay"],
                "options": {"model": BASELINE}}]
    methods += [{"name": f"modl-{kind}", "label": f"MoDL-{kind}", "knobs": ["lr", "weight_decay", "transform_lr"],
                 "options": {"model": f"modl-{kind}"}} for kind in kinds]
    if oracle:
        methods.append({"name": "modl-fft-oracle", "label": "MoDL-FFT, oracle physics", "role": "control",
                        "settings_from": BASELINE, "knobs": ["lr", "weight_decay"],
                        "options": {"model": "modl-fft-oracle"}})
    methods += [{"name": name, "label": name, "role": "baseline", "trained": False, "knobs": ["lamda"],
                 "options": {"classical": name}} for name in classical]
    return methods


def _comparisons(kinds=LEARNABLE, classical=("cg-sense", "l1-wavelet")) -> list:
    rows = [{"method": f"modl-{kind}", "baseline": BASELINE} for kind in kinds]
    # issue 21: the learned FFT network must beat tuned CG-SENSE by ≥ 1 dB before transforms are compared in it
    rows.append({"method": BASELINE, "baseline": "cg-sense", "goal": 1.0})
    rows += [{"method": BASELINE, "baseline": name} for name in classical if name != "cg-sense"]
    return rows


def _spec(name: str, **values) -> StudySpec:
    base = {"name": name, "application": "mri", "metric": "psnr", "direction": "higher", "statistic": "difference",
            "seeds": [0, 1, 2, 3, 4], "tune_seed": 1000, "space": SPACE, "schedule": {"kind": "cosine"}}
    return StudySpec.from_dict({**base, **values})


#: the mri-cpu study's problem: its data, network size and test unit (the follow-up presets share them, so that
#: their rows are measured on the same subjects)
CPU_PROBLEM = {"sim_preset": "study-cpu", "n_train_scans": 16, "batch_size": 4, "masks": "random", "mask_pool": 64,
               "scale": "small", "model_kwargs": MODL_KWARGS, "classical_iters": 30, "min_test_volumes": 10,
               # the test unit is the subject: slices of one volume are not independent samples
               "sample": "volume"}
CPU_TUNING = {"trials": 20, "epochs": 20, "pruner": "successive-halving", "min_epochs": 2, "reduction": 3,
              "extra_trials": 8, "max_widenings": 2}
CPU_STOPPING = {"max_epochs": 60, "min_epochs": 20, "window": 0.25, "min_gain": 0.01}


def mri_cpu() -> StudySpec:
    return _spec(
        "mri-cpu", problem=dict(CPU_PROBLEM),
        cells=[{"track": "exact", "acceleration": 4.0}, {"track": "exact", "acceleration": 8.0}],
        methods=_methods(), comparisons=_comparisons(), tuning=CPU_TUNING, stopping=CPU_STOPPING,
        notes="The sizing's study-cpu recipe (benchmarks/results/mri_sizing.md): small MoDL, 16 training subjects.")


def mri_cpu_mismatch() -> StudySpec:
    # what the learned transform buys when the scanner departs from the ideal FFT model, against the FFT model
    # that knows the departure (the oracle control: the delay and B0 in its forward operator, the FFT model's
    # settings) — issue 21 item 3; Monarch only, the kind the study is about, to keep it to CPU-hours
    return _spec(
        "mri-cpu-mismatch", problem=dict(CPU_PROBLEM),
        cells=[{"track": "mismatch", "acceleration": 4.0}, {"track": "mismatch", "acceleration": 8.0}],
        methods=_methods(("monarch",), oracle=True),
        comparisons=[{"method": "modl-monarch", "baseline": BASELINE},
                     {"method": "modl-fft-oracle", "baseline": BASELINE},
                     {"method": "modl-monarch", "baseline": "modl-fft-oracle"},
                     {"method": BASELINE, "baseline": "cg-sense"}, {"method": BASELINE, "baseline": "l1-wavelet"}],
        tuning=CPU_TUNING, stopping=CPU_STOPPING,
        notes="mri-cpu's data and networks on the mismatch track (gradient delay, B0), tuned on that track.")


def mri_cpu_2x() -> StudySpec:
    # the learned rows at 2× (exact track), which mri-cpu leaves out to keep its hours: MoDL with the FFT and
    # with Monarch beside the classical baselines, tuned at 2× with mri-cpu's budget (issue 21: 2×/4×/8×)
    return _spec(
        "mri-cpu-2x", problem=dict(CPU_PROBLEM), cells=[{"track": "exact", "acceleration": 2.0}],
        methods=_methods(("monarch",)),
        comparisons=[{"method": "modl-monarch", "baseline": BASELINE}, {"method": BASELINE, "baseline": "cg-sense"},
                     {"method": BASELINE, "baseline": "l1-wavelet"}],
        tuning=CPU_TUNING, stopping=CPU_STOPPING,
        notes="mri-cpu's data and networks at 2× (exact track), tuned at 2×; Monarch only beside the FFT model.")


def mri_cpu_baselines() -> StudySpec:
    # the classical rows at every acceleration the data store, both tracks, beside BART's own `pics`
    # (issue 21 item 1): no training, so CPU-minutes; needs the `bart` executable (apt-get install bart)
    from mri.recon.classical import WAVELETS  # here: building the CLI parser imports no numerical library

    classical = ("cg-sense", "l1-wavelet", "bart-l1", "bart-l2")
    methods = [m for m in _methods((), classical) if m["name"] != BASELINE]
    methods.append({"name": "l1-wavelet-fixed", "label": "l1-wavelet without random shifts", "role": "control",
                    "trained": False, "options": {"classical": "l1-wavelet", "random_shifts": False}})
    for method in methods:  # the wavelet family is chosen on validation too, inside the same trial budget
        if method["options"]["classical"] == "l1-wavelet":
            method["knobs"] = ["lamda", "wavelet"]
    return _spec(
        "mri-cpu-baselines", problem=dict(CPU_PROBLEM), space={**SPACE, "wavelet": {"choices": list(WAVELETS)}},
        cells=[{"track": t, "acceleration": a} for t, accs in (("exact", (2.0, 4.0, 8.0)), ("mismatch", (4.0, 8.0)))
               for a in accs],
        methods=methods,
        # goal −1 dB: "within 1 dB of BART's pics -l1" is met when the interval's low end is above −1
        comparisons=[{"method": "l1-wavelet", "baseline": "bart-l1", "goal": -1.0},
                     {"method": "cg-sense", "baseline": "bart-l2", "goal": -1.0},
                     {"method": "l1-wavelet", "baseline": "l1-wavelet-fixed"},
                     {"method": "l1-wavelet", "baseline": "cg-sense"}],
        tuning=CPU_TUNING, stopping=CPU_STOPPING,
        notes="mri-cpu's data; the classical baselines tuned on validation with mri-cpu's trial budget, and "
              "BART's pics -l1 / -l2 run through BART itself on the same slices.")


def mri_msense() -> StudySpec:
    # issue 21 item 6: the Monarch paper's mSENSE against dSENSE at its point of comparison — 512×160 slices
    # (SKM-TEA's), zero-filled SENSE with one learned inverse DFT per axis: Monarch 57,472 real parameters,
    # dense 575,488 — and both against the zero-filled SENSE (exact IFFT) they start from. Only transforms are
    # learned, so transform_lr is the one knob (weight decay does not apply to transforms).
    return _spec(
        "mri-msense",
        problem={"sim_preset": "skmtea-like", "sim_overrides": {"slices": 8, "n_train": 16, "n_val": 2, "n_test": 10},
                 "batch_size": 4, "masks": "random", "mask_pool": 64, "min_test_volumes": 10, "sample": "volume"},
        cells=[{"track": "exact", "acceleration": a} for a in (4.0, 8.0)],
        methods=[{"name": "dsense", "label": "dSENSE (dense IDFT)", "role": "baseline", "knobs": ["transform_lr"],
                  "options": {"model": "dsense"}},
                 {"name": "msense", "label": "mSENSE (Monarch IDFT)", "knobs": ["transform_lr"],
                  "options": {"model": "msense"}},
                 {"name": "zf", "label": "zero-filled SENSE", "role": "baseline", "trained": False, "knobs": [],
                  "options": {"classical": "zf"}}],
        comparisons=[{"method": "msense", "baseline": "dsense"}, {"method": "msense", "baseline": "zf"},
                     {"method": "dsense", "baseline": "zf"}],
        tuning=CPU_TUNING, stopping=CPU_STOPPING,
        notes="mSENSE vs dSENSE at 512×160 (issue 21 item 6): parameters and the PSNR gap with two-level intervals.")


def mri_gpu() -> StudySpec:
    return _spec(
        "mri-gpu",
        problem={"sim_preset": "protocol-gpu", "sim_overrides": {"accelerations": [2.0, 4.0, 8.0]}, "batch_size": 8,
                 "masks": "random", "mask_pool": 256, "scale": "small", "model_kwargs": MODL_KWARGS,
                 "classical_iters": 30, "min_test_volumes": 16, "sample": "volume"},
        cells=[{"track": t, "acceleration": a} for t in ("exact", "mismatch") for a in (2.0, 4.0, 8.0)],
        methods=_methods(oracle=True),
        comparisons=_comparisons() + [{"method": "modl-fft-oracle", "baseline": BASELINE}],
        tuning={"trials": 30, "epochs": 30, "pruner": "successive-halving", "min_epochs": 3, "reduction": 3,
                "extra_trials": 10, "max_widenings": 2},
        stopping={"max_epochs": 150, "min_epochs": 30, "window": 0.25, "min_gain": 0.01},
        device="auto", jobs=4, threads=4,
        notes="One GPU shared by 4 runs at a time (the models are small); 16 CPU cores draw the mask pools.")


def mri_smoke() -> StudySpec:
    return _spec(
        "mri-smoke",
        problem={"sim_preset": "tiny", "sim_overrides": {"shape": [32, 32], "slices": 2, "n_train": 2, "n_val": 1,
                                                         "n_test": 2, "coils": 3, "accelerations": [4.0],
                                                         "espirit_max_iter": 10},
                 "batch_size": 2, "masks": "random", "mask_pool": 4, "scale": "tiny",
                 "model_kwargs": {"cg_iters": 2, "cg_lambda": 0.01}, "classical_iters": 5, "min_test_volumes": 2},
        cells=[{"track": "exact", "acceleration": 4.0}],
        methods=_methods(("monarch",), ("cg-sense",)), comparisons=_comparisons(("monarch",), ("cg-sense",)),
        seeds=[0, 1],
        tuning={"trials": 2, "epochs": 2, "pruner": "successive-halving", "min_epochs": 1, "reduction": 3,
                "extra_trials": 1, "max_widenings": 0},
        stopping={"max_epochs": 2, "min_epochs": 2, "window": 0.25, "min_gain": 0.01},
        device="cpu", notes="Smoke test: every step runs; the numbers mean nothing.")


PRESETS = {"mri-cpu": mri_cpu, "mri-cpu-2x": mri_cpu_2x, "mri-cpu-mismatch": mri_cpu_mismatch, "mri-cpu-baselines": mri_cpu_baselines,
           "mri-msense": mri_msense, "mri-gpu": mri_gpu, "mri-smoke": mri_smoke,
           "cpu": mri_cpu, "gpu": mri_gpu}  # the short names: the CPU study and the one-GPU study

__all__ = ["PRESETS", "mri_cpu", "mri_cpu_2x", "mri_cpu_baselines", "mri_cpu_mismatch", "mri_gpu", "mri_msense", "mri_smoke"]
