"""A coarser copy of a dataset file (`subsample_dataset`): the same samples on every `stride`-th grid
point, the way the FNO benchmark data were made and the way a super-resolution study gets the same
trajectories at several resolutions."""
from __future__ import annotations

import json
from pathlib import Path

from common.errors import ConfigError, FormatError


def subsample_dataset(source, out, stride: int, overwrite: bool = False) -> Path:
    """Write a copy of a dataset file keeping every `stride`-th grid point on each spatial axis.

    This is how the FNO benchmark data were made (solved at 256², stored at 64²: stride 4). Same
    samples, same keys and attributes (the generator parameters get "subsample_stride" and "res"
    updated, and "source" names the file), marked complete like a generated file.
    Navier–Stokes `a` (N, S, S) and `u` (N, S, S, T) keep their last (time) axis; Burgers `a`, `u` (N, S)
    have one spatial axis; Darcy `coeff`, `sol` (N, S, S) — there node i of the coarse grid is node
    stride·i of the fine one, so the boundary nodes stay boundary nodes only when stride divides S − 1
    (checked). Returns `out` (an existing `out` is kept unless overwrite).
    """
    import h5py
    import numpy as np

    from common.files import atomic_h5

    source, out = Path(source), Path(out)
    if out.exists() and not overwrite:
        return out
    if stride < 1:
        raise ConfigError(f"stride must be >= 1, got {stride}")
    with h5py.File(source, "r") as src:
        attrs = dict(src.attrs)
        if not attrs.get("complete", False):
            raise FormatError(f"{source}: incomplete dataset file; finish generating it before subsampling")
        equation = attrs.get("equation", "")
        with atomic_h5(out) as dst:
            for key in src.keys():
                data = src[key][()]
                if key == "t":
                    dst.create_dataset(key, data=data)
                    continue
                size = data.shape[1]
                if equation == "darcy_2d" and (size - 1) % stride:
                    raise ConfigError(f"{source}: Darcy node grid {size} cannot be subsampled by {stride} keeping the "
                                      f"boundary nodes; stride must divide {size - 1}")
                axes = 1 if equation == "burgers_1d" else 2  # spatial axes after the sample axis
                index = (slice(None),) + (slice(None, None, stride),) * axes
                sub = np.ascontiguousarray(data[index])
                dst.create_dataset(key, data=sub, chunks=(1, *sub.shape[1:]))
            params = json.loads(attrs.get("generator_params", "{}") or "{}")
            params.update(res=int(sub.shape[1]), subsample_stride=int(stride) * int(params.get("subsample_stride", 1)))
            for key, value in attrs.items():
                dst.attrs[key] = value
            dst.attrs["generator_params"] = json.dumps(params, sort_keys=True)
            dst.attrs["source"] = str(source)
    return out


__all__ = ["subsample_dataset"]
