"""The oracle-physics operator (mri.recon.mismatch_sense) against the simulation's own forward model,
its adjoint, the ideal SENSE operator, and the oracle model through `mri train` / `mri eval`."""
import numpy as np
import pytest
import torch

from mri.data.mismatch import b0_kspace, delay_phase, readout_times
from mri.data.presets import SimConfig
from mri.data.simulate import acquire
from mri.recon.mismatch_sense import MismatchSenseOp
from mri.recon.sense import SenseOp


def _random_problem(seed, b=2, c=3, h=16, w=20, dtype=torch.complex128):
    g = torch.Generator().manual_seed(seed)
    maps = torch.randn(b, c, h, w, dtype=dtype, generator=g)
    mask = (torch.rand(b, h, w, generator=g) > 0.5).to(maps.real.dtype)
    field = 80 * torch.randn(b, h, w, dtype=torch.float64, generator=g)
    delay = torch.rand(b, dtype=torch.float64, generator=g) * 2 - 1
    bw = 200 + 300 * torch.rand(b, dtype=torch.float64, generator=g)
    return maps, mask, field, delay, bw, g


@pytest.mark.parametrize("seed", [0, 1])
def test_adjoint_is_exact(seed):
    maps, mask, field, delay, bw, g = _random_problem(seed)
    op = MismatchSenseOp(maps, mask, field, delay, bw)
    x = torch.randn(maps.shape[0], *maps.shape[-2:], dtype=maps.dtype, generator=g)
    y = torch.randn(maps.shape, dtype=maps.dtype, generator=g)
    lhs, rhs = torch.vdot(op(x).flatten(), y.flatten()), torch.vdot(x.flatten(), op.adjoint(y).flatten())
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)


def test_equals_the_simulation_forward_model():
    """On the reconstruction grid (oversample 1) A x is exactly simulate.acquire of the coil images."""
    maps, _, field, _, _, g = _random_problem(2, b=1, dtype=torch.complex64)
    h, w = maps.shape[-2:]
    x = torch.randn(1, h, w, dtype=torch.complex64, generator=g)
    for b0, delay in [(60.0, 0.3), (0.0, -0.45), (120.0, 0.0)]:
        cfg = SimConfig(shape=(h, w), oversample=1, b0_hz=b0, gradient_delay=delay, readout_bw_hz=250.0)
        f = field[0].numpy() if b0 else None
        ref = acquire((maps[0] * x[0]).numpy(), (h, w), cfg, f)
        op = MismatchSenseOp(maps, None, field if b0 else torch.zeros_like(field), torch.tensor([delay]),
                             torch.tensor([250.0]))
        got = op(x)[0].numpy()
        assert np.abs(got - ref).max() < 1e-5 * np.abs(ref).max(), (b0, delay)


def test_pieces_match_independent_references():
    """Zero physics → the ideal SENSE operator; delay only → FFT of the phase-ramped image; B0 only →
    b0_kspace with the readout times of mri.data.mismatch."""
    maps, mask, field, _, bw, g = _random_problem(3)
    b, _, h, w = maps.shape
    x = torch.randn(b, h, w, dtype=maps.dtype, generator=g)
    ideal = MismatchSenseOp(maps, mask, torch.zeros(b, h, w), torch.zeros(b), bw)
    assert torch.allclose(ideal(x), SenseOp(maps, mask)(x), atol=1e-10)
    ramp = torch.from_numpy(delay_phase(w, 0.4))
    delayed = MismatchSenseOp(maps, None, torch.zeros(b, h, w), torch.full((b,), 0.4), bw)
    assert torch.allclose(delayed(x), SenseOp(maps)(x * ramp), atol=1e-10)
    b0 = MismatchSenseOp(maps, None, field, torch.zeros(b), bw)
    ref = b0_kspace((maps[0] * x[0]).numpy(), field[0].numpy(), readout_times(w, float(bw[0])))
    assert np.abs(b0(x)[0].numpy() - ref).max() < 1e-4 * np.abs(ref).max()


def test_oracle_model_trains_and_evaluates(tmp_path):
    """unrolled-fft-oracle through run.py's train/eval paths on simulated mismatch data; it needs physics."""
    from mri.data.presets import PRESETS
    from mri.data.simulate import simulate_dataset
    from mri.recon.evaluation import evaluate_run
    from mri.recon.models import build_model
    from mri.recon.training import TrainConfig, train

    data = tmp_path / "sim"
    simulate_dataset(PRESETS["tiny"].replace(n_scans=2, slices=2, espirit_max_iter=10, b0_hz=60.0, gradient_delay=0.3), data, progress=False)
    run = train(TrainConfig(data_dir=str(data), model="unrolled-fft-oracle", scale="tiny", acceleration=2.0,
                            epochs=1, batch_size=2, out_dir=str(tmp_path / "runs"), run_name="oracle", progress=False))
    report = evaluate_run(run, acceleration=2.0, device="cpu")
    assert np.isfinite(report["psnr_mean"]) and np.isfinite(report["complex_psnr_mean"])
    model = build_model("unrolled-fft-oracle", (16, 16), "tiny")
    with pytest.raises(ValueError, match="physics"):
        model(torch.zeros(1, 2, 16, 16, dtype=torch.complex64), torch.ones(1, 2, 16, 16, dtype=torch.complex64))
