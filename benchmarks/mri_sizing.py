"""Sizing measurements of issue 21 (benchmarks/results/mri_sizing.md): validation PSNR of tuned
CG-SENSE (λ chosen on the validation scans) and of trained runs, on the validation scans only.

    python -m benchmarks.mri_sizing cg DATA ACC [ACC ...]          # CG-SENSE over a λ grid
    python -m benchmarks.mri_sizing run RUN_FOLDER [RUN_FOLDER ...] # best.pt of trained runs
    python -m benchmarks.mri_sizing tables ROWS.jsonl                # markdown tables of the rows

Each line of output is one JSON row (appended to --out when given). PSNR: magnitude, fastMRI
convention, per volume (data range = volume max |target|), mean over the validation volumes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

LAMBDA_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def _emit(row: dict, out):
    line = json.dumps(row)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def _load():
    return f"{os.getloadavg()[0]:.2f}"


def cg_rows(data: str, accelerations, out=None, max_iter: int = 30, grid=LAMBDA_GRID):
    from mri.recon.evaluation import evaluate
    from mri.recon.models import build_model
    from mri.recon.training import dataset_splits

    val = dataset_splits(data)["val"]
    for acc in accelerations:
        for lam in grid:
            model = build_model("cg-sense", None, lamda=lam, max_iter=max_iter)
            r = evaluate(model, data, acc, val, device="cpu", keep_examples=False)
            _emit({"kind": "cg-sense", "data": data, "acceleration": acc, "lamda": lam, "max_iter": max_iter,
                   "val_psnr": r["psnr_mean"], "val_ssim": r["ssim_mean"], "load1": _load()}, out)


def run_rows(runs, out=None):
    from common.training import read_metrics
    from mri.recon.evaluation import evaluate_run
    from mri.recon.training import dataset_splits, load_model

    for run in runs:
        _, cfg = load_model(run, "best", "cpu", False)
        val = dataset_splits(cfg.data_dir)["val"]
        r = evaluate_run(run, scans=val, device="cpu", keep_examples=False)
        metrics = read_metrics(run)
        secs = sorted(m["seconds"] for m in metrics[1:]) or [metrics[0]["seconds"]]
        best = min(metrics, key=lambda m: m.get("val_loss", m["train_loss"]))
        _emit({"kind": "run", "run": str(run), "model": cfg.model, "scale": cfg.scale, "model_kwargs": cfg.model_kwargs,
               "acceleration": cfg.acceleration, "epochs": len(metrics), "best_epoch": best["epoch"],
               "lr": cfg.lr, "batch_size": cfg.batch_size, "data": cfg.data_dir,
               "median_s_per_epoch": secs[len(secs) // 2], "val_psnr": r["psnr_mean"], "val_ssim": r["ssim_mean"],
               "load1": _load()}, out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("cg", "run", "tables"))
    p.add_argument("args", nargs="+")
    p.add_argument("--out", default=None)
    p.add_argument("--lambdas", type=float, nargs="+", default=list(LAMBDA_GRID), help="CG-SENSE λ grid")
    a = p.parse_args(argv)
    if a.what == "tables":  # args: the rows file (JSON lines)
        print(tables([json.loads(line) for line in Path(a.args[0]).read_text().splitlines() if line.strip()]))
    elif a.what == "cg":
        cg_rows(a.args[0], [float(v) for v in a.args[1:]], a.out, grid=a.lambdas)
    else:
        run_rows([Path(r) for r in a.args], a.out)



def tables(rows: list[dict]) -> str:
    """Markdown tables of the rows: tuned CG-SENSE per (data, acceleration) and every run against it."""
    best: dict = {}
    for r in rows:
        if r["kind"] == "cg-sense":
            key = (r["data"], r["acceleration"])
            if key not in best or r["val_psnr"] > best[key]["val_psnr"]:
                best[key] = r
    lines = ["| data | acc | λ grid (val PSNR dB) | best λ | CG-SENSE val PSNR |", "|---|---|---|---|---|"]
    for (data, acc), b in sorted(best.items()):
        grid = ", ".join(f"{r['lamda']:g}: {r['val_psnr']:.2f}" for r in rows
                         if r["kind"] == "cg-sense" and r["data"] == data and r["acceleration"] == acc)
        lines.append(f"| {data} | {acc:g}× | {grid} | {b['lamda']:g} | {b['val_psnr']:.2f} |")
    lines += ["", "| run | model | size | train subjects (slices) | acc | epochs (best) | lr | s/epoch (load) | "
                  "val PSNR | − CG-SENSE |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["kind"] != "run":
            continue
        cg = best.get((r["data"], r["acceleration"]))
        delta = f"{r['val_psnr'] - cg['val_psnr']:+.2f}" if cg else "—"
        size = r["scale"] + "".join(f", {k}={v}" for k, v in sorted(r["model_kwargs"].items()))
        resolved = json.loads((Path(r["run"]) / "config.json").read_text()).get("resolved", {})
        subjects = f"{len(resolved.get('train_scans', []))} ({resolved.get('slices', '?')})"
        lines.append(f"| {Path(r['run']).name} | {r['model']} | {size} | {subjects} | {r['acceleration']:g}× | {r['epochs']} "
                     f"({r['best_epoch']}) | {r['lr']:g} | {r['median_s_per_epoch']:.2f} ({r['load1']}) | "
                     f"{r['val_psnr']:.2f} | {delta} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
