import numpy as np
import pytest
import sigpy.mri as mr

from mri.data.masks import (calibration_slices, calibration_width, column_mask, mask_key,
                            poisson_disc_mask, scan_seed)


@pytest.mark.parametrize("shape, accel, calib", [((64, 64), 2, 16), ((64, 64), 8, 16), ((80, 48), 4, 12),
                                                 ((512, 160), 8, 24)])
def test_poisson_hits_acceleration_within_sigpy_tolerance_and_holds_calibration(shape, accel, calib):
    mask = poisson_disc_mask(shape, accel, (calib, calib), seed=7)
    assert mask.shape == shape and mask.dtype == bool
    assert abs(mask.size / mask.sum() - accel) < 0.1  # sigpy.mri.poisson's default tol
    assert mask[calibration_slices(shape, (calib, calib))].all()
    np.testing.assert_array_equal(mask, poisson_disc_mask(shape, accel, (calib, calib), seed=7))
    assert not np.array_equal(mask, poisson_disc_mask(shape, accel, (calib, calib), seed=8))


def test_poisson_equals_sigpy_when_sigpy_returns():
    for shape, accel, seed in [((64, 64), 4, 0), ((64, 48), 3, 5)]:
        ours = poisson_disc_mask(shape, accel, (0, 0), seed=seed)
        np.testing.assert_array_equal(ours, mr.poisson(shape, accel, seed=seed).real > 0)


def test_poisson_impossible_acceleration_raises_instead_of_hanging():
    with pytest.raises(ValueError, match="calibration"):
        poisson_disc_mask((32, 32), 8, (16, 16), seed=0)


def test_calibration_box_is_24_or_a_quarter_of_small_shapes():
    assert calibration_width((256, 256)) == 24
    assert calibration_width((512, 160)) == 24
    assert calibration_width((64, 64)) == 16
    assert calibration_slices((64, 64), (16, 16)) == (slice(24, 40), slice(24, 40))  # DC at 32


def test_column_masks_random_and_equispaced():
    rng = np.random.default_rng(0)
    n, accel, frac = 368, 4, 0.08
    centre = slice((n - round(n * frac) + 1) // 2, (n - round(n * frac) + 1) // 2 + round(n * frac))
    rates = []
    for _ in range(200):
        m = column_mask(n, accel, frac, "random", rng)
        assert m[centre].all()
        rates.append(m.mean())
    assert abs(np.mean(rates) - 1 / accel) < 0.005
    for accel in (4, 8):
        m = column_mask(n, accel, 0.04, "equispaced", rng)
        assert abs(n / m.sum() - accel) < 0.3
    with pytest.raises(ValueError):
        column_mask(n, 4, 0.5, "random", rng)
    with pytest.raises(ValueError):
        column_mask(n, 4, 0.08, "radial", rng)


def test_mask_keys_and_seeds_are_stable():
    assert mask_key(4) == "masks/poisson_4.0x" and mask_key(6.0) == "masks/poisson_6.0x"
    assert scan_seed("MTR_005") == scan_seed("MTR_005") != scan_seed("MTR_006")


def test_draw_mask_per_sample_seeded_on_target_and_calibrated():
    from common.errors import ConfigError
    from mri.data.masks import draw_mask

    shape, calib = (64, 64), calibration_width((64, 64))
    masks = [draw_mask(shape, 4.0, seed) for seed in range(4)]
    for seed, mask in enumerate(masks):
        assert mask.shape == shape and mask.dtype == bool
        assert abs(mask.size / mask.sum() - 4.0) < 0.1
        assert mask[calibration_slices(shape, (calib, calib))].all()
        np.testing.assert_array_equal(mask, draw_mask(shape, 4.0, seed))
    assert all(not np.array_equal(a, b) for i, a in enumerate(masks) for b in masks[i + 1:])
    assert draw_mask((48, 40), 3.0, seed=2**40 + 5, calib=8)[calibration_slices((48, 40), (8, 8))].all()
    with pytest.raises(ConfigError, match="acceleration"):
        draw_mask(shape, 1.0, 0)
    with pytest.raises(ConfigError, match="calibration"):
        draw_mask((32, 32), 8.0, 0, calib=16)
