"""Refresh benchmarks/results/pde_burgers_baseline.{md,json} from the recipe run (partial or finished):

    python benchmarks/results/pde_burgers_baseline.py

The run is the FNO paper's Burgers recipe through the study engine (an untuned `pde compare`, one seed);
its own report is runs/pde/burgers-recipe/report.md once it finished. This file adds what the engine does
not know: the published value and the status of a run still in progress."""
import json
import subprocess
from pathlib import Path

RUN = Path("runs/pde/burgers-recipe")
CURVE = RUN / "runs/final/burgers-1024/fft/seed-0/metrics.jsonl"
COMMANDS = [
    "nice -n 5 env OMP_NUM_THREADS=1 python run.py data burgers   # 1300 solutions at 8192 points (≈ 23 min, loaded)",
    "python -c \"from pde.data.subsample import subsample_dataset as s; s('datasets/burgers.h5', "
    "'datasets/burgers-1024.h5', 8)\"",
    "nice -n 5 env OMP_NUM_THREADS=1 python run.py pde compare datasets/burgers-1024.h5 --transforms fft --epochs 500 "
    "--batch-size 20 --lr 1e-3 --weight-decay 1e-4 --step-size 50 --gamma 0.5 --n-modes 30 --hidden-channels 64 "
    "--n-layers 4 --n-val 100 --seeds 0 --device cpu --no-progress --out runs/pde/burgers-recipe   # rerun to resume",
]
PUBLISHED = {
    "value": 0.0160, "setting": "FNO, Burgers ν = 0.1, s = 1024, 1000 train / 200 test",
    "source": "Li et al., Fourier Neural Operator for Parametric PDEs (ICLR 2021, arXiv:2010.08895), Table 1 "
              "(benchmarks on 1-d Burgers' equation), as quoted and confirmed by the first author in "
              "neuraloperator/neuraloperator#30; that thread also reports the repository's current fourier_1d.py "
              "(GELU, no batch norm, as neuraloperator's FNO used here) reaching 0.0025-0.0029 at epoch 500",
    "modern_script_value": [0.00254, 0.00286]}


def main():
    records = [json.loads(line) for line in CURVE.read_text().splitlines() if line.strip()] if CURVE.exists() else []
    results = json.loads((RUN / "results.json").read_text()) if (RUN / "results.json").exists() else None
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    test = None
    if results:
        summary = results["cells"]["burgers-1024"]["methods"]["fft"]["summary"]["rel_l2"]
        test = {"rel_l2_mean": summary["mean"], "n_samples": summary["n_samples"]}
    status = ("finished" if results else f"partial: {len(records)} of 500 epochs done when this was written; "
              "rerun the last command to resume")
    best = min((r["val_rel_l2"] for r in records), default=None)
    seconds = sorted(r["seconds"] for r in records)
    out = {"status": status, "published": PUBLISHED, "epochs_done": len(records), "best_validation": best,
           "test": test, "median_seconds_per_epoch": seconds[len(seconds) // 2] if seconds else None,
           "load_at_write": load, "commands": COMMANDS, "learning_curve": records}
    Path("benchmarks/results/pde_burgers_baseline.json").write_text(json.dumps(out, indent=1) + "\n")
    verdict = "—"
    if test:
        ratio = test["rel_l2_mean"] / PUBLISHED["value"]
        verdict = f"{ratio:.2f}× the published value ({'within' if abs(ratio - 1) <= 0.2 else 'NOT within'} 20 %)"
    lines = ["# Burgers FFT-FNO baseline in the FNO paper's setting (issue 20)", "",
             f"**Status: {status}.** Seconds per epoch are on a shared 2-core CPU with other work running "
             "(loaded; not a timing result).", "",
             "| | value |", "|---|---|",
             f"| published FNO, s = 1024 | {PUBLISHED['value']} |",
             "| fourier_1d.py of today (GELU, no batch norm; same thread) | 0.0025 – 0.0029 |",
             f"| ours, best validation rel. L2 so far | {best:.5f} |" if best is not None else "| ours | — |",
             f"| ours, test rel. L2 ({test['n_samples']} samples) | {test['rel_l2_mean']:.5f}: {verdict} |" if test
             else "| ours, test rel. L2 | after the last epoch |",
             f"| median seconds / epoch (1 thread, loaded) | {out['median_seconds_per_epoch']} |", "",
             "Source: " + PUBLISHED["source"] + ".", "",
             "Reading the 20 % rule: the paper's 0.0160 came from its 2020 code (ReLU, batch norm); the same recipe "
             "with GELU and no batch norm — neuraloperator's FNO, used here — is reported at 0.0025-0.0029, so a "
             "converged run here is expected well *below* 0.0160. A result inside [0.0025, 0.0160] reproduces the "
             "published regime; one above 0.0192 would not.", "",
             "Recipe (the paper's fourier_1d.py): 4 Fourier layers, 16 modes (neuraloperator n_modes (30,)), width 64, "
             "Adam lr 1e-3, weight decay 1e-4, StepLR(50, 0.5), 500 epochs, batch 20; 1000 train / 100 validation "
             "(held out of the 1100-sample training part) / 200 test; best.pt chosen on validation.", "",
             f"Load when written: `{load}`", "", "## Commands", "", "```", *COMMANDS, "```", "",
             "## Learning curve", "", "| epoch | train | val | lr | s |", "|---|---|---|---|---|"]
    lines += [f"| {r['epoch']} | {r['train_loss']:.5f} | {r['val_rel_l2']:.5f} | {r['lr']:.2e} | {r['seconds']:.1f} |"
              for r in records]
    Path("benchmarks/results/pde_burgers_baseline.md").write_text("\n".join(lines) + "\n")
    print(status, best)


if __name__ == "__main__":
    main()
