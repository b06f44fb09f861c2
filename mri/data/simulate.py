"""Realistic multi-coil MRI simulation written in the SKM-TEA layout (so `SkmTeaSlices` reads it).

Per scan: a new subject (mri.data.subjects: deformed MNI152 template or perturbed 3-D Shepp–Logan,
slices from its split's axial bands) on a grid ``oversample``× finer, its own coil geometry and SNR.
Per slice: smooth random phase (plus an echo-dependent phase) → birdcage coil maps → centred ortho
FFT → central k-space crop to ``shape`` → complex Gaussian noise at the scan's SNR. With a model
mismatch (mri.data.mismatch: B0 off-resonance, gradient delay) the ACQUIRED k-space is computed with
it (same noise); without, acquired = ideal. Maps: ESPIRiT from the calibration box of the acquired
k-space (default; never the true maps) or, with ``maps="true"``, the true birdcage maps on the
reconstruction grid. target = Σ conj(S)·F⁻¹(ideal k-space), the SENSE combination of the
mismatch-free data with the stored maps (so without mismatch target = Aᴴ kspace exactly). Per scan,
Poisson-disc masks are drawn at every acceleration with the calibration box.

One file per scan ``SIM_000.h5`` … with (x = slice index):

    kspace  (x, ky, kz, echo, coil) complex64     maps    (x, ky, kz, coil, 1) complex64
    target  (x, ky, kz, echo, 1)    complex64     truth   (x, ky, kz, echo) complex64 — noise-free image
    masks/poisson_{acc:.1f}x (ky, kz) bool         mismatch/b0_field_hz (ky, kz) float32 (only with B0)
    — the scan's field map (one for all its slices, as simulated) at the reconstruction grid's pixel
    centres; with attrs gradient_delay and readout_bw_hz it is all the oracle-physics models need
    (mri.data.skmtea.scan_physics → mri.recon.mismatch_sense)
    attrs: scan_id, subject_id, split, anatomy ("mni" | "phantom"), z_positions (normalised, see
           subjects.py), contrast, snr_db, calib_width, b0_hz, gradient_delay, readout_bw_hz, maps, config

and ``meta.json``: {"format", "format_version", "config", "splits": {"train": [scan ids], "val": [...],
"test": [...]}, "subjects": {scan id: subject id}, "z_bands": {split: [[low, high], ...]}}.
"""
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from common.errors import FormatError, RunExistsError
from common.files import atomic_h5, write_json_atomic
from mri.data.coil_maps import birdcage_maps, draw_birdcage, espirit_kernel, estimate_maps
from mri.data.masks import calibration_width, mask_key, poisson_disc_mask
from mri.data.mismatch import b0_kspace, delay_phase, off_resonance_map, readout_times
from mri.data.presets import SimConfig
from mri.data.subjects import SPLITS, split_of, split_z_ranges, subject_id, subject_images, subject_kind
from mri.data.transforms import fft2c, ifft2c, sense_adjoint

FORMAT_VERSION = 2  # 2: one subject per scan, splits in meta.json, mismatch track


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


def noise_sigma(kspace: np.ndarray, snr_db: float) -> float:
    """σ = RMS(kspace) / 10^(snr_db/20): with the ortho FFT, RMS(kspace) = RMS of the coil images over
    the field of view, so snr_db is the per-coil image SNR over the whole field of view (background
    included)."""
    return float(np.sqrt(np.mean(np.abs(kspace) ** 2))) / 10 ** (snr_db / 20)


