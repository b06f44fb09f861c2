"""FastMRISlices on files written in the fastMRI multi-coil layout (from simulated k-space)."""
import os

import h5py
import numpy as np
import pytest
import sigpy.mri as mr

import mri
from mri.data.fastmri import FastMRISlices
from common.errors import FormatError
from mri.data.h5files import MalformedFileError
from mri.data.transforms import ifft2c, rss

HEADER = """<?xml version="1.0"?><ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>
<encodedSpace><matrixSize><x>128</x><y>64</y><z>1</z></matrixSize></encodedSpace>
<reconSpace><matrixSize><x>64</x><y>64</y><z>1</z></matrixSize></reconSpace></encoding></ismrmrdHeader>"""


def write_fastmri(path, kspace, mask=None, **attrs):
    """kspace (slice, coil, H, W) → a fastMRI multi-coil file (with its RSS reconstruction)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace)
        recon = rss(ifft2c(kspace)).astype(np.float32)
        f.create_dataset("reconstruction_rss", data=recon)
        f.create_dataset("ismrmrd_header", data=HEADER.encode())
        if mask is not None:
            f.create_dataset("mask", data=mask)
        f.attrs.update({"max": float(recon.max()), "acquisition": "CORPD_FBK", **attrs})


@pytest.fixture()
def fastmri_dir(tiny_sim, tmp_path):
    for path in sorted(tiny_sim.glob("SIM_*.h5")):
        with h5py.File(path, "r") as f:
            ksp = f["kspace"][:, :, :, 0, :].transpose(0, 3, 1, 2)  # (x, ky, kz, coil) → (slice, coil, H, W)
        write_fastmri(tmp_path / f"file_{path.stem}.h5", ksp)
    return tmp_path


def test_maps_are_estimated_once_cached_atomically_and_reused(fastmri_dir):
    ds = mri.FastMRISlices(fastmri_dir, acceleration=4, center_fraction=0.08, calib_width=16)
    assert ds.scan_ids == ["file_SIM_000", "file_SIM_001"] and len(ds) == 6
    item = ds[4]
    assert item["scan_id"] == "file_SIM_001" and item["slice_index"] == 1
    assert ds.maps_estimated == 1  # only the volume that was touched
    ds.prepare_maps()
    assert ds.maps_estimated == 2
    caches = sorted(p.name for p in fastmri_dir.glob("*.maps.h5"))
    assert caches == ["file_SIM_000.h5.maps.h5", "file_SIM_001.h5.maps.h5"]
    assert not list(fastmri_dir.glob(".*tmp"))
    mtimes = {p: os.stat(p).st_mtime_ns for p in fastmri_dir.glob("*.maps.h5")}
    again = FastMRISlices(fastmri_dir, acceleration=4, center_fraction=0.08, calib_width=16)
    np.testing.assert_array_equal(again[4]["maps"], item["maps"])
    [again[i] for i in range(len(again))]
    assert again.maps_estimated == 0
    assert mtimes == {p: os.stat(p).st_mtime_ns for p in fastmri_dir.glob("*.maps.h5")}
    # other ESPIRiT settings invalidate the cache
    other = FastMRISlices(fastmri_dir, calib_width=12, scans=["file_SIM_000"])
    other[0]
    assert other.maps_estimated == 1


def test_items_satisfy_sense_relation_and_unit_rss(fastmri_dir):
    ds = FastMRISlices(fastmri_dir, calib_width=16, normalize="max")
    item = ds[1]
    with h5py.File(fastmri_dir / "file_SIM_000.h5", "r") as f:
        raw = f["kspace"][1]
    np.testing.assert_allclose(item["kspace"] * item["scale"], raw, rtol=1e-5, atol=1e-6)
    ref = mr.linop.Sense(item["maps"]).H(item["kspace"])
    assert np.linalg.norm(item["target"] - ref) / np.linalg.norm(ref) < 1e-5
    magnitude = np.abs(item["target"])
    inside = magnitude > 0.2 * magnitude.max()
    np.testing.assert_allclose(rss(item["maps"])[inside], 1.0, atol=1e-3)
    assert "mask" not in item
    assert max(np.abs(ds[i]["target"]).max() for i in range(3)) == pytest.approx(1.0, rel=1e-5)


def test_column_masks_fixed_per_volume_or_random_per_item(fastmri_dir):
    fixed = FastMRISlices(fastmri_dir, acceleration=4, center_fraction=0.08, calib_width=16)
    a, b, c = fixed[0]["mask"], fixed[1]["mask"], fixed[3]["mask"]
    assert a.shape == (64, 64) and (a == a[:1]).all()  # columns: constant along H
    np.testing.assert_array_equal(a, b)  # one mask per volume, seeded by its scan id
    assert not np.array_equal(a, c)
    assert a[:, 30:35].all()  # the 5 central columns (0.08 · 64) around DC = 32
    np.testing.assert_array_equal(a, FastMRISlices(fastmri_dir, acceleration=4, calib_width=16)[0]["mask"])
    equi = FastMRISlices(fastmri_dir, acceleration=4, center_fraction=0.08, mask_kind="equispaced",
                         calib_width=16)[0]["mask"][0]
    assert abs(equi.size / equi.sum() - 4) < 0.5
    rand = FastMRISlices(fastmri_dir, acceleration=4, fixed_masks=False, calib_width=16)
    assert not all(np.array_equal(rand[0]["mask"], rand[0]["mask"]) for _ in range(5))


def test_test_files_use_their_own_mask_and_header_is_parsed(tmp_path, tiny_sim):
    with h5py.File(tiny_sim / "SIM_000.h5", "r") as f:
        ksp = f["kspace"][:, :, :, 0, :].transpose(0, 3, 1, 2)
    mask = np.zeros(64, bool)
    mask[::4] = True
    mask[26:38] = True
    write_fastmri(tmp_path / "test_file.h5", ksp * mask, mask=mask, acceleration=4, num_low_frequency=12)
    ds = FastMRISlices(tmp_path, calib_width=24)
    item = ds[0]
    np.testing.assert_array_equal(item["mask"][5], mask.astype(np.float32))
    with h5py.File(ds.maps_path("test_file"), "r") as c:
        assert c.attrs["calib_width"] == 12  # capped by num_low_frequency
    header = ds.header("test_file")
    assert header["encodedSpace"] == (128, 64, 1) and header["reconSpace"] == (64, 64, 1)
    assert header["acquisition"] == "CORPD_FBK" and header["num_low_frequency"] == 12


@pytest.mark.parametrize("write, match", [
    (lambda f: f.create_dataset("reconstruction_rss", data=np.zeros((2, 8, 8), np.float32)),
     r"missing dataset 'kspace' with axes \(slice, coil, H, W\)"),
    (lambda f: f.create_dataset("kspace", data=np.zeros((4, 8, 8), np.complex64)), r"expected 4 axes"),
    (lambda f: (f.create_dataset("kspace", data=np.zeros((1, 2, 8, 8), np.complex64)),
                f.create_dataset("mask", data=np.ones(6, bool))), r"'mask' has 6 columns, kspace has W = 8"),
])
def test_malformed_fastmri_files(tmp_path, write, match):
    path = tmp_path / "file_bad.h5"
    with h5py.File(path, "w") as f:
        write(f)
    with pytest.raises(MalformedFileError, match=match) as err:
        FastMRISlices(path)
    assert str(path) in str(err.value)


def test_truncated_files_and_caches_are_format_errors(tmp_path, tiny_sim):
    with h5py.File(tiny_sim / "SIM_000.h5", "r") as f:
        ksp = f["kspace"][:, :, :, 0, :].transpose(0, 3, 1, 2)
    good = tmp_path / "good" / "file_a.h5"
    good.parent.mkdir()
    write_fastmri(good, ksp)
    for fraction in (0.0, 0.01, 0.5):
        path = tmp_path / f"file_cut{int(fraction * 100)}.h5"
        path.write_bytes(good.read_bytes()[:int(good.stat().st_size * fraction)])
        with pytest.raises(FormatError) as err:
            ds = FastMRISlices(path, calib_width=16)
            [ds[i] for i in range(len(ds))]
        assert str(path) in str(err.value) and "truncated or corrupt" in str(err.value)
    ds = FastMRISlices(good, calib_width=16)
    ds[0]
    cache = ds.maps_path("file_a")
    cache.write_bytes(cache.read_bytes()[:200])  # a cut-off cache is rebuilt, not trusted
    assert np.isfinite(FastMRISlices(good, calib_width=16)[0]["maps"]).all()


def test_non_finite_kspace_names_the_file_and_slice(tmp_path, tiny_sim):
    with h5py.File(tiny_sim / "SIM_000.h5", "r") as f:
        ksp = f["kspace"][:, :, :, 0, :].transpose(0, 3, 1, 2).copy()
    ksp[1, 0, 3, 3] = np.inf
    write_fastmri(tmp_path / "file_inf.h5", ksp)
    with pytest.raises(FormatError, match=r"file_inf.h5: 'kspace' holds NaN or Inf in slice 1"):
        FastMRISlices(tmp_path, calib_width=16)[0]
