"""SkmTeaSlices on hand-written files in the SKM-TEA layout and on simulated data."""
import h5py
import numpy as np
import pytest
import torch

import mri
from common.errors import FormatError
from mri.data.h5files import MalformedFileError
from mri.data.skmtea import SkmTeaSlices
from mri.data.transforms import sense_adjoint


def _crandn(rng, *shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def write_skmtea(path, nx=3, ny=16, nz=8, echoes=2, coils=4, mask_shape=(12, 6), drop=(), **override):
    """A small file in the SKM-TEA raw-data layout with random contents."""
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    data = {"kspace": _crandn(rng, nx, ny, nz, echoes, coils), "maps": _crandn(rng, nx, ny, nz, coils, 1),
            "target": _crandn(rng, nx, ny, nz, echoes, 1),
            "masks/poisson_4.0x": rng.uniform(size=mask_shape) < 0.3}
    data.update(override)
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            if key not in drop:
                f.create_dataset(key, data=value)
    return data


def test_items_match_the_file_layout_and_normalisation(tmp_path):
    data = write_skmtea(tmp_path / "MTR_002.h5")
    write_skmtea(tmp_path / "MTR_001.h5", nx=2)
    ds = SkmTeaSlices(tmp_path, echo=1, acceleration=4, normalize="std")
    assert ds.scan_ids == ["MTR_001", "MTR_002"] and len(ds) == 5
    item = ds[2 + 1]  # MTR_002, x = 1
    assert item["scan_id"] == "MTR_002" and item["slice_index"] == 1
    scale = np.std(data["target"][:, :, :, 1, 0])
    assert np.isclose(item["scale"], scale, rtol=1e-5)
    np.testing.assert_allclose(item["kspace"][2], data["kspace"][1, :, :, 1, 2] / scale, rtol=1e-5)
    np.testing.assert_allclose(item["maps"][3], data["maps"][1, :, :, 3, 0])
    np.testing.assert_allclose(item["target"], data["target"][1, :, :, 1, 0] / scale, rtol=1e-5)
    assert item["kspace"].shape == (4, 16, 8) and item["kspace"].dtype == np.complex64
    # a (12, 6) mask (like SKM-TEA's 416×80 inside 512×160) is zero-padded centred into (16, 8)
    assert item["mask"].shape == (16, 8) and item["mask"].dtype == np.float32
    np.testing.assert_array_equal(item["mask"][2:14, 1:7], data["masks/poisson_4.0x"])
    assert item["mask"].sum() == data["masks/poisson_4.0x"].sum()
    ds_max = SkmTeaSlices(tmp_path / "MTR_002.h5", normalize="max")
    assert np.isclose(ds_max.scale("MTR_002"), np.abs(data["target"][:, :, :, 0, 0]).max(), rtol=1e-5)
    assert "mask" not in ds_max[0]
    assert SkmTeaSlices(tmp_path, normalize="none", scans=["MTR_002"])[0]["scale"] == 1.0


def test_public_name_and_scan_selection(tiny_sim):
    ds = mri.SkmTeaSlices(tiny_sim, echo=0, acceleration=4.0, scans=["SIM_001"])
    assert ds.scan_ids == ["SIM_001"] and {ds[i]["scan_id"] for i in range(len(ds))} == {"SIM_001"}
    assert mri.SkmTeaSlices(tiny_sim, scans=[tiny_sim / "SIM_000.h5"]).scan_ids == ["SIM_000"]
    with pytest.raises(KeyError, match="SIM_000"):
        SkmTeaSlices(tiny_sim, scans=["MTR_999"])


def test_simulated_items_satisfy_the_sense_relation_and_batch_in_workers(tiny_sim):
    ds = SkmTeaSlices(tiny_sim, acceleration=2.0)
    for i in range(len(ds)):
        item = ds[i]
        ref = sense_adjoint(item["kspace"], item["maps"])
        assert np.linalg.norm(item["target"] - ref) / np.linalg.norm(ref) < 1e-5
        assert abs(item["mask"].size / item["mask"].sum() - 2.0) < 0.1
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, shuffle=False)
    batches = list(loader)
    assert sum(len(b["scan_id"]) for b in batches) == len(ds)
    first = batches[0]
    assert first["kspace"].shape == (2, 4, 64, 64) and first["kspace"].dtype == torch.complex64
    np.testing.assert_array_equal(first["target"][1].numpy(), ds[1]["target"])
    assert first["slice_index"].tolist() == [0, 1]


