"""Physics of the simulated data, checked against sigpy's own SENSE operator and the stored truth."""
import json
import os

import h5py
import numpy as np
import pytest
import sigpy.mri as mr

from mri.data.masks import calibration_slices
from mri.data.simulate import add_noise, simulate_dataset, simulate_scan
from mri.data.transforms import rss


def _scans(folder):
    return sorted(folder.glob("SIM_*.h5"))


@pytest.mark.parametrize("fixture", ["tiny_sim", "phantom_sim"])
def test_target_is_sense_adjoint_of_full_kspace_with_stored_maps(fixture, request):
    for path in _scans(request.getfixturevalue(fixture)):
        with h5py.File(path, "r") as f:
            ksp, maps, target = f["kspace"][()], f["maps"][()], f["target"][()]
        for x in range(ksp.shape[0]):
            S = mr.linop.Sense(maps[x, ..., 0].transpose(2, 0, 1))
            for e in range(ksp.shape[3]):
                ref = S.H(ksp[x, :, :, e].transpose(2, 0, 1))
                err = np.linalg.norm(target[x, :, :, e, 0] - ref) / np.linalg.norm(ref)
                assert err < 1e-5


@pytest.mark.parametrize("fixture", ["tiny_sim", "phantom_sim"])
def test_masks_hit_acceleration_and_contain_calibration_box(fixture, request):
    for path in _scans(request.getfixturevalue(fixture)):
        with h5py.File(path, "r") as f:
            calib = int(f.attrs["calib_width"])
            shape = f["kspace"].shape[1:3]
            config = json.loads(f.attrs["config"])
            assert sorted(f["masks"].keys()) == sorted(f"poisson_{a:.1f}x" for a in config["accelerations"])
            for acc in config["accelerations"]:
                mask = f[f"masks/poisson_{acc:.1f}x"][()]
                assert mask.shape == shape and mask.dtype == bool
                assert abs(mask.size / mask.sum() - acc) < 0.1
                assert mask[calibration_slices(shape, (calib, calib))].all()


def test_estimated_maps_have_unit_rss_inside_object_and_target_matches_truth(tiny_sim):
    for path in _scans(tiny_sim):
        with h5py.File(path, "r") as f:
            maps, target, truth = f["maps"][..., 0], f["target"][:, :, :, 0, 0], f["truth"][..., 0]
        inside = np.abs(truth) > 0.2 * np.abs(truth).max()
        assert inside.mean() > 0.1
        np.testing.assert_allclose(rss(maps, axis=-1)[inside], 1.0, atol=1e-3)
        # the maps are ESPIRiT estimates from noisy data, never the true birdcage maps: the magnitude
        # of the SENSE combination is close to, but not exactly, the noise-free truth
        err = np.linalg.norm((np.abs(target) - np.abs(truth))[inside]) / np.linalg.norm(truth[inside])
        assert 1e-4 < err < 0.05


def test_noise_has_the_requested_snr():
    rng = np.random.default_rng(0)
    clean = np.ones((4, 64, 64), np.complex64) * (2 + 1j)
    noisy, sigma = add_noise(clean, 20.0, rng)
    assert np.isclose(sigma, np.sqrt(5) / 10)
    assert np.isclose(np.std(noisy - clean), sigma, rtol=0.05)


def test_generation_is_seeded_resumable_and_guarded(tiny_config, tmp_path):
    config = tiny_config.replace(n_scans=2, slices=1)
    paths = simulate_dataset(config, tmp_path, progress=False)
    again = simulate_scan(config, 1, tmp_path / "again.h5")
    with h5py.File(paths[1], "r") as a, h5py.File(again, "r") as b:
        np.testing.assert_array_equal(a["kspace"][()], b["kspace"][()])
    with h5py.File(paths[0], "r") as a, h5py.File(again, "r") as b:
        assert not np.array_equal(a["kspace"][()], b["kspace"][()])
    mtime = os.stat(paths[0]).st_mtime_ns
    paths[1].unlink()
    simulate_dataset(config, tmp_path, progress=False)  # resumes: only the missing scan is written
    assert paths[1].exists() and os.stat(paths[0]).st_mtime_ns == mtime
    assert not list(tmp_path.glob(".*tmp"))
    with pytest.raises(FileExistsError, match="other settings"):
        simulate_dataset(config.replace(coils=2), tmp_path, progress=False)


