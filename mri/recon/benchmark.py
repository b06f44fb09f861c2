"""Inference speed of every reconstruction model: slices per second at given slice sizes (random
k-space, birdcage-like random maps, a Poisson-disc-density random mask), CPU and/or GPU."""
from __future__ import annotations

import math

import torch

from common.environment import device_name
from common.timing import median_time
from mri.recon.models import build_model, transform_of

DEFAULT_SIZES = ((256, 256), (512, 160))


def bench_models(models, sizes=DEFAULT_SIZES, device="cpu", batch: int = 1, coils: int = 8, repeats: int = 5,
                 scale: str = "full", max_seconds: float = 60.0) -> list[dict]:
    """[{model, transform, size, device, slices_per_s, ms_per_slice}] — median of `repeats` timed calls
    after one warm-up; a model whose warm-up call exceeds `max_seconds` is timed once (noted)."""
    device = torch.device(device)
    rows = []
    for h, w in sizes:
        g = torch.Generator().manual_seed(0)
        kspace = torch.randn(batch, coils, h, w, dtype=torch.complex64, generator=g).to(device)
        maps = torch.randn(batch, coils, h, w, dtype=torch.complex64, generator=g).to(device) / math.sqrt(coils)
        mask = (torch.rand(batch, h, w, generator=g) < 0.4).float().to(device)
        for name in models:
            model = build_model(name, (h, w), scale, max_iter=30).to(device).eval()
            with torch.no_grad():
                fn = lambda: model(kspace * mask.unsqueeze(1), maps, mask)  # noqa: E731
                seconds = median_time(fn, device, repeats=1, warmup=0)
                reps = repeats if seconds * repeats <= max_seconds else 1
                if reps > 1:
                    seconds = median_time(fn, device, repeats=reps, warmup=1)
            rows.append({"model": name, "transform": transform_of(name), "size": f"{h}x{w}", "device": device.type,
                         "device_name": device_name(device), "batch": batch, "coils": coils, "scale": scale,
                         "repeats": reps, "slices_per_s": batch / seconds, "ms_per_slice": 1e3 * seconds / batch})
    return rows
