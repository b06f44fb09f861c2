"""Tiny in-process MRI inputs (phantom, birdcage maps, Poisson-disc masks) for the recon tests."""
import numpy as np
import pytest
import sigpy
import sigpy.mri
import torch


def phantom_batch(shape=(16, 12), coils=3, batch=2, accel=2.0, seed=0):
    """kspace (B, C, H, W) fully sampled, maps, mask (B, H, W), target (B, H, W) as torch tensors."""
    rng = np.random.default_rng(seed)
    maps = sigpy.mri.birdcage_maps((coils, *shape)).astype(np.complex64)
    images = np.stack([sigpy.shepp_logan(shape) * np.exp(1j * rng.uniform(0, 0.5)) for _ in range(batch)])
    kspace = sigpy.fft(maps[None] * images[:, None], axes=(-2, -1)).astype(np.complex64)
    kspace += 0.01 * (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape)).astype(np.complex64)
    masks = np.stack([sigpy.mri.poisson(shape, accel, calib=(4, 4), seed=s, crop_corner=False)
                      for s in range(batch)]).real.astype(np.float32)
    target = np.sum(maps.conj()[None] * sigpy.ifft(kspace, axes=(-2, -1)), axis=1).astype(np.complex64)
    as_t = torch.from_numpy
    return {"kspace": as_t(kspace), "maps": as_t(np.broadcast_to(maps, (batch, *maps.shape)).copy()),
            "mask": as_t(masks), "target": as_t(target)}


def random_complex(*shape, generator=None):
    return torch.randn(*shape, dtype=torch.complex64, generator=generator)


@pytest.fixture
def batch():
    return phantom_batch()


def write_scans(folder, n_scans=3, slices=3, shape=(16, 16), coils=3, accelerations=(2.0,)):
    """Tiny SKM-TEA-layout files (phantom slices, birdcage maps, Poisson masks) for training tests."""
    import h5py

    folder.mkdir(parents=True, exist_ok=True)
    for s in range(n_scans):
        b = phantom_batch(shape, coils, slices, seed=s)
        with h5py.File(folder / f"SCAN_{s:03d}.h5", "w") as f:
            f["kspace"] = b["kspace"].numpy().transpose(0, 2, 3, 1)[:, :, :, None, :]
            f["maps"] = b["maps"].numpy().transpose(0, 2, 3, 1)[..., None]
            f["target"] = b["target"].numpy()[..., None, None]
            for acc in accelerations:
                f[f"masks/poisson_{acc:.1f}x"] = sigpy.mri.poisson(shape, acc, calib=(4, 4), seed=s,
                                                                    crop_corner=False).real > 0
    return folder


@pytest.fixture(scope="session")
def scan_dir(tmp_path_factory):
    return write_scans(tmp_path_factory.mktemp("scans"))
