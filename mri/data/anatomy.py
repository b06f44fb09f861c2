"""Anatomy for simulation, from files that ship inside installed wheels (nothing is downloaded).

``mni``: the MNI152 2009 template bundled with nilearn (T1 plus grey- and white-matter probability
maps, 197×233×189 at 1 mm); contrasts are synthesised by mixing tissue probabilities (CSF = brain −
GM − WM), so the same anatomy yields T1-, PD- and T2-like images and a darker second echo.
``phantom``: skimage's Shepp–Logan phantom with random ellipses added per slice (no nilearn needed).

Every scan draws its own augmentation (flips, a small rotation, a zoom, a shift, tissue-weight jitter
and a gamma intensity warp) and its own slab of slices, so "scans" differ.
"""
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

SOURCES = ("mni", "phantom")
# relative signal of (GM, WM, CSF) per synthesised contrast; "t1" uses the template's own T1 image
CONTRASTS = {"t1": None, "pd": (0.80, 0.70, 1.00), "t2": (0.55, 0.40, 1.00)}
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


def mix(tissues: np.ndarray, contrast: str, weights_jitter: np.ndarray, echo: int) -> np.ndarray:
    """Images (..., H, W) of one contrast from tissue maps (..., 4, H, W) = T1, GM, WM, CSF."""
    weights = SECOND_ECHO if echo > 0 else CONTRASTS[contrast]
    if weights is None:
        return tissues[..., 0, :, :]
    return np.einsum("t,...thw->...hw", np.asarray(weights, np.float32) * weights_jitter, tissues[..., 1:, :, :])


def _phantom_slices(n_slices: int, rng: np.random.Generator) -> np.ndarray:
    """(n_slices, 4, 256, 256): Shepp–Logan plus random ellipses that grow and shrink along the slab,
    laid out as "tissue" maps (image, image, ellipses, background fluid) so that :func:`mix` applies."""
    from skimage.data import shepp_logan_phantom
    from skimage.draw import ellipse
    from skimage.transform import resize

    base = resize(shepp_logan_phantom(), (256, 256), anti_aliasing=True).astype(np.float32)
    inside = ndimage.binary_erosion(base > 0.05, iterations=12)
    blobs = [(rng.uniform(80, 176, 2), rng.uniform(6, 22, 2), rng.uniform(0.2, 0.6), rng.uniform(0, np.pi),
              rng.uniform(0, n_slices)) for _ in range(rng.integers(3, 7))]
    out = np.zeros((n_slices, 4, 256, 256), np.float32)
    for s in range(n_slices):
        extra = np.zeros((256, 256), np.float32)
        for centre, radii, value, angle, peak in blobs:
            size = np.sqrt(max(1.0 - ((s - peak) / max(n_slices, 2)) ** 2, 0.1))
            rr, cc = ellipse(*centre, *(radii * size), shape=extra.shape, rotation=angle)
            extra[rr, cc] = value
        extra *= inside
        out[s] = [base + extra, base, extra, 0.3 * (base > 0.05)]
    return out


def _slab(tissues: np.ndarray, n_slices: int, rng: np.random.Generator) -> np.ndarray:
    """(n_slices, 4, 197, 233) axial slices from a random slab of the brain, 1–3 mm apart."""
    area = (tissues[0] > 0.02).sum(axis=(0, 1))
    valid = np.flatnonzero(area > 0.5 * area.max())  # skip the thin top and bottom of the brain
    spacing = int(rng.integers(1, 4))
    while spacing > 1 and (n_slices - 1) * spacing >= len(valid):
        spacing -= 1
    span = (n_slices - 1) * spacing
    if span >= len(valid):  # more slices asked for than the brain holds at 1 mm: spread them out
        z = np.round(np.linspace(valid[0], valid[-1], n_slices)).astype(int)
    else:
        z = valid[0] + int(rng.integers(0, len(valid) - span)) + spacing * np.arange(n_slices)
    return np.moveaxis(tissues[..., z], -1, 0)


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


def scan_images(source: str, n_slices: int, shape, echoes: int, contrast: str,
                rng: np.random.Generator) -> np.ndarray:
    """Magnitude images (n_slices, echoes, H, W) float32, max ≈ 1, of one augmented scan."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast must be one of {tuple(CONTRASTS)}, got {contrast!r}")
    tissues = _slab(mni152_tissues(), n_slices, rng) if source == "mni" else _phantom_slices(n_slices, rng)
    if (tissues.shape[-2] > tissues.shape[-1]) != (shape[0] > shape[1]):
        tissues = np.swapaxes(tissues, -1, -2)  # long side along the frame's long side (e.g. 512×160)
    if rng.random() < 0.5:
        tissues = tissues[..., ::-1, :]
    if rng.random() < 0.5:
        tissues = tissues[..., :, ::-1]
    tissues = _place(np.ascontiguousarray(tissues), shape, angle=rng.uniform(-0.15, 0.15),
                     zoom=rng.uniform(0.8, 0.95), shift=rng.uniform(-0.03, 0.03, 2))
    jitter = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    gamma = rng.uniform(0.8, 1.25)
    images = np.stack([mix(tissues, contrast, jitter, e) for e in range(echoes)], axis=1)
    images = np.clip(images, 0, None) / max(float(images.max()), 1e-12)
    return (images ** gamma).astype(np.float32)
