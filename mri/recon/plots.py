"""Figures of the comparison: reconstructions with error maps side by side, and PSNR curves."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.files import save_figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_examples(target: np.ndarray, predictions: dict, path, title: str = "") -> Path:
    """Top row: |target| and |prediction| per model; bottom row: ||prediction| − |target|| (shared scale)."""
    plt = _pyplot()
    names = list(predictions)
    n = len(names) + 1
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.6), squeeze=False)
    vmax = float(np.abs(target).max())
    errors = {k: np.abs(np.abs(v) - np.abs(target)) for k, v in predictions.items()}
    emax = max((float(e.max()) for e in errors.values()), default=1.0) / 2 or 1.0
    axes[0, 0].imshow(np.abs(target), cmap="gray", vmin=0, vmax=vmax)
    axes[0, 0].set_title("target", fontsize=9)
    axes[1, 0].axis("off")
    for i, name in enumerate(names, start=1):
        axes[0, i].imshow(np.abs(predictions[name]), cmap="gray", vmin=0, vmax=vmax)
        axes[0, i].set_title(name, fontsize=9)
        axes[1, i].imshow(errors[name], cmap="magma", vmin=0, vmax=emax)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1, 1].set_ylabel(f"|error| (0–{emax:.2g})", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path, dpi=110)
    return path


def plot_curves(rows: list[dict], accelerations, n_max: int, acc0: float, path) -> Path:
    """PSNR vs acceleration (at n_max training scans) and vs number of training scans (at acc0)."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    models = list(dict.fromkeys(r["model"] for r in rows))
    for m in models:
        mine = [r for r in rows if r["model"] == m]
        by_acc = sorted((r["acceleration"], r["psnr_mean"], r["psnr_se"]) for r in mine
                        if r["n_train_scans"] in (0, n_max))
        if by_acc:
            x, y, e = zip(*by_acc)
            a.errorbar(x, y, yerr=e, marker="o", label=m, capsize=2)
        by_n = sorted((r["n_train_scans"], r["psnr_mean"], r["psnr_se"]) for r in mine
                      if r["acceleration"] == acc0 and r["n_train_scans"] > 0)
        if by_n:
            x, y, e = zip(*by_n)
            b.errorbar(x, y, yerr=e, marker="o", label=m, capsize=2)
        elif mine and mine[0]["n_train_scans"] == 0:
            ref = [r for r in mine if r["acceleration"] == acc0]
            if ref:
                b.axhline(ref[0]["psnr_mean"], ls="--", lw=1, label=m, color=a.lines[-1].get_color() if a.lines else None)
    a.set(xlabel="acceleration", ylabel="PSNR (dB)", title=f"PSNR vs acceleration ({n_max} training scans)")
    b.set(xlabel="training scans", ylabel="PSNR (dB)", title=f"PSNR vs training scans ({acc0:g}×)")
    b.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path, dpi=110)
    return path
