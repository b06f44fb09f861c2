"""Mixed-resolution training: one FNO (learnable transforms built at 32²) trained on batches at 32² and
64² alternately. Every step's gradients reach the native transforms' parameters, and afterwards the
transforms the layer applies at 64² agree with `LearnableDFT.resized(64)` of the learned 32² ones, and
the 64² ones resized back to 32 are the learned ones.

Tolerance: 1e-5 relative (Frobenius), i.e. float32 round-off. Band-limited interpolation between 32 and
64 points loses nothing here: zero-padding a 32-point spectrum to 64 is undone exactly by truncating it
again (the 32-point Nyquist coefficient is split between ±16 and summed back), and the DFT rows of the
kept frequencies (|k| ≤ 4 < 16) are exact on both grids, so the layer's derived rows (DFT row +
resampled deviation) and `resized`'s (resampled learned row) differ by round-off only. The one step
with a real approximation error is Monarch's re-projection onto its 64-point factorisation inside
`resized`; it reports that error as `projection_residual`, which is added to the tolerance.
"""
import pytest
import torch

from monarch_core import LearnableDFT
from pde.experiments.models import build_fno
from pde.experiments.resize import resize_fno

TOLERANCE = 1e-5


def smooth_fields(batch: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, 1, n, n) random trigonometric polynomials of degree ≤ 3: the same function family on any grid."""
    x = torch.arange(n) / n
    field = torch.zeros(batch, n, n)
    for kx in range(-3, 4):
        for ky in range(-3, 4):
            a = torch.randn(batch, 1, 1, generator=generator)
            phase = 2 * torch.pi * torch.rand(batch, 1, 1, generator=generator)
            field = field + a * torch.cos(2 * torch.pi * (kx * x[:, None] + ky * x[None, :]) + phase)
    return field[:, None] / 7


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("kind", ["dense", "monarch"])
def test_mixed_resolution_training(kind):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = build_fno(kind, (8, 6), 1, 1, hidden_channels=4, n_layers=1, grid_size=32)
    conv = model.fno_blocks.convs[0]
    transforms = {name: p for name, p in model.named_parameters() if "_transforms." in name}
    assert transforms
    with torch.no_grad():  # fills the no-grad cache of the 64² rows: it must not survive the updates
        model(smooth_fields(1, 64, generator))
    initial = {axis: (conv.forward_transforms[axis].matrix().detach().clone(),
                      conv.inverse_transforms[axis].matrix().detach().clone()) for axis in range(2)}
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    for step in range(6):
        n = 32 if step % 2 == 0 else 64
        x = smooth_fields(4, n, generator)
        loss = (model(x) - torch.sin(3 * x)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        missing = [name for name, p in transforms.items() if p.grad is None or not p.grad.abs().sum() > 0]
        assert not missing, f"step {step} on {n}²: no gradient reaches {missing}"
        optimizer.step()

    forward64, inverse64 = conv.transforms_at((64, 64))
    for axis in range(2):
        for learned, at64, before in [(conv.forward_transforms[axis], forward64[axis], initial[axis][0]),
                                      (conv.inverse_transforms[axis], inverse64[axis], initial[axis][1])]:
            native = learned.matrix().detach()
            assert relative(native, before) > 1e-2  # trained away from the DFT: not a DFT-vs-DFT comparison
            up = learned.resized(64)
            # projection_residual is relative to the resampled rows, which the layer's 64² rows are
            assert relative(up.matrix().detach(), at64.detach()) < TOLERANCE + up.projection_residual
            held = LearnableDFT(64, "dense", norm=learned.norm, rows=learned.frequencies())
            with torch.no_grad():
                held.weight.copy_(torch.view_as_real(at64 / held.scale))
            assert relative(held.resized(32).matrix().detach(), native) < TOLERANCE

    if kind == "dense":  # the model at 64² computes what resize_fno's copy (native at 64²) computes
        x = smooth_fields(2, 64, generator)
        resized, _ = resize_fno(model, 64)
        with torch.no_grad():
            assert relative(model(x), resized(x)) < TOLERANCE
