"""Evaluation of a reconstruction model on test scans: per-volume metrics (see `metrics`), their
mean ± standard error over volumes, inference speed, and example slices for figures.

    report = evaluate(model, data_dir, acceleration=4, scans=["SIM_006", "SIM_007"])
"""
from __future__ import annotations

import time

import numpy as np
import torch

from common.device import resolve_device
from common.stats import format_mean_se, mean_se
from mri.recon.metrics import volume_metrics
from mri.recon.training import ReconSlices, central_indices, load_model, open_slices, physics_of, run_model, to_device

METRICS = ("psnr", "ssim", "nrmse", "complex_psnr")


@torch.no_grad()
def reconstruct_volumes(model, data_dir, acceleration, scans=None, echo=0, device="auto", batch_size=8,
                        max_slices_per_scan=None, format: str = "auto", delays: dict | None = None):
    """{scan_id: (target (S, H, W), prediction (S, H, W))} as complex numpy arrays, and seconds spent
    in the model. Masks are those stored per scan (fixed, deterministic). ``delays`` (a dict, filled
    when given): scan_id → the scan's gradient delay in samples (simulated scans only)."""
    device = resolve_device(device) if isinstance(device, str) else device
    reader = open_slices(data_dir, scans, acceleration, echo, format)
    data = ReconSlices(reader, central_indices(reader, max_slices_per_scan))
    loader = torch.utils.data.DataLoader(data, batch_size, shuffle=False)
    model = model.to(device).eval()
    slices: dict[str, list] = {}
    seconds = 0.0
    for batch in loader:
        kspace, maps, mask, target = to_device(batch, device)
        start = time.perf_counter()
        pred = run_model(model, kspace, maps, mask, physics_of(batch, device))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds += time.perf_counter() - start
        for b, scan in enumerate(batch["scan_id"]):
            if delays is not None and "physics" in batch:
                delays[scan] = float(batch["physics"]["gradient_delay"][b])
            slices.setdefault(scan, []).append((int(batch["slice_index"][b]), target[b].cpu().numpy(),
                                                pred[b].cpu().numpy()))
    volumes = {}
    for scan, items in slices.items():
        items.sort(key=lambda t: t[0])
        volumes[scan] = (np.stack([t[1] for t in items]), np.stack([t[2] for t in items]))
    return volumes, seconds


@torch.no_grad()
def slice_flops(model, data_dir, acceleration, scan: str, echo=0, format: str = "auto") -> int | None:
    """Forward FLOPs (common.flops: matmuls and FFTs) of `model` reconstructing one central slice of `scan`,
    on the device the model is on; None for a classical reconstruction, whose work runs in numpy where the
    counter sees none of it (reporting 0 would call CG-SENSE free)."""
    from common.flops import forward_flops
    from mri.recon.classical import ClassicalRecon

    if isinstance(model, ClassicalRecon):
        return None
    device = next((t.device for t in [*model.parameters(), *model.buffers()]), torch.device("cpu"))
    reader = open_slices(data_dir, [scan], acceleration, echo, format)
    batch = next(iter(torch.utils.data.DataLoader(ReconSlices(reader, central_indices(reader, 1)), 1)))
    kspace, maps, mask, _ = to_device(batch, device)
    return forward_flops(lambda *inputs: run_model(model.eval(), *inputs), kspace, maps, mask,
                         physics_of(batch, device))


def evaluate(model, data_dir, acceleration, scans=None, echo=0, device="auto", batch_size=8,
             max_slices_per_scan=None, keep_examples: bool = True, format: str = "auto") -> dict:
    """Metrics of `model` on the test `scans` (ids; None = all) at `acceleration`.

    Returns {"per_volume": [{scan_id, psnr, ssim, nrmse, complex_psnr}], "<metric>_mean",
    "<metric>_se" for each metric, "slices", "slices_per_s", and when keep_examples "example":
    {target, prediction} middle slice of the first volume as complex arrays}.
    """
    delays: dict = {}
    volumes, seconds = reconstruct_volumes(model, data_dir, acceleration, scans, echo, device, batch_size,
                                           max_slices_per_scan, format, delays)
    # complex PSNR against the target in the phase the model's forward operator implies: the acquisition's
    # (metrics.scanner_phase_target) for ideal-FFT models; the object's for oracle-physics models, whose
    # operator already applies the delay
    corrects_delay = getattr(model, "needs_physics", False)
    per_volume = [{"scan_id": scan, **volume_metrics(t, p, gradient_delay=0.0 if corrects_delay else delays.get(scan, 0.0))}
                  for scan, (t, p) in volumes.items()]
    report = {"per_volume": per_volume, "acceleration": float(acceleration), "scans": list(volumes)}
    for m in METRICS:
        report[f"{m}_mean"], report[f"{m}_se"] = mean_se(v[m] for v in per_volume)
    n = sum(t.shape[0] for t, _ in volumes.values())
    report["slices"], report["slices_per_s"] = n, n / seconds if seconds > 0 else float("nan")
    if keep_examples and volumes:
        target, pred = next(iter(volumes.values()))
        mid = target.shape[0] // 2
        report["example"] = {"target": target[mid], "prediction": pred[mid]}
    return report


def evaluate_run(run_dir, data_dir=None, acceleration=None, scans=None, device="auto", which="best",
                 trust: bool = False, **kwargs) -> dict:
    """Evaluate the checkpoint of a training run (defaults: its own data folder, format and acceleration)."""
    model, cfg = load_model(run_dir, which, resolve_device(device), trust)
    kwargs.setdefault("format", cfg.format)
    return evaluate(model, data_dir or cfg.data_dir, acceleration or cfg.acceleration, scans, cfg.echo, device,
                    **kwargs)


def strip_examples(report: dict) -> dict:
    """The report without numpy example images (for JSON)."""
    return {k: v for k, v in report.items() if k != "example"}


def format_report(name: str, report: dict) -> str:
    return (f"{name}: PSNR {format_mean_se(report['psnr_mean'], report['psnr_se'], 2, 'dB')}, SSIM "
            f"{format_mean_se(report['ssim_mean'], report['ssim_se'])}, nRMSE {report['nrmse_mean']:.4f}, complex PSNR {report['complex_psnr_mean']:.2f} "
            f"dB over {len(report['per_volume'])} volume(s), {report['slices_per_s']:.1f} slices/s")


__all__ = ["evaluate", "evaluate_run", "reconstruct_volumes", "format_report", "strip_examples"]
