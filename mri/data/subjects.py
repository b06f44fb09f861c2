"""Distinct simulated subjects and the train/val/test split of a simulated dataset.

Every simulated scan is its own subject (subject id ``SUBJ_s{seed}_{index:03d}``), drawn from
(seed, scan index) only:

``mni`` subjects: the MNI152 template (mri.data.anatomy) deformed by a per-subject anisotropic scaling
    (0.88–1.12 per axis, about the brain centre) and a smooth random elastic displacement (a 6×6×6
    Gaussian grid of std 3 mm, cubic-spline interpolated, so tissue boundaries move by a few mm and the
    ventricles and cortex change shape), with per-subject tissue weights (each of GM/WM/CSF × U(0.85,
    1.15) around the contrast's centre) — one anatomy template, but no two subjects share geometry or
    contrast. Slices are sampled from the deformed volume at fractional z (trilinear).
``phantom`` subjects: sigpy's 3-D Shepp–Logan ellipsoids (sigpy.sim.phantom) with perturbed scales,
    offsets, angles and amplitudes plus 2–5 random extra ellipsoids (lesion-like), sliced at z.
``mixed``: every fourth subject of each split (position 3, 7, …) is a phantom, the rest are mni.
Each subject also gets its own placement (flips, rotation, zoom, shift, gamma; anatomy.augment_and_place),
coil geometry and SNR (mri.data.simulate).

Splits: scans 0 … n_train−1 are train, the next n_val validation, the last n_test test. Slices of a
scan come from axial bands reserved to its split, so no test slice position (in template space) is
ever used for training: the usable axial extent (MNI: the 93 template slices whose brain area exceeds
half the largest; phantom: z ∈ [−0.6, 0.6]) is cut into 8 equal bands assigned
train, val, train, test, train, val, train, test (from inferior to superior) — interleaved so every
split spans the whole brain instead of testing on a region never seen in training — and a 10 % margin
at each band edge stays unused, so slices of different splits are ≥ 20 % of a band (≈ 2.3 mm) apart.
A scan's slab (1–3 mm spacing, squeezed to fit) lies inside one band of its split.
"""
from __future__ import annotations

import numpy as np

from common.errors import ConfigError
from mri.data.anatomy import CONTRASTS, SECOND_ECHO, augment_and_place, mni152_tissues

SPLITS = ("train", "val", "test")
BANDS = ("train", "val", "train", "test") * 2  # 8 interleaved axial bands, inferior → superior
BAND_MARGIN = 0.1  # fraction of a band left empty at each edge
KINDS = ("mni", "phantom", "mixed")
PHANTOM_Z = 0.6  # phantom slices span z ∈ [−0.6, 0.6] of sigpy's unit cube


def subject_id(seed: int, index: int) -> str:
    return f"SUBJ_s{seed}_{index:03d}"


def split_of(index: int, n_train: int, n_val: int, n_test: int) -> str:
    """Split of scan ``index``: contiguous blocks train, val, test."""
    if not 0 <= index < n_train + n_val + n_test:
        raise IndexError(f"scan index {index} outside 0 … {n_train + n_val + n_test - 1}")
    return "train" if index < n_train else "val" if index < n_train + n_val else "test"


def position_in_split(index: int, n_train: int, n_val: int) -> int:
    return index if index < n_train else index - n_train if index < n_train + n_val else index - n_train - n_val


