"""The PDE studies as presets of the study engine (`PRESETS`: name → () -> StudySpec).

    python run.py pde study pde-smoke --out runs/pde/study-smoke        # < 2 minutes on a laptop CPU
    python run.py pde study burgers-cpu --dry-run --measure             # the plan and its CPU-hours
    python run.py pde study ns-gpu --out runs/pde/study-ns-gpu          # one GPU

Every preset compares the same methods: the FFT FNO (baseline), the learnable kinds `dense`, `monarch`
and `diag` (the fixed FFT with a learnable per-frequency gain: "any learnable spectrum" control), and
the parameter-matched FFT control `fft-more-modes` (the FFT FNO with more modes, at Monarch's parameter
count; it reuses FFT's tuned point). Shared knobs lr and weight decay get the same log-uniform ranges
(2 decades each) for every method; the learnable kinds also search their transform lr (3 decades) in
the same trial budget. Published values (FNO paper, Li et al., ICLR 2021, arXiv:2010.08895 v3):
Table 1 (Burgers, s = 1024) FNO 0.0160; Table 4 (Darcy, s = 85) FNO 0.0108; Table 3 (NS ν = 1e-3,
64², T = 50, 1000 training samples) FNO-2D 0.0128.
"""
from __future__ import annotations

from common.study import StudySpec

LEARNABLE = ("dense", "monarch", "diag")
SPACE = {"lr": {"low": 1e-4, "high": 1e-2}, "weight_decay": {"low": 1e-6, "high": 1e-4},
         "transform_lr": {"low": 1e-5, "high": 1e-2}}
FNO_PAPER = "Li et al., Fourier Neural Operator, ICLR 2021 (arXiv:2010.08895 v3)"


def _methods(padded: bool = False, more_modes: bool = True) -> list[dict]:
    methods = [{"name": "fft", "options": {"transform": "fft"}, "knobs": ["lr", "weight_decay"], "role": "baseline"}]
    methods += [{"name": kind, "options": {"transform": kind}, "knobs": ["lr", "weight_decay", "transform_lr"]}
                for kind in LEARNABLE]
    if more_modes:
        methods.append({"name": "fft-more-modes", "options": {"transform": "fft", "match_parameters_of": "monarch"},
                        "settings_from": "fft", "role": "control"})
    if padded:  # the FNO paper's fix for the non-periodic Darcy problem, for every kind
        methods += [{"name": f"{m['name']}-padded", "options": {**m["options"], "fno_kwargs": {"domain_padding": 0.125}},
                     "knobs": m["knobs"], "role": "method"} for m in list(methods) if m.get("settings_from") is None]
    return methods


def _comparisons(methods: list[dict]) -> list[dict]:
    return [{"method": m["name"], "baseline": "fft"} for m in methods if m["name"] != "fft"]


def _spec(**values) -> StudySpec:
    methods = values.pop("methods", _methods())
    values.setdefault("comparisons", _comparisons(methods))
    return StudySpec.from_dict({"application": "pde", "metric": "rel_l2", "direction": "lower", "statistic": "ratio",
                                "space": SPACE, "methods": methods, **values})


def smoke() -> StudySpec:
    """Every step of a study in < 2 minutes on a CPU (tests, the demo): tiny Burgers, 2 seeds. Nothing is
    learned to convergence at this size; the report says so."""
    return _spec(
        name="pde-smoke",
        problem={"dataset": "datasets/burgers-smoke.h5",
                 "generate": {"preset": "burgers-tiny", "n": 40, "res": 64},
                 "n_val": 6, "batch_size": 8, "n_modes": (8,), "hidden_channels": 8, "n_layers": 2},
        seeds=(0, 1), tune_seed=1000,
        tuning={"trials": 2, "epochs": 3, "min_epochs": 1, "extra_trials": 1, "max_widenings": 1},
        stopping={"max_epochs": 6, "min_epochs": 3, "window": 0.5, "min_gain": 0.01},
        schedule={"kind": "cosine"}, device="cpu",
        notes="Smoke size: 34 training samples at 64 points, a few epochs. It exercises every step of a study; "
              "its numbers are not evidence.")


def _with_grids(comparisons: list[dict], grids) -> list[dict]:
    """The comparisons on the training grid and on every zero-shot evaluation grid."""
    return comparisons + [{**c, "metric": f"rel_l2@{g}"} for g in grids for c in comparisons]


def burgers_cpu() -> StudySpec:
    """Burgers ν = 0.1 at s = 1024, the FNO paper's setting (1000 train / 100 validation / 200 test; 4 layers,
    16 modes, width 64, batch 20, step decay ×0.5 every 50 epochs, ≤ 500 epochs), with zero-shot evaluation
    at 2048, 4096 and 8192 points (the same trajectories)."""
    fine = "datasets/burgers.h5"
    methods = _methods()
    return _spec(
        name="burgers-cpu", methods=methods, comparisons=_with_grids(_comparisons(methods), ("2048", "4096", "8192")),
        # one 8192-point solve; the training file and the 2048/4096 ones are stride copies of it
        problem={"dataset": "datasets/burgers-1024.h5", "subsample_of": fine, "stride": 8,
                 "n_val": 100, "batch_size": 20, "n_modes": (30,), "hidden_channels": 64, "n_layers": 4,
                 "eval_datasets": {
                     "2048": {"dataset": "datasets/burgers-2048.h5", "subsample_of": fine, "stride": 4},
                     "4096": {"dataset": "datasets/burgers-4096.h5", "subsample_of": fine, "stride": 2},
                     "8192": {"dataset": fine, "generate": {"preset": "burgers"}}}},
        seeds=(0, 1, 2, 3, 4), tune_seed=1000,
        tuning={"trials": 20, "epochs": 50, "min_epochs": 5, "reduction": 3, "extra_trials": 8, "max_widenings": 2},
        stopping={"max_epochs": 500, "min_epochs": 100, "window": 0.25, "min_gain": 0.01},
        schedule={"kind": "step", "step_epochs": 50, "gamma": 0.5}, device="cpu", jobs=2, threads=1,
        published={"fft": {"value": 0.0160, "source": f"{FNO_PAPER}, Table 1, s = 1024", "tolerance": 0.2}})


