"""The report of the MRI protocol (`mri.recon.protocol`): <stem>.json (every per-seed, per-test-volume
value), <stem>.md (tables of both tracks in both metric conventions, paired-bootstrap intervals, data
efficiency, tuning grid, costs, goal checks, commands), <stem>.png (PSNR against acceleration, against
training subjects, and the intervals) and <stem>_examples.png (reconstructions and error maps).

Statistics (common.stats): a learned model's cell is the mean ± s.e. over seeds of its mean over the
test volumes; an untrained baseline (zf, CG-SENSE, L1-wavelet: deterministic) is the mean ± s.e. over
test volumes, marked †. A difference A − B is a two-level paired bootstrap (seeds, then test volumes
within a seed; `common.stats.compare_methods`); a deterministic baseline's value of a volume is paired
with that volume under every seed.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from common.files import save_figure, write_json_atomic, write_text_atomic
from common.stats import compare_methods, format_mean_se, mean_se
from common.tables import markdown_table

#: metric keys of the per-volume records: (key, label, higher is better)
METRICS = (("psnr_fastmri", "PSNR (dB)"), ("ssim_fastmri", "SSIM fastMRI"), ("ssim_skmtea", "SSIM SKM-TEA"),
           ("complex_psnr", "complex PSNR (dB)"))
#: differences reported with intervals besides "each model − zf"
PAIRS = (("unrolled-monarch", "unrolled-fft"), ("unrolled-dense", "unrolled-fft"), ("unrolled-diag", "unrolled-fft"),
         ("unrolled-monarch", "unrolled-diag"), ("msense", "diagsense"), ("msense", "dsense"),
         ("msense", "unet-plain"), ("msense", "unet"))
GOAL_MSENSE_DB, GOAL_MISMATCH_DB, GOAL_EXACT_DB = 1.5, 1.0, -0.1


def n_max(result) -> int:
    return max(result["config"]["curve_n"])


def values(result, model, track, acc, n=None, key="psnr_fastmri") -> np.ndarray | None:
    """(seeds, test volumes) array of one metric (seeds sorted; one row for an untrained model), or None."""
    n = n_max(result) if n is None else n
    cells = [c for c in result["cells"] if c["model"] == model and c["track"] == track
             and float(c["acceleration"]) == float(acc) and c["n_train"] in (n, 0)]
    if not cells:
        return None
    cells.sort(key=lambda c: -1 if c["seed"] is None else c["seed"])
    order = result["splits"]["test"]
    rows = []
    for c in cells:
        by_scan = {v["scan_id"]: v[key] for v in c["per_volume"]}
        rows.append([by_scan[s] for s in order])
    return np.asarray(rows, dtype=float)


def summary(array: np.ndarray) -> tuple[float, float, str]:
    """(mean, s.e., over what) of a (seeds, volumes) array: over seeds when there are several."""
    if array.shape[0] > 1:
        m, se = mean_se(array.mean(axis=1))
        return m, se, "seeds"
    m, se = mean_se(array[0])
    return m, se, "volumes"


def difference(result, a, b, track, acc, key="psnr_fastmri", n=None, n_resamples=10_000) -> dict | None:
    """Two-level paired bootstrap of mean(a) − mean(b) (seeds, then test volumes; see the module docstring)."""
    va, vb = values(result, a, track, acc, n, key), values(result, b, track, acc, n, key)
    if va is None or vb is None:
        return None
    seeds = max(va.shape[0], vb.shape[0])
    if va.shape[0] not in (1, seeds) or vb.shape[0] not in (1, seeds):
        return None  # unequal seed counts (an unfinished run): no pairing
    va, vb = np.broadcast_to(va, (seeds, va.shape[1])), np.broadcast_to(vb, (seeds, vb.shape[1]))
    return compare_methods(va, vb, "difference", n_resamples=n_resamples)


def _cell_text(array, digits) -> str:
    if array is None:
        return "—"
    m, se, over = summary(array)
    return format_mean_se(m, se, digits) + ("†" if over == "volumes" else "")


def _interval_text(d, digits=2) -> str:
    if d is None:
        return "—"
    mark = "" if d["low"] <= 0 <= d["high"] else " *"
    return f"{d['estimate']:+.{digits}f} [{d['low']:+.{digits}f}, {d['high']:+.{digits}f}]{mark}"


def _models(result) -> list[str]:
    cfg = result["config"]
    return list(cfg["classical_models"]) + list(cfg["learned_models"])


def _accs(result, track) -> list[float]:
    cfg = result["config"]
    accs = cfg["mismatch_accelerations"] if track == "mismatch" and cfg.get("mismatch_accelerations") else cfg["accelerations"]
    return [float(a) for a in accs]


def _first(result, model, key, default=None):
    for c in result["cells"]:
        if c["model"] == model and key in c:
            return c[key]
    return default


def bootstrap_table(result, n_resamples) -> dict:
    """{"<a> - <b> | <track> | <acc>x | <metric>": interval} for each model − zf and the PAIRS."""
    out = {}
    cfg = result["config"]
    for track in cfg["tracks"]:
        for acc in _accs(result, track):
            pairs = [(m, "zf") for m in _models(result) if m != "zf"] + list(PAIRS)
            for a, b in pairs:
                for key, _ in METRICS:
                    d = difference(result, a, b, track, acc, key, n_resamples=n_resamples)
                    if d is not None:
                        out[f"{a} - {b} | {track} | {acc:g}x | {key}"] = d
    return out


def goals(result, intervals) -> list[dict]:
    """The three goals of the brief, each with its interval and whether it is met."""
    cfg, out = result["config"], []

    def get(a, b, track, acc):
        return intervals.get(f"{a} - {b} | {track} | {acc:g}x | psnr_fastmri")

    if 2.0 in _accs(result, "exact"):
        d = get("msense", "zf", "exact", 2.0)
        out.append({"goal": f"mSENSE − zero-filled SENSE ≥ +{GOAL_MSENSE_DB} dB at 2× (exact track, test subjects)",
                    "interval": d, "met": bool(d and d["estimate"] >= GOAL_MSENSE_DB)})
    for track, threshold, text in (("mismatch", GOAL_MISMATCH_DB, f"≥ +{GOAL_MISMATCH_DB} dB, interval excluding 0"),
                                   ("exact", GOAL_EXACT_DB, f"≥ {GOAL_EXACT_DB} dB")):
        if track not in cfg["tracks"]:
            continue
        for acc in _accs(result, track):
            d = get("unrolled-monarch", "unrolled-fft", track, acc)
            met = bool(d and d["estimate"] >= threshold and (track == "exact" or d["low"] > 0))
            out.append({"goal": f"unrolled-monarch − unrolled-fft {text} ({track} track, {acc:g}×)",
                        "interval": d, "met": met})
    return out


def _commands(result) -> list[str]:
    cfg = result["config"]
    sim = cfg["sim_overrides"]
    accs = " ".join(f"{a:g}" for a in sim.get("accelerations", []))
    lines = []
    for track in cfg["tracks"]:
        preset = cfg["sim_preset"] + ("-mismatch" if track == "mismatch" else "")
        suffix = "-mismatch" if track == "mismatch" else ""
        extra = f" --accelerations {accs}" if accs else ""
        if "shape" in sim:
            extra += " --shape " + " ".join(str(s) for s in sim["shape"])
        lines.append(f"python run.py data mri-sim --preset {preset}{extra} "
                     f"--out {cfg['data_root']}/mri-{cfg['sim_preset']}{suffix}")
    lines.append(result["command"].replace(" --evaluate-only", ""))
    return lines


def markdown(result, intervals, goal_rows) -> str:
    cfg = result["config"]
    nm = n_max(result)
    lines = ["# MRI reconstruction protocol", "",
             f"Simulated multi-coil data, slices {result['shape'][0]}×{result['shape'][1]}, "
             f"{result.get('coils', '?')} coils (`{cfg['sim_preset']}` preset; mismatch track: "
             f"{result.get('mismatch', '?')}); subjects: "
             f"{len(result['splits']['train'])} train, {len(result['splits']['val'])} validation, "
             f"{len(result['splits']['test'])} test (one subject per scan, disjoint z-bands; checked on the files). "
             f"Device: {result['device']}.", "",
             "## Commands", "", "```"] + _commands(result) + ["```", "",
             "The protocol command trains nothing that is already finished (runs under "
             f"`{cfg['out_dir']}`) and tests each selected checkpoint once, after all training; this report "
             f"was written by `{result['command']}`.", "",
             "## Protocol", "",
             f"- Training: {cfg['epochs']} epochs, batch {cfg['batch_size']}, Adam, {cfg['loss']} loss, weight decay "
             f"{cfg['weight_decay']}; scale `{cfg['scale']}` (unet-plain: fastMRI U-Net, 32 channels, 4 pools); "
             "Poisson-disc masks drawn per (seed, epoch, slice); the dataset's fixed masks for validation and test; "
             "`best.pt` = lowest validation loss.",
             f"- Tuning (validation only, exact track, {cfg['tune_acceleration']:g}×, seed {cfg['seeds'][0]}): the "
             f"same grid lr ∈ {list(cfg['lr_grid'])} × transform lr ∈ {list(cfg['transform_lr_grid'])} for every "
             "learned model; an axis that acts on no parameter of a model collapses (FFT models have no transform "
             "parameters, *sense models no network parameters). The chosen point is used for every track, "
             "acceleration and seed.",
             f"- Seeds {list(cfg['seeds'])}; accelerations: exact track {[f'{a:g}×' for a in _accs(result, 'exact')]}"
             + (f", mismatch track {[f'{a:g}×' for a in _accs(result, 'mismatch')]}" if "mismatch" in cfg["tracks"]
                else "") + ".",
             "- Classical baselines: λ of CG-SENSE and L1-wavelet chosen on the validation slices per track and "
             f"acceleration (`classical.tune_lambda`, {cfg['classical_iters']} iterations).",
             "- Metrics per test volume (magnitude, data range = volume max |target|): **fastMRI convention** PSNR and "
             "SSIM (7×7 uniform window, per slice, averaged); **SKM-TEA/meddlr convention** SSIM (Gaussian σ 1.5, 11 "
             "wide; volumes of < 11 slices: per-slice 2-D Gaussian SSIM averaged). PSNR is the same formula in both "
             "conventions with one data range per volume, so it is reported once. Also complex PSNR "
             "(meddlr: 20 log10(max|target| / RMSE of the complex difference)), which sees phase errors.",
             "- Cells: mean ± s.e. over seeds of the mean over test volumes; † = deterministic baseline, mean ± s.e. "
             "over test volumes. Intervals: two-level paired bootstrap 95 % (seeds, then test volumes within a seed) "
             f"({cfg['n_resamples']} resamples); * = the interval excludes 0.", ""]
    for track in cfg["tracks"]:
        accs = _accs(result, track)
        for key, label in METRICS:
            digits = 2 if key.startswith("psnr") else 4
            rows = []
            for m in _models(result):
                cells = [values(result, m, track, a, None, key) for a in accs]
                if any(c is not None for c in cells):
                    rows.append([m] + [_cell_text(c, digits) for c in cells])
            lines += [f"## {track} track — {label}", "",
                      markdown_table(["model"] + [f"{a:g}×" for a in accs], rows), ""]
        for key, label in (("psnr_fastmri", "magnitude PSNR"), ("complex_psnr", "complex PSNR")):
            rows = [[f"{a_} − {b_}"] + [_interval_text(intervals.get(f"{a_} - {b_} | {track} | {a:g}x | {key}"))
                                        for a in accs]
                    for a_, b_ in [(m, "zf") for m in _models(result) if m != "zf"] + list(PAIRS)]
            lines += [f"## {track} track — {label} differences (dB), two-level paired bootstrap 95 %", "",
                      markdown_table(["difference"] + [f"{a:g}×" for a in accs], rows), ""]
        rows = []
        for a_, b_ in (("unrolled-monarch", "unrolled-fft"), ("msense", "zf")):
            for key in ("ssim_fastmri", "ssim_skmtea"):
                rows.append([f"{a_} − {b_} ({key})"] +
                            [_interval_text(intervals.get(f"{a_} - {b_} | {track} | {a:g}x | {key}"), 4) for a in accs])
        lines += [f"## {track} track — SSIM differences, both conventions", "",
                  markdown_table(["difference"] + [f"{a:g}×" for a in accs], rows), ""]

    acc, track = float(cfg["curve_acceleration"]), cfg["tracks"][0]
    ns = sorted(cfg["curve_n"])
    rows = []
    for m in cfg["curve_models"]:
        rows.append([m] + [_cell_text(values(result, m, track, acc, n), 2) for n in ns])
    zf = values(result, "zf", track, acc)
    rows.append(["zf (no training)"] + [_cell_text(zf, 2)] * len(ns))
    diffs = [difference(result, "msense", "unet-plain", track, acc, n=n, n_resamples=cfg["n_resamples"]) for n in ns]
    rows.append(["msense − unet-plain"] + [_interval_text(d) for d in diffs])
    diffs = [difference(result, "msense", "unet", track, acc, n=n, n_resamples=cfg["n_resamples"]) for n in ns]
    rows.append(["msense − unet (residual)"] + [_interval_text(d) for d in diffs])
    lines += [f"## Data efficiency ({track} track, {acc:g}×, PSNR dB; paper Table 5)", "",
              markdown_table(["model"] + [f"N={n}" for n in ns], rows), ""]

    rows = []
    for m in cfg["learned_models"]:
        grid = result["grid"].get(m, [])
        chosen = result["chosen"].get(m)
        rows.append([m, ", ".join(f"({g['lr']:g}, {g['transform_lr']:g}): {g['best_val_loss']:.4f}" for g in grid),
                     f"({chosen[0]:g}, {chosen[1]:g})" if chosen else "not tuned"])
    lines += ["## Tuning grid (validation loss at the best epoch; (lr, transform lr))", "",
              markdown_table(["model", "grid points", "chosen"], rows), ""]

    rows = []
    for m in _models(result):
        cells = [c for c in result["cells"] if c["model"] == m and c["n_train"] in (nm, 0)]
        if not cells:
            continue
        spe = [c["seconds_per_epoch"] for c in cells if "seconds_per_epoch" in c]
        best = [c["best_epoch"] for c in cells if "best_epoch" in c]
        rows.append([m, f"{cells[0]['params']:,}", f"{cells[0]['transform_params']:,}",
                     f"{np.mean(spe):.2f}" if spe else "—", f"{np.mean(best):.1f}" if best else "—",
                     f"{np.mean([c['slices_per_s'] for c in cells]):.1f}",
                     f"{cells[0]['lambda']:g}" if cells[0].get("lambda") is not None else "—"])
    lines += ["## Costs", "", markdown_table(["model", "params", "transform params", "s/epoch (train)",
                                               "mean best epoch", "test slices/s", "λ (first cell)"], rows), "",
              f"Seconds are wall time on {result['device']} shared with other jobs (one thread): comparable "
              "within this table only.", ""]

    lines += ["## Goals", ""]
    for g in goal_rows:
        lines.append(f"- {'MET' if g['met'] else 'NOT MET'}: {g['goal']}: {_interval_text(g['interval'])}")
    if result["not_run"]:
        lines += ["", f"## Not run ({len(result['not_run'])} planned runs unfinished)", "",
                  ", ".join(result["not_run"][:60]) + (" …" if len(result["not_run"]) > 60 else "")]
    lines += ["", "Per-seed, per-volume values of every cell, the intervals and the per-epoch validation curves are "
              f"in `{cfg['stem']}.json`.", ""]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_summary(result, intervals, path) -> Path:
    """PSNR against acceleration (each track), against training subjects, and the main intervals."""
    plt = _pyplot()
    cfg = result["config"]
    tracks = list(cfg["tracks"])
    fig, axes = plt.subplots(1, len(tracks) + 2, figsize=(5 * (len(tracks) + 2), 4.2))
    palette = plt.get_cmap("tab20").colors  # one colour per model (tab10 repeats beyond ten models)
    colour = {m: palette[i % len(palette)] for i, m in enumerate(_models(result))}
    for ax, track in zip(axes, tracks):
        accs = _accs(result, track)
        for m in _models(result):
            pts = [(a, *summary(v)[:2]) for a in accs if (v := values(result, m, track, a)) is not None]
            if pts:
                a, mu, se = zip(*pts)
                ax.errorbar(a, mu, yerr=[0 if math.isnan(s) else s for s in se], marker="o", capsize=2, label=m,
                            color=colour[m], linestyle="--" if m in cfg["classical_models"] else "-")
        ax.set_xscale("log", base=2)
        ax.set_xticks(accs, [f"{a:g}×" for a in accs])
        ax.set_title(f"{track} track: test PSNR (fastMRI)")
        ax.set_xlabel("acceleration")
        ax.set_ylabel("PSNR (dB)")
    axes[0].legend(fontsize=7)
    ax = axes[len(tracks)]
    acc, ns = float(cfg["curve_acceleration"]), sorted(cfg["curve_n"])
    for m in cfg["curve_models"]:
        pts = [(n, *summary(v)[:2]) for n in ns if (v := values(result, m, tracks[0], acc, n)) is not None]
        if pts:
            n, mu, se = zip(*pts)
            ax.errorbar(n, mu, yerr=[0 if math.isnan(s) else s for s in se], marker="o", capsize=2, label=m,
                        color=colour.get(m))
    zf = values(result, "zf", tracks[0], acc)
    if zf is not None:
        ax.axhline(summary(zf)[0], color="gray", linestyle=":", label="zf")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_title(f"data efficiency ({tracks[0]}, {acc:g}×)")
    ax.set_xlabel("training subjects")
    ax.legend(fontsize=7)
    ax = axes[-1]
    keys = [k for k in intervals if k.endswith("psnr_fastmri") and
            (k.startswith("unrolled-monarch - unrolled-fft") or k.startswith("msense - zf")
             or k.startswith("unrolled-diag - unrolled-fft") or k.startswith("unrolled-dense - unrolled-fft"))]
    for i, k in enumerate(keys):
        d = intervals[k]
        ax.errorbar(d["estimate"], i, xerr=[[d["estimate"] - d["low"]], [d["high"] - d["estimate"]]], fmt="o",
                    capsize=3)
    ax.axvline(0, color="gray", linewidth=0.8)
    ax.set_yticks(range(len(keys)), [k.replace(" | psnr_fastmri", "") for k in keys], fontsize=7)
    ax.set_title("two-level paired bootstrap 95 % (PSNR dB)")
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path, dpi=110)
    return path


def example_file(result, cell) -> Path:
    """The .npz (middle slice of the first test volume) written with a cell's test metrics."""
    if cell.get("example_file"):
        return Path(cell["example_file"])
    test_dir = Path(result["config"]["out_dir"]) / "test"
    if cell.get("run"):
        return test_dir / f"{Path(cell['run']).name}.npz"
    return test_dir / f"{cell['model']}_{cell['track']}_acc{cell['acceleration']:g}.npz"


