"""PNG figures of evaluation and comparison reports (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

from common.files import save_figure

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def error_vs_step(curves: dict, path: Path, title: str = "") -> Path:
    """curves: {label: [relative L2 per predicted step]} → line plot."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=label)
    ax.set_xlabel("predicted step")
    ax.set_ylabel("relative L2")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return path


def predicted_vs_true(pred, true, path: Path, samples: int = 3, title: str = "") -> Path:
    """pred, true: (N, T, *S) numpy arrays (2-D fields: images of the last step; 1-D: line plots)."""
    samples = min(samples, pred.shape[0])
    two_d = pred.ndim == 4
    fig, axes = plt.subplots(samples, 3 if two_d else 1, figsize=(9 if two_d else 5, 2.8 * samples), squeeze=False)
    for row in range(samples):
        p, t = pred[row, -1], true[row, -1]
        if two_d:
            lim = float(abs(t).max())
            for col, (field, name) in enumerate([(t, "true"), (p, "predicted"), (p - t, "error")]):
                image = axes[row, col].imshow(field, cmap="RdBu_r", vmin=-lim, vmax=lim)
                axes[row, col].set_title(f"sample {row}: {name}")
                axes[row, col].axis("off")
            fig.colorbar(image, ax=axes[row].tolist(), shrink=0.8)
        else:
            axes[row, 0].plot(t, label="true")
            axes[row, 0].plot(p, "--", label="predicted")
            axes[row, 0].legend()
    fig.suptitle(title)
    save_figure(fig, path, dpi=110)
    return path


def comparison_bars(rows: list, path: Path) -> Path:
    """Bar chart of rel_l2_mean ± se per (dataset, transform)."""
    labels = [f"{r['dataset']}\n{r['transform']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rows)), 3.5))
    ax.bar(range(len(rows)), [r["rel_l2_mean"] for r in rows], yerr=[r["rel_l2_se"] for r in rows], capsize=4,
           color=["C0" if r["transform"] == "fft" else "C1" if r["transform"] == "dense" else "C2" for r in rows])
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("relative L2 (mean ± s.e.)")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return path