def _pair(tmp_path, **mismatch):
    """The same tiny scan (phantom, noise-free in practice: 200 dB) simulated ideal and with a mismatch."""
    from mri.data.presets import PRESETS

    base = PRESETS["tiny"].replace(shape=(32, 32), slices=1, n_scans=1, coils=2, accelerations=(2.0,),
                                   source="phantom", snr_db=(200.0,), espirit_max_iter=10)
    files = []
    for name, config in [("ideal", base.replace(maps=mismatch.get("maps", "espirit"))), ("mismatch", base.replace(**mismatch))]:
        files.append(simulate_dataset(config, tmp_path / name, progress=False)[0])
    with h5py.File(files[0], "r") as a, h5py.File(files[1], "r") as b:
        return {k: a[k][()] for k in ("kspace", "maps", "target", "truth")}, \
               {k: b[k][()] for k in ("kspace", "maps", "target", "truth")}, dict(b.attrs)


def test_integer_gradient_delay_shifts_the_stored_kspace_along_the_readout(tmp_path):
    ideal, delayed, attrs = _pair(tmp_path, gradient_delay=1.0, maps="true")
    assert attrs["gradient_delay"] == 1.0 and attrs["maps"] == "true"
    # readout = last in-plane axis (kz, file axis 2): sample j of the delayed scan is sample j+1 of the ideal
    scale = np.abs(ideal["kspace"]).max()
    np.testing.assert_allclose(delayed["kspace"][:, :, :-1], ideal["kspace"][:, :, 1:], atol=1e-5 * scale)
    # the stored target is the ideal image with the stored (here: true) maps, not Aᴴ of the acquired data
    np.testing.assert_allclose(delayed["target"], ideal["target"], atol=1e-6 * np.abs(ideal["target"]).max())
    np.testing.assert_array_equal(delayed["truth"], ideal["truth"])
    np.testing.assert_allclose(rss(delayed["maps"][..., 0], axis=-1), 1.0, atol=1e-5)


def test_b0_mismatch_leaves_the_echo_centre_and_changes_the_rest(tmp_path):
    ideal, b0, attrs = _pair(tmp_path, b0_hz=150.0, maps="true")
    centre = ideal["kspace"].shape[2] // 2  # t = 0 at the readout's k-space centre: no phase accrued yet
    scale = np.abs(ideal["kspace"]).max()
    np.testing.assert_allclose(b0["kspace"][:, :, centre], ideal["kspace"][:, :, centre], atol=1e-5 * scale)
    assert np.abs(b0["kspace"] - ideal["kspace"]).max() > 1e-3 * scale
    with h5py.File(tmp_path / "mismatch" / "SIM_000.h5", "r") as f:
        assert np.isclose(np.abs(f["mismatch/b0_field_hz"][()]).max(), 150.0, rtol=0.1)


def test_mismatch_track_with_espirit_maps_keeps_targets_near_the_truth(tmp_path):
    ideal, mis, _ = _pair(tmp_path, b0_hz=60.0, gradient_delay=0.3)
    truth = np.abs(mis["truth"][..., 0])
    inside = truth > 0.2 * truth.max()
    np.testing.assert_allclose(rss(mis["maps"][..., 0], axis=-1)[inside], 1.0, atol=1e-3)
    assert not np.allclose(mis["maps"], ideal["maps"])  # estimated from the mismatched calibration data
    target = np.abs(mis["target"][..., 0, 0])
    assert np.linalg.norm((target - truth)[inside]) / np.linalg.norm(truth[inside]) < 0.05
    S = mr.linop.Sense(mis["maps"][0, ..., 0].transpose(2, 0, 1))
    adjoint = S.H(mis["kspace"][0, :, :, 0].transpose(2, 0, 1))
    assert np.linalg.norm(mis["target"][0, :, :, 0, 0] - adjoint) > 1e-3 * np.linalg.norm(adjoint)