def plot_examples(result, path) -> Path | None:
    """Per track: |target| and each model's reconstruction (seed 0) at example_acceleration, and the error maps."""
    plt = _pyplot()
    cfg = result["config"]
    acc, seed0, nm = float(cfg["example_acceleration"]), cfg["seeds"][0], n_max(result)
    panels = []
    for track in cfg["tracks"]:
        row = {}
        for m in _models(result):
            for c in result["cells"]:
                if (c["model"] == m and c["track"] == track and float(c["acceleration"]) == acc
                        and c["n_train"] in (nm, 0) and c["seed"] in (seed0, None) and example_file(result, c).exists()):
                    row[m] = np.load(example_file(result, c))
        if row:
            panels.append((track, row))
    if not panels:
        return None
    n = max(len(r) for _, r in panels) + 1
    fig, axes = plt.subplots(2 * len(panels), n, figsize=(1.9 * n, 4.0 * len(panels)), squeeze=False)
    for p, (track, row) in enumerate(panels):
        target = np.abs(next(iter(row.values()))["target"])
        vmax, emax = float(target.max()), float(target.max()) / 5
        axes[2 * p, 0].imshow(target, cmap="gray", vmin=0, vmax=vmax)
        axes[2 * p, 0].set_title(f"target ({track})", fontsize=8)
        axes[2 * p + 1, 0].text(0.5, 0.5, f"|error|\n0–{emax:.2g}", ha="center", va="center", fontsize=8)
        for i, (m, d) in enumerate(row.items(), start=1):
            pred = np.abs(d["prediction"])
            axes[2 * p, i].imshow(pred, cmap="gray", vmin=0, vmax=vmax)
            axes[2 * p, i].set_title(m, fontsize=8)
            axes[2 * p + 1, i].imshow(np.abs(pred - target), cmap="magma", vmin=0, vmax=emax)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"test subject {result['splits']['test'][0]}, middle slice, {acc:g}×, seed {seed0}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path, dpi=110)
    return path


def write_report(result: dict, report_dir, stem: str, n_resamples: int = 10_000) -> dict:
    """Write <stem>.json, .md, .png and _examples.png into report_dir; returns the paths written."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    intervals = bootstrap_table(result, n_resamples)
    goal_rows = goals(result, intervals)
    payload = {**result, "intervals": intervals, "goals": goal_rows}
    paths = {"json": write_json_atomic(report_dir / f"{stem}.json", payload),
             "md": write_text_atomic(report_dir / f"{stem}.md", markdown(result, intervals, goal_rows)),
             "png": plot_summary(result, intervals, report_dir / f"{stem}.png")}
    examples = plot_examples(result, report_dir / f"{stem}_examples.png")
    if examples is not None:
        paths["examples"] = examples
    return paths


__all__ = ["write_report", "values", "summary", "difference", "bootstrap_table", "goals", "markdown"]
