"""Model mismatch: acquired k-space that departs from the ideal Cartesian model y = F·(S·x).

Reconstruction networks assume y = M·F·(S·x) with the centred ortho FFT F and the stored maps S. Real
scanners break that model; the simulation's mismatch track (``--mismatch``) reproduces three ways:

(a) B0 off-resonance. Spins at r precess Δf(r) Hz off the scanner frequency, so the signal at readout
    time t carries exp(i·2π·Δf(r)·t). Each slice is treated as a 2-D Cartesian acquisition whose
    readout runs along the LAST axis (kz, width W; the rows ky are the phase-encoding lines — in the
    SKM-TEA layout the physical readout is x, so this is the 2-D-acquisition reading of a slice).
    Readout sample j (0 … W−1, k-space centre c = W // 2) is acquired at t_j = (j − c)·dwell relative
    to the echo centre, with dwell = 1 / (W · bw) and bw the receiver bandwidth per pixel (Hz/pixel,
    default 250 Hz → a 4 ms readout for every W). The phase at the echo centre (TE·Δf) is part of the
    image's smooth phase. The field Δf(r) is a smooth random map with peak |Δf| = ``b0_hz``; its
    visible effect is a local shift of Δf/bw pixels along the readout plus blurring.
    Implemented exactly (:func:`b0_kspace`): for every readout sample j the image is multiplied by
    exp(i·2π·Δf·t_j) and only k-space column j of its Fourier transform is kept — a direct DFT along
    the readout (an H×W×W sum per coil, done row-block-wise) followed by the FFT along the lines.
(b) Gradient delay. A readout gradient that starts δ samples late samples k_j + δ instead of k_j, for
    every line alike (Cartesian, one readout polarity). Since Σ_x m(x)·e^{−2πi(j−c+δ)(x−c)/W} is the
    DFT of m(x)·e^{−2πi·δ·(x−c)/W}, the delay is applied exactly in the image domain as that linear
    phase along the readout axis (:func:`delay_phase`); an integer δ is a circular shift of k-space.
    δ is in k-space samples (1/FOV), so the same phase holds on any image grid of the same FOV.
(c) Coil maps. ``maps=espirit`` (default, always used unless the ideal control ``maps=true`` is
    asked for) stores ESPIRiT maps estimated from the calibration box of the ACQUIRED (noisy,
    mismatched) k-space (sigpy.mri.app.EspiritCalib, see mri.data.coil_maps), not the true birdcage
    maps; ``maps=true`` stores the true birdcage maps sampled on the reconstruction grid (the
    "inverse crime" control, to measure what map estimation costs).

The stored target stays the ideal image: the SENSE combination, with the stored maps, of the
mismatch-free k-space (same noise). Tracks of one seed share subjects, images, coils and noise (the
field map has its own random stream); their targets differ only through the maps estimated from the
acquired data (identical with maps=true).
"""
from __future__ import annotations

import numpy as np

from common.errors import ConfigError

MAP_KINDS = ("espirit", "true")
DEFAULT_BANDWIDTH_HZ = 250.0  # per pixel: a 4 ms readout, typical of 2-D spin-echo / gradient-echo


def parse_mismatch(text: str | None) -> dict:
    """``"b0=100,delay=0.3,maps=espirit,bw=250"`` → {"b0_hz": 100.0, "gradient_delay": 0.3,
    "maps": "espirit", "readout_bw_hz": 250.0}. Keys: b0 (peak off-resonance, Hz ≥ 0), delay (readout
    delay in samples), maps (espirit | true), bw (receiver bandwidth per pixel, Hz > 0). Empty → {}."""
    names = {"b0": "b0_hz", "delay": "gradient_delay", "maps": "maps", "bw": "readout_bw_hz"}
    out: dict = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in names:
            raise ConfigError(f"--mismatch: cannot read {part!r}; expected key=value with keys "
                              f"{', '.join(names)}, e.g. b0=100,delay=0.3,maps=espirit")
        if key == "maps":
            out["maps"] = value.strip()
            continue
        try:
            out[names[key]] = float(value)
        except ValueError:
            raise ConfigError(f"--mismatch: {key}={value!r} is not a number") from None
    check_mismatch(**out)
    return out