def split_z_ranges(split: str) -> list[tuple[float, float]]:
    """Usable (low, high) intervals, normalised to [0, 1] of the axial extent, of ``split``'s bands."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    width = 1 / len(BANDS)
    return [((b + BAND_MARGIN) * width, (b + 1 - BAND_MARGIN) * width) for b, s in enumerate(BANDS) if s == split]


def slab_positions(split: str, n_slices: int, extent_mm: float, rng: np.random.Generator) -> np.ndarray:
    """(n_slices,) normalised z positions of one scan: a slab 1–3 mm apart inside one band of the split."""
    ranges = split_z_ranges(split)
    low, high = ranges[int(rng.integers(len(ranges)))]
    span = min((n_slices - 1) * rng.uniform(1.0, 3.0) / extent_mm, high - low)
    start = rng.uniform(low, max(low, high - span))  # span = high − low can round below low
    return start + np.linspace(0.0, span, n_slices)


def _mni_extent() -> tuple[int, int]:
    area = (mni152_tissues()[0] > 0.02).sum(axis=(0, 1))
    valid = np.flatnonzero(area > 0.5 * area.max())  # skip the thin top and bottom of the brain
    return int(valid[0]), int(valid[-1])


def mni_subject_tissues(z_norm: np.ndarray, rng: np.random.Generator, elastic_mm: float = 3.0) -> np.ndarray:
    """(n, 3, 197, 233) GM, WM, CSF maps of a deformed template at normalised axial positions ``z_norm``."""
    from scipy import ndimage

    tissues = mni152_tissues()[1:]  # (3, X, Y, Z): GM, WM, CSF
    dims = np.array(tissues.shape[1:], dtype=np.float64)
    centre = (dims - 1) / 2
    scale = rng.uniform(0.88, 1.12, 3)
    coarse = rng.standard_normal((3, 6, 6, 6)) * elastic_mm  # displacement (voxels = mm) on a 6³ grid
    z_low, z_high = _mni_extent()
    x, y = np.meshgrid(np.arange(dims[0]), np.arange(dims[1]), indexing="ij")
    out = np.empty((len(z_norm), 3, *x.shape), np.float32)
    for s, zn in enumerate(z_norm):
        q = np.stack([x, y, np.full(x.shape, z_low + zn * (z_high - z_low))]).reshape(3, -1)  # output voxels
        on_grid = q * (5 / (dims - 1))[:, None]  # their place on the 6³ displacement grid
        shift = np.stack([ndimage.map_coordinates(c, on_grid, order=3, mode="nearest") for c in coarse])
        source = centre[:, None] + (q - centre[:, None]) / scale[:, None] + shift
        for t in range(3):
            out[s, t] = ndimage.map_coordinates(tissues[t], source, order=1, cval=0.0).reshape(x.shape)
    return out


def mni_subject_images(z_norm, echoes: int, contrast: str, rng: np.random.Generator) -> np.ndarray:
    """(n, echoes, 197, 233) magnitude images of a new mni subject (before placement)."""
    tissues = mni_subject_tissues(np.asarray(z_norm), rng)
    jitter = rng.uniform(0.85, 1.15, (2, 3))
    weights = [np.asarray(CONTRASTS[contrast]) * jitter[0], np.asarray(SECOND_ECHO) * jitter[1]]
    return np.stack([np.einsum("t,nthw->nhw", weights[e].astype(np.float32), tissues) for e in range(echoes)], 1)


def phantom_subject_images(z_norm, echoes: int, rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """(n, echoes, size, size) magnitude slices of a new 3-D Shepp–Logan subject (sigpy.sim.phantom)."""
    import sigpy.sim as sim

    amps = np.array(sim.sl_amps, dtype=np.float64)
    scales, offsets = np.array(sim.sl_scales, np.float64), np.array(sim.sl_offsets, np.float64)
    angles = np.array(sim.sl_angles, np.float64)
    head = rng.uniform(0.9, 1.1, 3)
    scales[:2] *= head  # skull and brain grow together (the skull keeps its thickness ratio)
    scales[2:] *= rng.uniform(0.8, 1.2, (len(scales) - 2, 3))
    offsets[2:] += rng.normal(0, 0.02, (len(offsets) - 2, 3))
    offsets[:, :2] *= head[:2]
    angles[2:4, 0] += rng.uniform(-10, 10, 2)
    amps[4:] *= rng.uniform(0.5, 1.5, len(amps) - 4)
    n_extra = int(rng.integers(2, 6))  # lesion-like ellipsoids inside the brain
    radius, phi = rng.uniform(0, 0.45, n_extra), rng.uniform(0, 2 * np.pi, n_extra)
    extra_offsets = np.stack([radius * np.cos(phi), radius * np.sin(phi), rng.uniform(-0.4, 0.4, n_extra)], 1)
    amps = np.concatenate([amps, rng.uniform(-0.1, 0.15, n_extra)])
    scales = np.concatenate([scales, rng.uniform(0.04, 0.15, (n_extra, 3))])
    offsets = np.concatenate([offsets, extra_offsets])
    angles = np.concatenate([angles, np.stack([rng.uniform(0, 180, n_extra), np.zeros(n_extra),
                                               np.zeros(n_extra)], 1)])
    echo_amps = [amps, np.where(np.arange(len(amps)) >= 2, amps * 0.6, amps)]  # darker inner structures
    out = np.empty((len(z_norm), echoes, size, size), np.float32)
    for s, zn in enumerate(z_norm):
        z = (2 * zn - 1) * PHANTOM_Z
        # an ellipsoid sliced at height z: shift its offset by z along its rotated axis (sigpy evaluates
        # R·(x, y, 0) − offset, and R·(x, y, z) − offset = R·(x, y, 0) − (offset − z·R[:, 2]))
        sliced = np.stack([o - z * sim.rotation_matrix(a)[:, 2] for o, a in zip(offsets, angles)])
        for e in range(echoes):
            out[s, e] = np.abs(sim.phantom((size, size), echo_amps[e], scales, sliced, angles, np.float64))
    return out


def subject_kind(source: str, index: int, n_train: int, n_val: int) -> str:
    """"mni" or "phantom" for scan ``index`` of a dataset of ``source`` (mixed: every 4th in a split)."""
    if source not in KINDS:
        raise ConfigError(f"--source must be one of {KINDS}, got {source!r}")
    if source != "mixed":
        return source
    return "phantom" if position_in_split(index, n_train, n_val) % 4 == 3 else "mni"


def subject_images(kind: str, split: str, n_slices: int, shape, echoes: int, contrast: str,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A new subject's scan: images (n_slices, echoes, H, W) float32 (max 1, placed in the frame) and
    the normalised z positions (n_slices,) of its slices (inside ``split``'s bands)."""
    if kind == "mni":
        z_low, z_high = _mni_extent()
        extent_mm = z_high - z_low + 1
    else:
        extent_mm = 120.0  # the phantom's z range read as a 12 cm head
    z = slab_positions(split, n_slices, extent_mm, rng)
    if kind == "mni":
        images = mni_subject_images(z, echoes, contrast, rng)
    else:
        images = phantom_subject_images(z, echoes, rng)
    return augment_and_place(images, shape, rng), z
