"""Coil sensitivity maps: analytic birdcage maps for simulation and ESPIRiT estimates from the
calibration region (both from sigpy)."""
import contextlib

import numpy as np


def draw_birdcage(coils: int, rng: np.random.Generator) -> dict:
    """A scan's coil geometry: radius (1.3–1.7 × the field of view) and each coil's constant phase."""
    return {"radius": float(rng.uniform(1.3, 1.7)), "phases": rng.uniform(-np.pi, np.pi, size=coils)}


def birdcage_maps(coils: int, shape, rng: np.random.Generator | None = None, geometry: dict | None = None) -> np.ndarray:
    """Birdcage coil maps (coils, H, W) complex64 with RSS = 1 (sigpy.mri.birdcage_maps).

    With ``rng`` (or a ``geometry`` from :func:`draw_birdcage`, to evaluate the same coils on grids of
    other sizes) the radius and each coil's phase are drawn, so scans do not share maps; RSS stays 1."""
    import sigpy.mri

    if geometry is None and rng is not None:
        geometry = draw_birdcage(coils, rng)
    radius = 1.5 if geometry is None else geometry["radius"]
    maps = sigpy.mri.birdcage_maps((coils, *shape), r=radius).astype(np.complex64)
    if geometry is not None:
        maps *= np.exp(1j * np.asarray(geometry["phases"]).reshape(coils, 1, 1)).astype(np.complex64)
    return maps


def espirit_kernel(calib_width: int, largest: int = 6) -> int:
    """ESPIRiT kernel width for a calibration box: 6 (sigpy's and SKM-TEA's) from a 12-wide box up,
    half the box below — a 6-wide kernel in an 8-wide box leaves a 9-row calibration matrix whose
    eigenvalues never reach the crop threshold, and the maps come out all zero (measured at 32²)."""
    return int(min(largest, calib_width // 2))


def estimate_maps(kspace: np.ndarray, calib_width: int = 24, kernel_width: int = 6, thresh: float = 0.02,
                  crop: float = 0.95, max_iter: int = 100) -> np.ndarray:
    """ESPIRiT maps (coils, H, W) complex64 from fully-sampled centre of ``kspace`` (coils, H, W)
    (sigpy.mri.app.EspiritCalib). Maps are zero where the ESPIRiT eigenvalue is below ``crop``
    (outside the object) and have RSS ≈ 1 inside it."""
    import sigpy.mri

    if kspace.ndim != 3:
        raise ValueError(f"kspace must be (coils, H, W), got shape {kspace.shape}")
    if calib_width > min(kspace.shape[-2:]) or calib_width <= kernel_width:
        raise ValueError(f"calib_width {calib_width} must exceed kernel_width {kernel_width} and fit in "
                         f"{kspace.shape[-2:]}")
    with _single_threaded_blas():
        maps = sigpy.mri.app.EspiritCalib(np.asarray(kspace, np.complex64), calib_width=calib_width,
                                          kernel_width=kernel_width, thresh=thresh, crop=crop,
                                          max_iter=max_iter, show_pbar=False).run()
    return np.asarray(maps, dtype=np.complex64)


def _single_threaded_blas():
    """ESPIRiT's SVD is of a small (≈ 361 × 36·coils) matrix: multi-threaded OpenBLAS gains nothing
    there and, when the cores are busy (DataLoader workers, other jobs), spins for seconds instead of
    milliseconds (measured 2 s vs 5 ms on 2 loaded cores). threadpoolctl comes with scikit-learn,
    which nilearn requires; without it nothing is limited."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
