"""Realistic multi-coil MRI simulation written in the SKM-TEA layout (so `SkmTeaSlices` reads it).

Per slice: anatomy (mri.data.anatomy) on a grid ``oversample``× finer → smooth random phase (plus
an echo-dependent off-resonance phase) → birdcage coil maps → centred ortho FFT → central k-space
crop to ``shape`` → complex Gaussian noise at the scan's SNR → fully-sampled k-space. Maps are then
re-estimated with ESPIRiT from the calibration box of the noisy k-space (never the true maps), and
target = Σ conj(S_est)·F⁻¹(kspace), the SENSE combination. Per scan, Poisson-disc masks are drawn
at every acceleration with the calibration box.

One file per scan ``SIM_000.h5`` … with (x = slice index):

    kspace  (x, ky, kz, echo, coil) complex64     maps    (x, ky, kz, coil, 1) complex64
    target  (x, ky, kz, echo, 1)    complex64     truth   (x, ky, kz, echo) complex64 — noise-free image
    masks/poisson_{acc:.1f}x (ky, kz) bool         attrs: scan_id, contrast, snr_db, calib_width, config
"""
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from mri.data.anatomy import scan_images
from mri.data.coil_maps import birdcage_maps, estimate_maps
from mri.data.h5files import atomic_h5, write_text_atomically
from mri.data.masks import calibration_width, mask_key, poisson_disc_mask
from mri.data.presets import SimConfig
from mri.data.transforms import fft2c, ifft2c, sense_adjoint

FORMAT_VERSION = 1


def scan_id(index: int) -> str:
    return f"SIM_{index:03d}"


def smooth_phase(shape, rng: np.random.Generator, amplitude: float = np.pi / 2) -> np.ndarray:
    """(H, W) smooth random field: a random 6×6 grid upsampled by cubic splines, std ``amplitude``/2,
    plus a random linear ramp — a stand-in for B0 / receive phase."""
    coarse = rng.standard_normal((6, 6))
    field = ndimage.zoom(coarse, (shape[0] / 6, shape[1] / 6), order=3, mode="nearest")[:shape[0], :shape[1]]
    field = field / max(field.std(), 1e-12) * amplitude / 2
    yy, xx = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    ramp = rng.uniform(-amplitude / 2, amplitude / 2, 2)
    return (field + ramp[0] * yy + ramp[1] * xx).astype(np.float32)


def crop_kspace(kspace: np.ndarray, shape) -> np.ndarray:
    """Central (H, W) block of (..., Hf, Wf) k-space, rescaled so that the ortho-FFT image keeps its
    intensity on the coarser grid (× sqrt(H·W / (Hf·Wf)))."""
    hf, wf = kspace.shape[-2:]
    top, left = hf // 2 - shape[0] // 2, wf // 2 - shape[1] // 2
    block = kspace[..., top:top + shape[0], left:left + shape[1]]
    return block * np.float32(np.sqrt(shape[0] * shape[1] / (hf * wf)))