def check_mismatch(b0_hz: float = 0.0, gradient_delay: float = 0.0, maps: str = "espirit",
                   readout_bw_hz: float = DEFAULT_BANDWIDTH_HZ, width: int | None = None) -> None:
    """ConfigError for magnitudes that cannot be simulated (negative field, |delay| ≥ W/2, …)."""
    if not np.isfinite(b0_hz) or b0_hz < 0:
        raise ConfigError(f"--mismatch b0 must be a peak off-resonance ≥ 0 Hz, got {b0_hz}")
    if not np.isfinite(readout_bw_hz) or readout_bw_hz <= 0:
        raise ConfigError(f"--mismatch bw must be a bandwidth per pixel > 0 Hz, got {readout_bw_hz}")
    limit = np.inf if width is None else width / 2
    if not np.isfinite(gradient_delay) or abs(gradient_delay) >= limit:
        raise ConfigError(f"--mismatch delay must be finite and below half the readout ({limit} samples), "
                          f"got {gradient_delay}")
    if maps not in MAP_KINDS:
        raise ConfigError(f"--mismatch maps must be one of {MAP_KINDS}, got {maps!r}")


def readout_times(n_readout: int, readout_bw_hz: float, columns=None) -> np.ndarray:
    """Acquisition time (s) of each readout sample relative to the echo centre: (j − n//2)·dwell with
    dwell = 1/(n·bw). ``columns`` (default all) are k-space indices on a grid of any width sharing the
    FOV — index i of a width-m grid is k-position i − m//2, so pass ``columns - m//2 + n//2``."""
    j = np.arange(n_readout) if columns is None else np.asarray(columns)
    return (j - n_readout // 2) / (n_readout * readout_bw_hz)


def off_resonance_map(shape, peak_hz: float, rng: np.random.Generator, grid: int = 5) -> np.ndarray:
    """(H, W) float64 smooth random field map in Hz with max |Δf| = ``peak_hz``: a random ``grid``×``grid``
    field upsampled by cubic splines (B0 inhomogeneity varies over centimetres, not pixels)."""
    from scipy import ndimage

    coarse = rng.standard_normal((grid, grid))
    field = ndimage.zoom(coarse, (shape[0] / grid, shape[1] / grid), order=3, mode="nearest")[:shape[0], :shape[1]]
    return field / max(np.abs(field).max(), 1e-12) * peak_hz


def delay_phase(width: int, delay: float) -> np.ndarray:
    """(W,) complex128 linear phase exp(−2πi·δ·(x − W//2)/W) along the readout: multiplying the image
    by it samples k-space at k_j + δ (a gradient delay of δ samples)."""
    x = np.arange(width) - width // 2
    return np.exp(-2j * np.pi * delay * x / width)


def _centred_dft_rows(width: int, columns) -> np.ndarray:
    """(len(columns), W) rows of the centred ortho DFT along the readout: e^{−2πi(j−c)(x−c)/W}/√W."""
    c = width // 2
    j = np.asarray(columns)[:, None] - c
    x = np.arange(width)[None, :] - c
    return np.exp(-2j * np.pi * j * x / width) / np.sqrt(width)


def b0_kspace(images: np.ndarray, field_hz: np.ndarray, times: np.ndarray, columns=None,
              block_rows: int = 32) -> np.ndarray:
    """Exact off-resonance acquisition: k-space column j of F(images · exp(i·2π·Δf·t_j)).

    images: (..., H, W) complex; field_hz: (H, W); times: (len(columns),) seconds per kept column;
    columns: k-space column indices to compute (default all W, then times has W entries).
    Returns (..., H, len(columns)) complex64 in the centred ortho convention of mri.data.transforms.
    With a zero field this is fft2c(images)[..., columns]; with a constant field Δf, column j is the
    ideal one times exp(i·2π·Δf·t_j).
    """
    h, w = images.shape[-2:]
    columns = np.arange(w) if columns is None else np.asarray(columns)
    times = np.asarray(times, dtype=np.float64)
    if times.shape != columns.shape or field_hz.shape != (h, w):
        raise ValueError(f"times {times.shape} must match columns {columns.shape} and field {field_hz.shape} "
                         f"the image plane {(h, w)}")
    lead = images.shape[:-2]
    flat = images.reshape(-1, h, w).astype(np.complex64)
    dft = _centred_dft_rows(w, columns).astype(np.complex64)  # (J, W)
    out = np.empty((flat.shape[0], h, len(columns)), np.complex64)
    for top in range(0, h, block_rows):  # bounded memory: a (rows, J, W) phase block at a time
        rows = slice(top, min(top + block_rows, h))
        phase = np.exp(2j * np.pi * field_hz[rows, None, :] * times[None, :, None]).astype(np.complex64)
        out[:, rows] = np.einsum("rjx,nrx->nrj", phase * dft[None], flat[:, rows], optimize=True)
    # centred ortho FFT along the phase-encoding lines (axis H)
    out = np.fft.fftshift(np.fft.fft(np.fft.ifftshift(out, axes=-2), axis=-2, norm="ortho"), axes=-2)
    return out.astype(np.complex64).reshape(*lead, h, len(columns))
