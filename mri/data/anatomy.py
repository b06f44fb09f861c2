"""Anatomy sources for simulation, from files that ship inside installed wheels (nothing is downloaded),
and the in-plane placement shared by every simulated subject.

The MNI152 2009 template bundled with nilearn (T1 plus grey- and white-matter probability maps,
197×233×189 at 1 mm) provides tissue maps (CSF = brain − GM − WM); contrasts are synthesised by
mixing them with per-subject tissue weights (``CONTRASTS`` are the centres of those draws, see
mri.data.subjects, which also deforms the template into distinct subjects).
"""
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

# relative signal of (GM, WM, CSF) per synthesised contrast (centres of the per-subject draws)
CONTRASTS = {"t1": (0.60, 0.85, 0.15), "pd": (0.80, 0.70, 1.00), "t2": (0.55, 0.40, 1.00)}
SECOND_ECHO = (0.35, 0.22, 0.80)  # a later echo: T2 decay darkens tissue more than fluid


MNI152_FILES = ("mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
                 "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
                 "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz")


def mni152_paths() -> list[Path]:
    """Paths of the T1, GM and WM templates inside nilearn's wheel (nilearn.datasets.MNI152_FILE_PATH
    and friends), found without importing nilearn.datasets, which pulls in scikit-learn and pandas (3 s)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'mni' anatomy needs nilearn (pip install nilearn); or use --source phantom")
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
    paths = [folder / name for name in MNI152_FILES]
    if not all(p.is_file() for p in paths):
        from nilearn import datasets  # another layout of nilearn: ask it

        paths = [Path(datasets.MNI152_FILE_PATH), Path(datasets.GM_MNI152_FILE_PATH),
                 Path(datasets.WM_MNI152_FILE_PATH)]
    return paths


@lru_cache(maxsize=1)
def mni152_tissues() -> np.ndarray:
    """(4, 197, 233, 189) float32 in [0, 1]: T1, GM, WM, CSF of the MNI152 2009 template."""
    import nibabel

    t1, gm, wm = (np.asarray(nibabel.load(p).get_fdata(), np.float32) / 255.0 for p in mni152_paths())
    brain = (t1 > 0).astype(np.float32)  # the template is skull-stripped: zero outside the brain
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    return np.stack([t1, gm, wm, csf])


def _place(images: np.ndarray, shape, angle: float, zoom: float, shift: np.ndarray) -> np.ndarray:
    """Rotate, zoom and shift (…, h, w) images into (…, H, W), fitting the source inside the frame."""
    h, w = images.shape[-2:]
    scale = zoom * min(shape[0] / h, shape[1] / w)
    c, s = np.cos(angle), np.sin(angle)
    matrix = np.array([[c, -s], [s, c]]) / scale  # output index → source index
    centre_out = (np.asarray(shape) - 1) / 2 + shift * np.asarray(shape)
    offset = (np.array([h, w]) - 1) / 2 - matrix @ centre_out
    flat = images.reshape(-1, h, w)
    out = np.stack([ndimage.affine_transform(im, matrix, offset, output_shape=tuple(shape), order=1)
                    for im in flat])
    return out.reshape(*images.shape[:-2], *shape)


def augment_and_place(images: np.ndarray, shape, rng: np.random.Generator) -> np.ndarray:
    """Position one scan's (n, echoes, h, w) images in the (H, W) frame: long side along the frame's
    long side, random flips, a small rotation, a zoom and a shift (the subject's position in the coil),
    then a gamma intensity warp; max 1. Returns (n, echoes, H, W) float32."""
    if (images.shape[-2] > images.shape[-1]) != (shape[0] > shape[1]):
        images = np.swapaxes(images, -1, -2)  # e.g. 512×160 frames
    if rng.random() < 0.5:
        images = images[..., ::-1, :]
    if rng.random() < 0.5:
        images = images[..., :, ::-1]
    images = _place(np.ascontiguousarray(images), shape, angle=rng.uniform(-0.15, 0.15),
                    zoom=rng.uniform(0.8, 0.95), shift=rng.uniform(-0.03, 0.03, 2))
    images = np.clip(images, 0, None) / max(float(images.max()), 1e-12)
    return (images ** rng.uniform(0.8, 1.25)).astype(np.float32)
