"""Refresh benchmarks/results/pde_burgers_baseline.{md,json} from runs/pde/burgers-baseline-fft (partial or finished): python benchmarks/results/pde_burgers_baseline.py"""
import json, os, subprocess, sys
from pathlib import Path
run = Path("runs/pde/burgers-baseline-fft")
recs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()] if (run / "metrics.jsonl").exists() else []
test = None
for name in ("eval.json",):
    if (run / name).exists():
        test = json.loads((run / name).read_text()); break
load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
cmd_data = "nice -n 19 env OMP_NUM_THREADS=1 python run.py data burgers-1024"
cmd_train = ("nice -n 19 env OMP_NUM_THREADS=1 python run.py pde train datasets/burgers-1024.h5 --transform fft "
             "--out runs/pde/burgers-baseline-fft --n-val 100 --epochs 500 --batch-size 20 --lr 1e-3 --weight-decay 1e-4 "
             "--step-size 50 --gamma 0.5 --n-modes 30 --hidden-channels 64 --n-layers 4 --seed 0 --device cpu --no-progress")
secs = [r["seconds"] for r in recs]
status = "finished" if len(recs) >= 500 else f"partial: {len(recs)} of 500 epochs done when this was written (the run continues in the background; if it was killed, rerun the train command with --resume)"
published = {"value": 0.0160, "where": "FNO paper (Li et al., arXiv:2010.08895), Burgers benchmark table, FNO row, s = 1024, "
             "as quoted in the GitHub thread neuraloperator/neuraloperator#30 'Reproducing Results in Table 1' (answered there by the paper's first author, who confirms the data burgers_data_R10.mat, modes 16, width 64, 500 epochs) ('In Table 1 of your paper, "
             "you report a value of 0.0160 for the FNO model with s = 1024'); the same thread reports the repository's current "
             "fourier_1d.py (GELU, no batch norm) reaching 0.00254-0.00286 at epoch 500 on burgers_data_R10.mat",
             "modern_script_value": [0.00254, 0.00286]}
out = {"status": status, "published": published, "epochs_done": len(recs), "seconds_per_epoch": secs,
       "median_seconds_per_epoch": sorted(secs)[len(secs) // 2] if secs else None,
       "load_at_write": load, "learning_curve": recs, "test": test, "commands": [cmd_data, cmd_train],
       "recipe": {"n_layers": 4, "rfft_modes": 16, "n_modes_neuralop": [30], "width": 64, "optimizer": "Adam lr 1e-3 wd 1e-4",
                  "schedule": "StepLR(50, 0.5) as in fourier_1d.py (step_size = 50)", "epochs": 500, "batch": 20,
                  "split": "1000 train / 100 validation (last 100 of the 1100-sample training part) / 200 test",
                  "grid_input": "neuralop FNO positional_embedding='grid' appends x in [0,1] (the paper's get_grid)"}}
Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
Path("benchmarks/results/pde_burgers_baseline.json").write_text(json.dumps(out, indent=1) + "\n")
best = min((r.get("val_rel_l2", 9) for r in recs), default=None)
lines = ["# Burgers FFT-FNO baseline in the FNO paper's setting (issue 20)", "",
         f"**Status: {status}.** Timings below are on a shared, loaded 2-core machine (labelled loaded; not a result).", "",
         "| | value |", "|---|---|",
         f"| published FNO, s = 1024 | 0.0160 (see citation) |",
         f"| repository fourier_1d.py today (same thread) | 0.00254 – 0.00286 |",
         f"| ours, best validation rel. L2 so far | {best if best is not None else '—'} |",
         f"| ours, test rel. L2 (200 samples) | {json.dumps(test) if test else 'not yet (evaluated after epoch 500)'} |",
         f"| median seconds / epoch (1 thread, nice 19, loaded) | {out['median_seconds_per_epoch']} |", "",
         "Citation: " + published["where"] + ". The arXiv version the 0.0160 is in could not be checked here (the paper's text is not in the stored pages); the lead should confirm table number and version (v1 Table 1 per the thread; v3 shows Burgers in a table/figure of §5.1).", "",
         "Within 20 %: the paper's 0.0160 came from the 2020 code (ReLU, batch norm); the same script with GELU and without "
         "batch norm (the repository's current one, and neuraloperator's FNO we use) reaches ~0.0025-0.0029, so a converged "
         "run here is expected near 0.0025, ~6x *below* the published number, not within 20 % of it. The comparison the "
         "issue wants should be made against 0.0025-0.0029 (modern recipe) and the paper's 0.0160 quoted as historical.", "",
         "Recipe: " + json.dumps(out["recipe"]), "", f"Load when written: `{load}`", "",
         "## Commands", "", "```", cmd_data, cmd_train, "```", "", "## Learning curve (epoch, train loss, val rel. L2, lr, seconds)", "",
         "| epoch | train | val | lr | s |", "|---|---|---|---|---|"]
lines += [f"| {r['epoch']} | {r['train_loss']:.5f} | {r.get('val_rel_l2', float('nan')):.5f} | {r['lr']:.2e} | {r['seconds']:.1f} |" for r in recs]
Path("benchmarks/results/pde_burgers_baseline.md").write_text("\n".join(lines) + "\n")
print(status, best)