def complex_noise(shape, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """White complex Gaussian noise with E|n|² = σ²."""
    noise = rng.standard_normal((2, *shape), dtype=np.float32) * np.float32(sigma / np.sqrt(2))
    return (noise[0] + 1j * noise[1]).astype(np.complex64)


def add_noise(kspace: np.ndarray, snr_db: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Add white complex Gaussian noise at ``snr_db`` (see noise_sigma); returns (noisy, σ)."""
    sigma = noise_sigma(kspace, snr_db)
    return (kspace + complex_noise(kspace.shape, sigma, rng)).astype(np.complex64), sigma


def acquire(coil_images: np.ndarray, shape, config: SimConfig, field_hz: np.ndarray | None) -> np.ndarray:
    """Acquired k-space (..., H, W) of fine-grid coil images (..., Hf, Wf) under the config's mismatch
    (gradient delay as an image-domain linear phase, then exact B0 per readout sample), cropped to
    ``shape`` like crop_kspace. Without mismatch: crop_kspace(fft2c(coil_images), shape)."""
    hf, wf = coil_images.shape[-2:]
    if config.gradient_delay:
        coil_images = coil_images * delay_phase(wf, config.gradient_delay).astype(np.complex64)
    if field_hz is None:
        return crop_kspace(fft2c(coil_images), shape)
    left = wf // 2 - shape[1] // 2
    columns = left + np.arange(shape[1])  # only the columns the crop keeps
    times = readout_times(shape[1], config.readout_bw_hz, columns - wf // 2 + shape[1] // 2)
    full_rows = b0_kspace(coil_images, field_hz, times, columns)
    top = hf // 2 - shape[0] // 2
    return full_rows[..., top:top + shape[0], :] * np.float32(np.sqrt(shape[0] * shape[1] / (hf * wf)))


def simulate_scan(config: SimConfig, index: int, path, pbar=None) -> Path:
    """Simulate scan (= subject) ``index`` of ``config`` and write it atomically to ``path``."""
    rng = np.random.default_rng([config.seed, index])
    mismatch_rng = np.random.default_rng([config.seed, index, 1])  # mismatch never shifts the other draws
    shape = tuple(int(n) for n in config.shape)
    fine = tuple(n * config.oversample for n in shape)
    calib = config.calib or calibration_width(shape)
    split = split_of(index, config.n_train, config.n_val, config.n_test)
    kind = subject_kind(config.source, index, config.n_train, config.n_val)
    contrast = config.contrasts[index % len(config.contrasts)]
    snr_db = float(config.snr_db[0] if len(config.snr_db) == 1 else rng.uniform(*config.snr_db[:2]))
    images, z_positions = subject_images(kind, split, config.slices, fine, config.echoes, contrast, rng)
    geometry = draw_birdcage(config.coils, rng)
    true_maps = birdcage_maps(config.coils, fine, geometry=geometry)
    masks = {acc: poisson_disc_mask(shape, acc, (calib, calib), seed=int(rng.integers(2**31)))
             for acc in config.accelerations}
    field = off_resonance_map(fine, config.b0_hz, mismatch_rng) if config.b0_hz > 0 else None
    stored_true_maps = birdcage_maps(config.coils, shape, geometry=geometry) if config.maps == "true" else None
    n, e, c = config.slices, config.echoes, config.coils
    with atomic_h5(path) as f:
        chunk = (1, *shape)
        kspace = f.create_dataset("kspace", (n, *shape, e, c), np.complex64, chunks=(*chunk, e, c))
        maps = f.create_dataset("maps", (n, *shape, c, 1), np.complex64, chunks=(*chunk, c, 1))
        target = f.create_dataset("target", (n, *shape, e, 1), np.complex64, chunks=(*chunk, e, 1))
        truth = f.create_dataset("truth", (n, *shape, e), np.complex64, chunks=(*chunk, e))
        for acc, mask in masks.items():
            f.create_dataset(mask_key(acc), data=mask)
        if field is not None:
            f.create_dataset("mismatch/b0_field_hz", data=field[::config.oversample, ::config.oversample]
                             .astype(np.float32))
        f.attrs.update({"scan_id": scan_id(index), "subject_id": subject_id(config.seed, index), "split": split,
                        "anatomy": kind, "z_positions": z_positions, "simulated": True,
                        "format_version": FORMAT_VERSION, "source": config.source, "contrast": contrast,
                        "snr_db": snr_db, "calib_width": calib, "b0_hz": config.b0_hz,
                        "gradient_delay": config.gradient_delay, "readout_bw_hz": config.readout_bw_hz,
                        "maps": config.maps, "config": json.dumps(config.to_dict())})
        off_resonance = smooth_phase(fine, rng, amplitude=np.pi / 4)
        for s in range(n):
            phase = smooth_phase(fine, rng)[None] + off_resonance[None] * np.arange(e)[:, None, None]
            image = (images[s] * np.exp(1j * phase)).astype(np.complex64)  # (echo, Hf, Wf)
            coil_images = true_maps[None] * image[:, None]  # (echo, coil, Hf, Wf)
            ideal = crop_kspace(fft2c(coil_images), shape)  # (echo, coil, H, W)
            noise = complex_noise(ideal.shape, noise_sigma(ideal, snr_db), rng)
            acquired = ideal if not config.has_mismatch else acquire(coil_images, shape, config, field)
            y, y_ideal = acquired + noise, ideal + noise
            if stored_true_maps is None:
                est = estimate_maps(y[0], calib_width=calib, kernel_width=espirit_kernel(calib),
                                    max_iter=config.espirit_max_iter)
            else:
                est = stored_true_maps
            kspace[s] = y.transpose(2, 3, 0, 1)
            maps[s] = est.transpose(1, 2, 0)[..., None]
            target[s] = sense_adjoint(y_ideal, est[None]).transpose(1, 2, 0)[..., None]
            truth[s] = ifft2c(crop_kspace(fft2c(image), shape)).transpose(1, 2, 0)
            if pbar is not None:
                pbar.update(1)
    return Path(path)


def dataset_meta(config: SimConfig) -> dict:
    """meta.json of a dataset: its config, the split of every scan id, subjects and z bands."""
    ids = [scan_id(i) for i in range(config.n_scans)]
    splits = {name: [s for i, s in enumerate(ids) if split_of(i, config.n_train, config.n_val, config.n_test) == name]
              for name in SPLITS}
    return {"format": "SKM-TEA layout (simulated)", "format_version": FORMAT_VERSION, "config": config.to_dict(),
            "splits": splits, "subjects": {s: subject_id(config.seed, i) for i, s in enumerate(ids)},
            "z_bands": {name: [list(r) for r in split_z_ranges(name)] for name in SPLITS}}


def read_splits(out_dir) -> dict:
    """{"train": [scan ids], "val": [...], "test": [...]} of a simulated dataset (its meta.json)."""
    meta_path = Path(out_dir) / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        return {name: list(meta["splits"][name]) for name in SPLITS}
    except FileNotFoundError:
        raise FormatError(f"{meta_path}: no meta.json; simulate the dataset with `run.py data mri-sim`") from None
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise FormatError(f"{meta_path}: no readable 'splits' ({err!r}); it was written by an older "
                          f"simulator — simulate again into a new folder") from None


def simulate_dataset(config: SimConfig, out_dir, progress: bool = True) -> list[Path]:
    """Write ``config.n_scans`` scan files and ``meta.json`` into ``out_dir``; scans already there
    (from an interrupted run with the same config) are kept, so the command resumes.

    The config is validated before anything is created (ConfigError naming the option). A meta.json
    of other settings blocks the folder (RunExistsError) only when scan files exist; one left by a
    configuration that never wrote a scan is replaced, with a note on stderr."""
    from tqdm import tqdm

    config.validate()
    out = Path(out_dir)
    meta_path, meta = out / "meta.json", dataset_meta(config)
    if meta_path.exists():
        try:
            old = json.loads(meta_path.read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("config") != meta["config"] or old.get("format_version") != FORMAT_VERSION:
            if any(out.glob("SIM_*.h5")):
                raise RunExistsError(f"{out} holds a dataset simulated with other settings ({meta_path}); "
                                     f"choose another --out or delete that folder")
            print(f"note: replacing {meta_path}: it describes other settings and no scan was ever written "
                  f"with them", file=sys.stderr)
            write_json_atomic(meta_path, meta)
    else:
        write_json_atomic(meta_path, meta)
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
