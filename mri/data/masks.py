"""Undersampling masks: 2-D variable-density Poisson-disc masks (SKM-TEA, simulated data) and
fastMRI-style 1-D column masks (random and equispaced).

All masks are boolean, centred (DC at index ``n // 2``, matching :func:`mri.data.transforms.fft2c`),
and contain a fully-sampled calibration region. Acceleration = number of points / number sampled.
"""
import zlib

import numpy as np

# SKM-TEA and meddlr reconstruct with a 24×24 calibration region; for small test shapes a box of a
# quarter of the smaller side keeps the masks able to reach 8× (see calibration_width).
DEFAULT_CALIB = 24


def mask_key(acceleration: float) -> str:
    """HDF5 key of a stored Poisson-disc mask in the SKM-TEA layout, e.g. 4 → 'masks/poisson_4.0x'."""
    return f"masks/poisson_{float(acceleration):.1f}x"


def scan_seed(scan_id: str) -> int:
    """Deterministic seed derived from a scan id (fixed validation masks per volume, as SKM-TEA and
    fastMRI do), stable across Python processes unlike hash()."""
    return zlib.crc32(scan_id.encode("utf-8"))


def calibration_width(shape, requested: int = DEFAULT_CALIB) -> int:
    """Side of the square calibration box for a (H, W) k-space: ``requested`` (24), shrunk to a
    quarter of the smaller side (rounded down to even, at least 8) for small shapes such as 64×64
    (→ 16), so that high accelerations stay reachable and ESPIRiT (kernel 6) still has rows."""
    quarter = max(8, (min(shape) // 4) // 2 * 2)
    return int(min(requested, quarter))


def calibration_slices(shape, calib) -> tuple[slice, slice]:
    """Index of the centred calibration box (same convention as sigpy.resize and sigpy.mri.poisson)."""
    return tuple(slice(n // 2 - c // 2, n // 2 - c // 2 + c) for n, c in zip(shape, calib))


def draw_mask(shape, acceleration: float, seed: int, calib: int | None = None) -> np.ndarray:
    """One Poisson-disc mask (H, W) bool for training: a fresh draw per (sample, epoch) seed, with the
    square calibration box of :func:`calibration_width` (or ``calib``) fully sampled and the
    acceleration within 0.1 of ``acceleration``. Same seed → same mask; raises ConfigError when the
    acceleration cannot be reached (before any draw)."""
    from common.errors import ConfigError

    shape = tuple(int(n) for n in shape)
    calib = calibration_width(shape) if calib is None else int(calib)
    if len(shape) != 2 or min(shape) < 1:
        raise ConfigError(f"mask shape must be (H, W) with positive sizes, got {shape}")
    if not acceleration > 1:
        raise ConfigError(f"acceleration must be > 1, got {acceleration}")
    if calib * calib * acceleration > shape[0] * shape[1]:
        raise ConfigError(f"a {calib}×{calib} calibration box alone samples more than 1/{acceleration} of "
                          f"{shape}; lower the acceleration or the calibration width")
    return poisson_disc_mask(shape, acceleration, (calib, calib), seed=int(seed) % 2**31)


def poisson_disc_mask(shape, acceleration: float, calib=(DEFAULT_CALIB, DEFAULT_CALIB), seed: int = 0,
                      tol: float = 0.1, max_bisections: int = 64, max_redraws: int = 8) -> np.ndarray:
    """Variable-density Poisson-disc mask of ``shape`` (H, W) → bool (H, W) whose acceleration is
    within ``tol`` of ``acceleration`` and which contains a fully-sampled ``calib`` box.

    Uses sigpy's Poisson-disc sampler (``sigpy.mri.samp._poisson``, the kernel behind
    ``sigpy.mri.poisson``) with sigpy's density 1/(1 + s·r), but runs the search over the slope ``s``
    with a bounded number of bisections: ``sigpy.mri.poisson`` loops forever when, for a fixed seed,
    the acceleration jumps over the tolerance band (sigpy issue #102, typical with seed + calib).
    When a draw cannot hit the band it is re-drawn with the next derived seed; after
    ``max_redraws`` draws a ValueError says the acceleration is out of reach. Deterministic in ``seed``.
    """
    from sigpy.mri.samp import _poisson

    ny, nx = (int(n) for n in shape)
    calib = tuple(int(c) for c in calib)
    if acceleration <= 1:
        raise ValueError(f"acceleration must be > 1, got {acceleration}")
    if calib[0] > ny or calib[1] > nx:
        raise ValueError(f"calibration box {calib} does not fit in the mask shape {shape}")
    if calib[0] * calib[1] * acceleration > ny * nx:
        raise ValueError(f"a {calib} calibration box alone samples more than 1/{acceleration} of {shape}")
    y, x = np.mgrid[:ny, :nx].astype(np.float64)
    x = np.maximum(np.abs(x - nx / 2) - calib[1] / 2, 0)
    x /= max(x.max(), 1e-12)
    y = np.maximum(np.abs(y - ny / 2) - calib[0] / 2, 0)
    y /= max(y.max(), 1e-12)
    r = np.sqrt(x ** 2 + y ** 2)
    box = calibration_slices((ny, nx), calib)
    # the first draw uses ``seed`` itself (same mask as sigpy.mri.poisson whenever that one returns)
    seeds = [seed, *np.random.SeedSequence(seed).generate_state(max_redraws - 1)]
    best, best_err = None, np.inf
    for draw_seed in seeds:
        lo, hi = 0.0, float(max(nx, ny))
        for _ in range(max_bisections):
            slope = (lo + hi) / 2
            radius_x = np.clip((1 + r * slope) * nx / max(nx, ny), 1, None)
            radius_y = np.clip((1 + r * slope) * ny / max(nx, ny), 1, None)
            mask = _poisson(nx, ny, 30, radius_x, radius_y, calib, int(draw_seed) % 2**31) > 0
            mask &= r < 1  # sigpy's crop_corner
            mask[box] = True
            accel = mask.size / mask.sum()
            err = abs(accel - acceleration)
            if err < best_err:
                best, best_err = mask, err
            if err < tol:
                return best
            if accel < acceleration:
                lo = slope
            else:
                hi = slope
            if hi - lo < 1e-9 * max(nx, ny):
                break  # the acceleration jumps over the band for this draw: re-draw
    raise ValueError(
        f"cannot draw a Poisson-disc mask of shape {shape} at acceleration {acceleration} ± {tol} "
        f"with calibration {calib} (closest: ±{best_err:.3f}); lower the acceleration or the calibration box")


def column_mask(num_cols: int, acceleration: float, center_fraction: float, kind: str = "random",
                rng: np.random.Generator | None = None) -> np.ndarray:
    """fastMRI 1-D column mask → bool (num_cols,).

    ``random`` (fastMRI RandomMaskFunc): the central ``round(num_cols·center_fraction)`` columns plus
    each other column with the probability that makes the expected acceleration ``acceleration``.
    ``equispaced`` (fastMRI EquispacedMaskFractionFunc): the centre plus columns at a random offset
    and a spacing adjusted so that the total acceleration is ``acceleration``.
    """
    rng = np.random.default_rng() if rng is None else rng
    num_low = int(round(num_cols * center_fraction))
    if num_low >= num_cols / acceleration:
        raise ValueError(f"center_fraction {center_fraction} already samples more than 1/{acceleration} "
                         f"of {num_cols} columns")
    mask = np.zeros(num_cols, dtype=bool)
    if kind == "random":
        prob = (num_cols / acceleration - num_low) / (num_cols - num_low)
        mask = rng.uniform(size=num_cols) < prob
    elif kind == "equispaced":
        spacing = acceleration * (num_low - num_cols) / (num_low * acceleration - num_cols)
        offset = rng.integers(0, max(1, round(spacing)))
        mask[np.around(np.arange(offset, num_cols - 1, spacing)).astype(int)] = True
    else:
        raise ValueError(f"mask kind must be 'random' or 'equispaced', got {kind!r}")
    pad = (num_cols - num_low + 1) // 2
    mask[pad:pad + num_low] = True
    return mask
