"""Distinct subjects and disjoint splits: by construction (mri.data.subjects) and on generated files."""
import json

import h5py
import numpy as np
import pytest

from common.errors import ConfigError
from mri.data.presets import PRESETS, SimConfig
from mri.data.presets import default_split_counts
from mri.data.simulate import read_splits, simulate_dataset
from mri.data.skmtea import SkmTeaSlices
from mri.data.subjects import (BANDS, SPLITS, slab_positions, split_of, split_z_ranges,
                               subject_images, subject_kind)

# 2 train, 1 val, 2 test subjects × 2 slices of 32² with 2 coils (a few seconds)
SMALL = PRESETS["tiny"].replace(shape=(32, 32), slices=2, n_train=2, n_val=1, n_test=2, coils=2,
                                accelerations=(2.0,), espirit_max_iter=10)


def _overlaps(a, b):
    return any(lo1 < hi2 and lo2 < hi1 for lo1, hi1 in a for lo2, hi2 in b)


def test_split_bands_are_disjoint_interleaved_and_slabs_stay_inside():
    ranges = {s: split_z_ranges(s) for s in SPLITS}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            assert not _overlaps(ranges[a], ranges[b])
    assert len(ranges["train"]) == 4 and len(ranges["val"]) == 2 and len(ranges["test"]) == 2
    assert min(lo for lo, _ in ranges["test"]) < 0.5 < max(hi for _, hi in ranges["test"])  # spans the brain
    rng = np.random.default_rng(0)
    for split in SPLITS:
        for n in (1, 4, 40):
            z = slab_positions(split, n, 93.0, rng)
            assert len(z) == n and any(lo <= z.min() and z.max() <= hi for lo, hi in ranges[split])
    assert len(BANDS) == 8


def test_split_assignment_and_default_counts():
    assert [split_of(i, 2, 1, 2) for i in range(5)] == ["train", "train", "val", "test", "test"]
    assert default_split_counts(1) == (1, 0, 0) and default_split_counts(3) == (1, 1, 1)
    assert default_split_counts(20) == (13, 2, 5)
    assert [subject_kind("mixed", i, 8, 2) for i in range(8)].count("phantom") == 2
    config = SimConfig().replace(n_scans=6)
    assert (config.n_train, config.n_val, config.n_test, config.n_scans) == (3, 1, 2, 6)
    with pytest.raises(IndexError):
        split_of(5, 2, 1, 2)


def test_subjects_differ_in_anatomy_for_the_same_slice_position():
    images = []
    for index in range(2):
        rng = np.random.default_rng([0, index])
        images.append(subject_images("mni", "train", 2, (48, 48), 1, "t1", rng)[0])
    again = subject_images("mni", "train", 2, (48, 48), 1, "t1", np.random.default_rng([0, 0]))[0]
    np.testing.assert_array_equal(images[0], again)  # seeded
    assert np.abs(images[0] - images[1]).mean() > 0.02


def test_phantom_subjects_differ_and_are_sigpy_shepp_logan_at_zero_perturbation():
    a, za = subject_images("phantom", "test", 2, (48, 48), 2, "t1", np.random.default_rng(1))
    b, _ = subject_images("phantom", "test", 2, (48, 48), 2, "t1", np.random.default_rng(2))
    assert a.shape == (2, 2, 48, 48) and 0.99 < a.max() <= 1.0
    assert np.abs(a - b).mean() > 0.01
    assert not np.allclose(a[:, 0], a[:, 1])  # the second echo differs
    assert any(lo <= za.min() and za.max() <= hi for lo, hi in split_z_ranges("test"))


@pytest.fixture(scope="module")
def small_sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("subjects")
    simulate_dataset(SMALL, out, progress=False)
    return out


def test_generated_files_record_disjoint_subjects_splits_and_z(small_sim):
    meta = json.loads((small_sim / "meta.json").read_text())
    assert meta["splits"] == {"train": ["SIM_000", "SIM_001"], "val": ["SIM_002"], "test": ["SIM_003", "SIM_004"]}
    assert read_splits(small_sim) == meta["splits"]
    seen = {}
    for split, ids in meta["splits"].items():
        for scan in ids:
            with h5py.File(small_sim / f"{scan}.h5", "r") as f:
                assert f.attrs["split"] == split and f.attrs["scan_id"] == scan
                assert f.attrs["subject_id"] == meta["subjects"][scan]
                z = np.asarray(f.attrs["z_positions"])
                assert any(lo <= z.min() and z.max() <= hi for lo, hi in meta["z_bands"][split])
                truth = np.abs(f["truth"][0, :, :, 0])
                inside = truth > 0.2 * truth.max()
                maps_rss = np.sqrt((np.abs(f["maps"][0, ..., 0]) ** 2).sum(-1))
                assert np.mean(np.abs(maps_rss[inside] - 1) < 1e-3) > 0.95  # ESPIRiT works at 32² too
                seen[scan] = (split, f.attrs["subject_id"], z, f["truth"][()])
    subjects_by_split = {s: {seen[i][1] for i in ids} for s, ids in meta["splits"].items()}
    assert sum(len(v) for v in subjects_by_split.values()) == len(set().union(*subjects_by_split.values())) == 5
    train_z = np.concatenate([seen[i][2] for i in meta["splits"]["train"]])
    test_z = np.concatenate([seen[i][2] for i in meta["splits"]["test"]])
    assert np.abs(train_z[:, None] - test_z[None, :]).min() > 0.02  # no shared slice position
    # the files stay readable by the SKM-TEA reader, split by split
    ds = SkmTeaSlices(small_sim, acceleration=2.0, scans=meta["splits"]["test"])
    assert ds.scan_ids == ["SIM_003", "SIM_004"] and len(ds) == 4


@pytest.mark.parametrize("change, option", [
    ({"shape": (15, 32)}, "--shape"), ({"shape": (18, 17)}, "--shape"), ({"n_train": 0}, "--n-train-scans"),
    ({"coils": 0}, "--coils"), ({"accelerations": (1.0,)}, "--accelerations"), ({"slices": 0}, "--slices"),
    ({"accelerations": (8.0,), "shape": (16, 16)}, "--accelerations"), ({"source": "brain"}, "--source"),
    ({"echoes": 3}, "--echoes"), ({"calib": 6}, "calib"), ({"gradient_delay": 20.0}, "--mismatch delay"), ({"maps": "jsense"}, "--mismatch maps"),
])
def test_invalid_settings_raise_before_any_file_is_written(tmp_path, change, option):
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match=option):
        simulate_dataset(SMALL.replace(**change), out, progress=False)
    assert not out.exists()


def test_stale_meta_without_scans_is_replaced_with_a_note(tmp_path, capsys):
    stale = {"format_version": 1, "config": {"shape": [8, 8], "n_scans": 2}}
    (tmp_path / "meta.json").write_text(json.dumps(stale))
    config = SMALL.replace(n_train=1, n_val=0, n_test=0, slices=1)
    simulate_dataset(config, tmp_path, progress=False)
    assert "replacing" in capsys.readouterr().err
    assert json.loads((tmp_path / "meta.json").read_text())["config"] == config.to_dict()
    assert (tmp_path / "SIM_000.h5").exists()