def add_noise(kspace: np.ndarray, snr_db: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Add white complex Gaussian noise with σ = RMS(kspace) / 10^(snr_db/20) (E|n|² = σ²).

    With the ortho FFT, RMS(kspace) = RMS of the coil images over the field of view, so snr_db is the
    per-coil image SNR over the whole field of view (background included)."""
    sigma = float(np.sqrt(np.mean(np.abs(kspace) ** 2))) / 10 ** (snr_db / 20)
    noise = rng.standard_normal((2, *kspace.shape), dtype=np.float32) * np.float32(sigma / np.sqrt(2))
    return (kspace + noise[0] + 1j * noise[1]).astype(np.complex64), sigma


def simulate_scan(config: SimConfig, index: int, path, pbar=None) -> Path:
    """Simulate scan ``index`` of ``config`` and write it atomically to ``path``."""
    rng = np.random.default_rng([config.seed, index])
    shape = tuple(int(n) for n in config.shape)
    fine = tuple(n * config.oversample for n in shape)
    calib = config.calib or calibration_width(shape)
    contrast = config.contrasts[index % len(config.contrasts)]
    snr_db = float(config.snr_db[0] if len(config.snr_db) == 1 else rng.uniform(*config.snr_db[:2]))
    images = scan_images(config.source, config.slices, fine, config.echoes, contrast, rng)
    true_maps = birdcage_maps(config.coils, fine, rng)
    masks = {acc: poisson_disc_mask(shape, acc, (calib, calib), seed=int(rng.integers(2**31)))
             for acc in config.accelerations}
    n, e, c = config.slices, config.echoes, config.coils
    with atomic_h5(path) as f:
        chunk = (1, *shape)
        kspace = f.create_dataset("kspace", (n, *shape, e, c), np.complex64, chunks=(*chunk, e, c))
        maps = f.create_dataset("maps", (n, *shape, c, 1), np.complex64, chunks=(*chunk, c, 1))
        target = f.create_dataset("target", (n, *shape, e, 1), np.complex64, chunks=(*chunk, e, 1))
        truth = f.create_dataset("truth", (n, *shape, e), np.complex64, chunks=(*chunk, e))
        for acc, mask in masks.items():
            f.create_dataset(mask_key(acc), data=mask)
        f.attrs.update({"scan_id": scan_id(index), "simulated": True, "format_version": FORMAT_VERSION,
                        "source": config.source, "contrast": contrast, "snr_db": snr_db,
                        "calib_width": calib, "config": json.dumps(config.to_dict())})
        off_resonance = smooth_phase(fine, rng, amplitude=np.pi / 4)
        for s in range(n):
            phase = smooth_phase(fine, rng)[None] + off_resonance[None] * np.arange(e)[:, None, None]
            image = (images[s] * np.exp(1j * phase)).astype(np.complex64)  # (echo, Hf, Wf)
            y = crop_kspace(fft2c(true_maps[None] * image[:, None]), shape)  # (echo, coil, H, W)
            y, _ = add_noise(y, snr_db, rng)
            est = estimate_maps(y[0], calib_width=calib, max_iter=config.espirit_max_iter)
            kspace[s] = y.transpose(2, 3, 0, 1)
            maps[s] = est.transpose(1, 2, 0)[..., None]
            target[s] = sense_adjoint(y, est[None]).transpose(1, 2, 0)[..., None]
            truth[s] = ifft2c(crop_kspace(fft2c(image), shape)).transpose(1, 2, 0)
            if pbar is not None:
                pbar.update(1)
    return Path(path)


def simulate_dataset(config: SimConfig, out_dir, progress: bool = True) -> list[Path]:
    """Write ``config.n_scans`` scan files and ``meta.json`` into ``out_dir``; scans already there
    (from an interrupted run with the same config) are kept, so the command resumes."""
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta_path, meta = out / "meta.json", {"format": "SKM-TEA layout (simulated)",
                                           "format_version": FORMAT_VERSION, "config": config.to_dict()}
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old.get("config") != meta["config"]:
            raise FileExistsError(f"{out} holds a dataset simulated with other settings ({meta_path}); "
                                  f"choose another --out or delete that folder")
    else:
        write_text_atomically(meta_path, json.dumps(meta, indent=2))
    for stale in out.glob(".SIM_*.tmp"):  # left by a killed run; complete scans were replaced atomically
        stale.unlink()
    paths = [out / f"{scan_id(i)}.h5" for i in range(config.n_scans)]
    with tqdm(total=config.n_scans * config.slices, unit="slice", desc=f"mri-sim → {out}",
              disable=not progress) as pbar:
        for i, path in enumerate(paths):
            if path.exists():
                pbar.update(config.slices)
                continue
            simulate_scan(config, i, path, pbar)
    return paths
