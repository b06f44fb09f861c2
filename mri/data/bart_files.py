"""BART's array files: `name.hdr` (text: "# Dimensions" then 16 sizes) + `name.cfl` (raw complex64,
little-endian, column-major / Fortran order, the first dimension fastest).

    x = read_cfl("ksp")          # numpy complex64 with the header's dims, trailing 1s dropped
    write_cfl("img", x)          # pads the dims to BART's 16 in the header; both files written atomically

BART's axis order (its `md_*` convention): 0 READ, 1 PHASE1, 2 PHASE2, 3 COIL, 4 MAPS, … 10 TIME.
A 2-D slice's k-space from `bart phantom -x N -s C -k` reads as (N, N, 1, C); see `bart_import`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import FormatError
from common.files import atomic_path

BART_DIMS = 16


def _base(name) -> Path:
    p = Path(name)
    return p.with_suffix("") if p.suffix in (".cfl", ".hdr") else p


def read_cfl(name, squeeze_trailing: bool = True) -> np.ndarray:
    """`name` (with or without .cfl/.hdr) → complex64 array of the header's dims (Fortran order); with
    squeeze_trailing the trailing size-1 dims are dropped (never the leading ones: BART's axes keep
    their meaning). FormatError for a missing/garbled header or a data file of the wrong size."""
    base = _base(name)
    hdr, cfl = base.with_suffix(".hdr"), base.with_suffix(".cfl")
    if not hdr.exists() or not cfl.exists():
        raise FormatError(f"BART array {base}: expected {hdr.name} and {cfl.name} next to each other")
    lines = [ln.strip() for ln in hdr.read_text().splitlines()]
    try:
        dims = [int(v) for v in lines[lines.index("# Dimensions") + 1].split()]
    except (ValueError, IndexError):
        raise FormatError(f"{hdr}: expected a line '# Dimensions' followed by the sizes (BART's .hdr)") from None
    if not dims or any(d < 1 for d in dims):
        raise FormatError(f"{hdr}: dimensions must be positive integers, got {dims}")
    count = int(np.prod(dims))
    data = np.fromfile(cfl, dtype="<c8")
    if data.size != count:
        raise FormatError(f"{cfl}: holds {data.size} complex values but {hdr.name} says {dims} = {count}")
    if squeeze_trailing:
        while len(dims) > 1 and dims[-1] == 1:
            dims = dims[:-1]
    return data.reshape(dims, order="F").astype(np.complex64, copy=False)


def write_cfl(name, array) -> Path:
    """Write `array` (any numeric, ≤ 16 dims) as BART's name.hdr + name.cfl (complex64, Fortran order);
    each file atomically, the data first so a complete header always describes complete data."""
    arr = np.asarray(array)
    if arr.ndim > BART_DIMS:
        raise FormatError(f"BART arrays have at most {BART_DIMS} dims, got {arr.ndim}")
    base = _base(name)
    dims = list(arr.shape) + [1] * (BART_DIMS - arr.ndim)
    with atomic_path(base.with_suffix(".cfl")) as tmp:
        np.asarray(arr, dtype="<c8").ravel(order="F").tofile(tmp)
    with atomic_path(base.with_suffix(".hdr")) as tmp:
        tmp.write_text("# Dimensions\n" + " ".join(str(d) for d in dims) + " \n")
    return base


def write_slices_cfl(name, images) -> Path:
    """Reconstructions (slices, H, W) (numpy or torch, complex) → BART image (H, W, 1, …, slices in dim 13),
    the layout `bart pics` writes for a multi-slice reconstruction; one slice (H, W) stays (H, W)."""
    arr = np.asarray(images.detach().cpu().numpy() if hasattr(images, "detach") else images)
    if arr.ndim == 2:
        return write_cfl(name, arr)
    if arr.ndim != 3:
        raise FormatError(f"reconstructions must be (slices, H, W) or (H, W), got shape {arr.shape}")
    out = np.zeros(arr.shape[1:] + (1,) * 11 + (arr.shape[0],), np.complex64)
    out[..., :] = np.moveaxis(arr, 0, -1).reshape(out.shape)
    return write_cfl(name, out)