def darcy_cpu() -> StudySpec:
    """Darcy at s = 85 from 421² solutions, the FNO paper's setting (1000 train / 100 test, width 32, step
    decay), with the padded variant of every kind (domain padding, the paper's fix for a non-periodic
    problem). ≈ 165 s per epoch on a 2-core CPU: it runs across sessions (the engine resumes)."""
    methods = _methods(padded=True)
    return _spec(
        name="darcy-cpu", methods=methods,
        problem={"dataset": "datasets/darcy-85.h5", "generate": {"preset": "darcy-85"}, "n_val": 100,
                 "batch_size": 20, "hidden_channels": 32, "n_layers": 4},
        seeds=(0, 1, 2), tune_seed=1000,
        tuning={"trials": 20, "epochs": 30, "min_epochs": 3, "extra_trials": 8, "max_widenings": 2},
        stopping={"max_epochs": 500, "min_epochs": 100, "window": 0.25, "min_gain": 0.01},
        schedule={"kind": "step", "step_epochs": 100, "gamma": 0.5}, device="cpu", jobs=2, threads=1,
        published={"fft-padded": {"value": 0.0108, "source": f"{FNO_PAPER}, Table 4, s = 85", "tolerance": 0.2}})


def ns_cpu() -> StudySpec:
    """Navier–Stokes ν = 1e-3, the largest intermediate a CPU takes to convergence: 32², 1000 samples,
    10 → 10 frames. NOT the paper's setting (64², 10 → 40): see `ns_gpu`. The data are solved at 64² (not the
    paper's 256²) to t = 20 (the 20 frames used, not 50): 1200 · 2·10⁴ steps at ~8·10³ sample·steps/s is
    ≈ 50 min on one CPU thread, where 256² to t = 50 would take ≈ 25 hours before the first epoch."""
    return _spec(
        name="ns-cpu",
        problem={"dataset": "datasets/ns-v1e-3-32-t20.h5",
                 "generate": {"preset": "ns-v1e-3", "res": 32, "gen_res": 64, "t_final": 20.0, "record_steps": 20,
                              "n": 1200},
                 "n_train": 1000, "n_val": 100, "n_test": 200, "t_in": 10, "t_out": 10, "batch_size": 20,
                 "n_modes": (12, 12), "hidden_channels": 20},
        seeds=(0, 1, 2, 3, 4), tune_seed=1000,
        tuning={"trials": 20, "epochs": 30, "min_epochs": 3, "extra_trials": 8, "max_widenings": 2},
        stopping={"max_epochs": 300, "min_epochs": 60, "window": 0.25, "min_gain": 0.01},
        schedule={"kind": "cosine"}, device="cpu", jobs=2, threads=1,
        notes="Intermediate setting (32², 10 → 10 frames): not the FNO paper's, so no published value applies.")


def ns_gpu() -> StudySpec:
    """Navier–Stokes ν = 1e-3 at 64², 1000 train / 200 test, 10 → 40 frames: the FNO paper's setting, for
    one GPU (modes 12 = n_modes (24, 22), width 20, batch 20, step decay ×0.5 every 100 of 500 epochs)."""
    return _spec(
        name="ns-gpu",
        problem={"dataset": "datasets/ns-v1e-3.h5", "generate": {"preset": "ns-v1e-3"},
                 "n_train": 1000, "n_val": 100, "n_test": 200, "t_in": 10, "t_out": 40, "batch_size": 20,
                 "hidden_channels": 20},
        seeds=(0, 1, 2, 3, 4), tune_seed=1000,
        tuning={"trials": 20, "epochs": 50, "min_epochs": 5, "extra_trials": 8, "max_widenings": 2},
        stopping={"max_epochs": 500, "min_epochs": 100, "window": 0.25, "min_gain": 0.01},
        schedule={"kind": "step", "step_epochs": 100, "gamma": 0.5}, device="cuda", jobs=4, threads=4,
        published={"fft": {"value": 0.0128, "source": f"{FNO_PAPER}, Table 3, ν = 1e-3, N = 1000",
                           "tolerance": 0.2}})


PRESETS = {"pde-smoke": smoke, "burgers-cpu": burgers_cpu, "darcy-cpu": darcy_cpu, "ns-cpu": ns_cpu,
           "ns-gpu": ns_gpu,
           "cpu": burgers_cpu, "gpu": ns_gpu}  # the short names: the CPU study and the one-GPU study

__all__ = ["PRESETS"]