@pytest.mark.parametrize("make, match", [
    (lambda p: write_skmtea(p, drop=("maps",)), r"missing dataset 'maps' with axes \(x, ky, kz, coil, map\)"),
    (lambda p: write_skmtea(p, kspace=np.zeros((3, 16, 8, 2), np.complex64)), r"'kspace' has shape .* expected 5 axes"),
    (lambda p: write_skmtea(p, kspace=np.zeros((3, 16, 8, 2, 4), np.float32)), r"'kspace' has dtype float32, expected complex64"),
    (lambda p: write_skmtea(p, target=np.zeros((3, 16, 9, 2, 1), np.complex64)), r"'target' has shape \(3, 16, 9, 2, 1\)"),
    (lambda p: write_skmtea(p, **{"masks/poisson_4.0x": np.ones((20, 8), bool)}), r"mask of shape \(20, 8\) does not fit"),
    (lambda p: write_skmtea(p, drop=("masks/poisson_4.0x",)), r"no 'masks/poisson_4.0x'.*stored masks: none"),
])
def test_malformed_files_get_errors_naming_file_and_expectation(tmp_path, make, match):
    path = tmp_path / "MTR_bad.h5"
    make(path)
    with pytest.raises(MalformedFileError, match=match) as err:
        SkmTeaSlices(path, acceleration=4)
    assert str(path) in str(err.value)


def test_bad_arguments_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .h5 files"):
        SkmTeaSlices(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        SkmTeaSlices(tmp_path / "nowhere")
    write_skmtea(tmp_path / "MTR_001.h5")
    with pytest.raises(ValueError, match="echo=2 asked for, the file has 2"):
        SkmTeaSlices(tmp_path, echo=2)
    with pytest.raises(MalformedFileError, match="poisson_6.0x.*poisson_4.0x"):
        SkmTeaSlices(tmp_path, acceleration=6)
    with pytest.raises(ValueError, match="normalize"):
        SkmTeaSlices(tmp_path, normalize="mean")


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.3, 0.7])
def test_truncated_or_empty_files_are_format_errors_naming_the_file(tmp_path, fraction):
    good = tmp_path / "good" / "MTR_001.h5"
    good.parent.mkdir()
    write_skmtea(good, nx=2)
    data = good.read_bytes()
    path = tmp_path / "MTR_cut.h5"
    path.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(FormatError) as err:
        ds = SkmTeaSlices(path)
        [ds[i] for i in range(len(ds))]  # a cut in the payload shows only when the slices are read
    text = str(err.value)
    assert str(path) in text and "truncated or corrupt — re-copy or regenerate it" in text, text
    assert "Unable to" not in text and isinstance(err.value, MalformedFileError)


def test_non_finite_values_name_the_file_key_and_slice(tmp_path):
    rng = np.random.default_rng(0)
    kspace = _crandn(rng, 3, 16, 8, 2, 4)
    kspace[2, 5, 5, 0, 1] = np.nan
    write_skmtea(tmp_path / "MTR_nan.h5", kspace=kspace)
    ds = SkmTeaSlices(tmp_path)
    ds[1]  # slices 0 and 1 are finite
    with pytest.raises(FormatError, match=r"MTR_nan.h5: 'kspace' holds NaN or Inf in x index 2"):
        ds[2]
    target = _crandn(rng, 3, 16, 8, 2, 1)
    target[1, 0, 0, 0, 0] = np.inf
    write_skmtea(tmp_path / "MTR_inf.h5", target=target)
    with pytest.raises(FormatError, match=r"MTR_inf.h5: 'target' holds NaN or Inf in x index 1"):
        SkmTeaSlices(tmp_path / "MTR_inf.h5")[0]  # the volume's scale is computed first and names the slice
    assert issubclass(MalformedFileError, FormatError) and issubclass(MalformedFileError, ValueError)
