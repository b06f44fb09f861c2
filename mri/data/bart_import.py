"""Turn BART arrays (k-space + ESPIRiT maps, optional sampling pattern and reference image) into the
project's dataset format (the SKM-TEA layout of mri.data.simulate, read by `SkmTeaSlices`), so
`run.py mri train/eval` run on data made or processed by BART (`run.py data import-bart`).

BART layout expected (mri.data.bart_files): k-space (X, Y, 1, C) with slices, if several, along BART's
SLICE dim 13; maps (X, Y, 1, C[, M]) with the same slices (or one set for all); a pattern whose
non-singleton dims are (X, Y) (e.g. `bart poisson -Y X -Z Y` → (1, X, Y)); a reference image
(X, Y[, 1, 1, M]) per slice. Without a reference the target is Σ conj(S)·Fᴴ(k-space), the SENSE
combination (as the simulator's target; k-space should then be fully sampled). BART's FFT used by
`pics` is the centred unitary DFT, which is ours, so k-space needs no rescaling.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.errors import ConfigError, FormatError, RunExistsError
from common.files import atomic_h5, write_json_atomic
from mri.data.bart_files import BART_DIMS, read_cfl
from mri.data.masks import calibration_width, mask_key, poisson_disc_mask

SLICE_DIM = 13


def _slices(name, kind: str) -> np.ndarray:
    """BART array → (slices, X, Y, C, M) with dims 2 and 5–12, 14, 15 required to be 1."""
    a = read_cfl(name, squeeze_trailing=False)
    a = a.reshape(tuple(a.shape) + (1,) * (BART_DIMS - a.ndim))
    bad = [d for d in (2, *range(5, 13), 14, 15) if a.shape[d] != 1]
    if bad:
        raise FormatError(f"{name}: {kind} has dims {list(a.shape)}; expected (X, Y, 1, coils[, maps]) with slices "
                          f"in dim {SLICE_DIM} (for 3-D k-space: `bart fft -i -u 4` then `bart transpose 2 13`)")
    return np.ascontiguousarray(np.moveaxis(a[:, :, 0, :, :, 0, 0, 0, 0, 0, 0, 0, 0, :, 0, 0], -1, 0))


def read_pattern(name, shape) -> np.ndarray:
    """BART pattern/mask → bool (X, Y); its non-singleton dims must be (X, Y)."""
    p = np.squeeze(np.abs(read_cfl(name)))
    if p.shape != tuple(shape):
        raise FormatError(f"{name}: pattern has non-singleton dims {p.shape}, expected {tuple(shape)} (the k-space's X, Y)")
    return p > 0


def import_scan(kspace, maps, out_path, pattern=None, reference=None, accelerations=(), seed: int = 0,
                scan_id: str = "BART_000", split: str = "train") -> dict:
    """One scan's BART arrays → one SKM-TEA-layout .h5 (atomic). Masks: the BART pattern stored under
    its own acceleration's key, plus Poisson-disc masks drawn at `accelerations`. → {"accelerations"}"""
    ks = _slices(kspace, "k-space")[..., 0]                       # (S, X, Y, C)
    mp = _slices(maps, "maps")                                    # (S or 1, X, Y, C, M)
    n, X, Y, C = ks.shape
    if mp.shape[1:4] != (X, Y, C) or mp.shape[0] not in (1, n):
        raise FormatError(f"{maps}: maps (slices, X, Y, coils, maps) = {mp.shape} do not match k-space {ks.shape}")
    mp = np.broadcast_to(mp, (n, *mp.shape[1:]))
    if reference is not None:
        ref = _slices(reference, "reference")                     # (S, X, Y, 1, M)
        if ref.shape[:3] != (n, X, Y) or ref.shape[3] != 1:
            raise FormatError(f"{reference}: reference {ref.shape} does not match k-space (slices, X, Y) = {(n, X, Y)}")
        target = ref[:, :, :, 0, :]
    else:
        import sigpy as sp

        coil_images = sp.ifft(ks, axes=(1, 2))                    # centred unitary, as BART's pics
        target = np.einsum("sxycm,sxyc->sxym", np.conj(mp), coil_images)
    masks = {}
    if pattern is not None:
        m = read_pattern(pattern, (X, Y))
        masks[round(m.size / m.sum(), 1)] = m
    calib = calibration_width((X, Y))
    for acc in accelerations:
        masks[float(acc)] = poisson_disc_mask((X, Y), float(acc), (calib, calib), seed=seed)
    if not masks:
        raise ConfigError("no sampling mask: give --mask (a BART pattern) and/or --accelerations to draw Poisson-disc masks")
    with atomic_h5(out_path) as f:
        f.create_dataset("kspace", data=ks[:, :, :, None, :].astype(np.complex64))
        f.create_dataset("maps", data=mp.astype(np.complex64))
        f.create_dataset("target", data=target[:, :, :, None, :].astype(np.complex64))
        for acc, m in masks.items():
            f.create_dataset(mask_key(acc), data=m)
        f.attrs.update({"scan_id": scan_id, "subject_id": scan_id, "split": split, "simulated": False,
                        "source": "bart", "bart_kspace": str(kspace), "bart_maps": str(maps)})
    return {"accelerations": sorted(masks)}


def import_bart(kspaces, maps, out_dir, patterns=None, references=None, splits=None, accelerations=(),
                seed: int = 0, overwrite: bool = False) -> dict:
    """Import scans (lists of BART file names, one entry per scan; `maps` one per scan or one for all;
    `patterns` one for all or one per scan) into `out_dir` (BART_000.h5 … + meta.json).
    splits: (n_train, n_val, n_test) counts in scan order (default: all train). → meta dict."""
    n = len(kspaces)
    per_scan = lambda xs, what: (None if not xs else list(xs) * n if len(xs) == 1 else list(xs))  # noqa: E731
    maps, patterns, references = per_scan(maps, "maps"), per_scan(patterns, "mask"), per_scan(references, "ref")
    for what, xs in (("--maps", maps), ("--mask", patterns), ("--reference", references)):
        if xs is not None and len(xs) != n:
            raise ConfigError(f"{what}: give one file for all scans or one per --kspace ({n}), got {len(xs)}")
    if maps is None:
        raise ConfigError("--maps is required (e.g. `bart ecalib -m1 ksp sens`)")
    counts = tuple(splits) if splits else (n, 0, 0)
    if len(counts) != 3 or sum(counts) != n or min(counts) < 0:
        raise ConfigError(f"--splits takes three counts TRAIN VAL TEST summing to the {n} scans, got {counts}")
    out = Path(out_dir)
    if (out / "meta.json").exists() and not overwrite:
        raise RunExistsError(f"{out} already holds a dataset (meta.json); choose another --out or pass --overwrite")
    names = ["train"] * counts[0] + ["val"] * counts[1] + ["test"] * counts[2]
    ids, accs = [f"BART_{i:03d}" for i in range(n)], None
    for i, sid in enumerate(ids):
        info = import_scan(kspaces[i], maps[i], out / f"{sid}.h5", None if patterns is None else patterns[i],
                           None if references is None else references[i], accelerations, seed + i, sid, names[i])
        accs = info["accelerations"]
    meta = {"format": "SKM-TEA layout (imported from BART)", "format_version": 2,
            "splits": {s: [sid for sid, nm in zip(ids, names) if nm == s] for s in ("train", "val", "test")},
            "subjects": {sid: sid for sid in ids}, "accelerations": accs,
            "sources": {sid: [str(kspaces[i]), str(maps[i])] for i, sid in enumerate(ids)}}
    write_json_atomic(out / "meta.json", json.loads(json.dumps(meta)))
    return meta
