"""The learnable-transform FNOs against neuraloperator's own FNO and against torch.fft."""
import pytest
import torch

from monarch_core import dft_matrix
from pde.experiments.models import build_fno, parameter_counts
from pde.experiments.truncated_dft import TruncatedDFT

CASES = [  # (n_modes, grid): 1-D and 2-D, even and odd sizes (odd composite for Monarch)
    ((8,), (32,)), ((6,), (21,)), ((8, 6), (16, 16)), ((6, 8), (15, 9)), ((24, 22), (64, 64)),
]


def _fno_pair(kind, n_modes, grid, seed=0):
    torch.manual_seed(seed)
    reference = build_fno("fft", n_modes, in_channels=3, out_channels=2, hidden_channels=6, n_layers=2)
    learnable = build_fno(kind, n_modes, in_channels=3, out_channels=2, hidden_channels=6, n_layers=2, grid_size=grid)
    result = learnable.load_state_dict(reference.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert all("_transforms." in key for key in result.missing_keys)
    return reference, learnable


@pytest.mark.parametrize("kind", ["dense", "monarch"])
@pytest.mark.parametrize("n_modes,grid", CASES)
def test_equals_neuralop_fno_at_initialisation(kind, n_modes, grid):
    reference, learnable = _fno_pair(kind, n_modes, grid)
    x = torch.randn(2, 3, *grid)
    with torch.no_grad():
        expected, got = reference(x), learnable(x)
    assert (got - expected).norm() / expected.norm() < 1e-5


def test_equals_fno_after_lowering_n_modes():
    reference, learnable = _fno_pair("monarch", (12, 10), (16, 16))
    reference.n_modes = learnable.n_modes = (6, 6)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected, got = reference(x), learnable(x)
    assert (got - expected).norm() / expected.norm() < 1e-5


@pytest.mark.parametrize("kind", ["dense", "monarch"])
def test_truncated_dft_rows_and_adjoint(kind):
    n, freqs = 24, [-5, -1, 0, 3, 7]
    transform = TruncatedDFT(n, freqs, kind, scale=0.5)
    x = torch.randn(3, n, 4, dtype=torch.complex64)
    expected = 0.5 * torch.fft.fft(x, dim=1)[:, [f % n for f in freqs]]
    assert torch.allclose(transform(x, dim=1), expected, atol=1e-4)
    dense = (0.5 * dft_matrix(n, dtype=torch.complex128)[[f % n for f in freqs]]).to(torch.complex64)
    assert torch.allclose(transform.matrix(), dense, atol=1e-5)
    y = torch.randn(3, len(freqs), 4, dtype=torch.complex64)
    lhs = torch.vdot(transform(x, dim=1).flatten(), y.flatten())  # <Tx, y> = <x, Tᴴy>
    rhs = torch.vdot(x.flatten(), transform.adjoint(y, dim=1).flatten())
    assert torch.allclose(lhs, rhs, rtol=1e-4)


def test_monarch_stores_only_needed_rows():
    transform = TruncatedDFT(64, list(range(-12, 12)), "monarch")
    assert tuple(transform.w2.shape[:-1]) == (8, 4, 8)  # rows t ∈ {0, 1, 6, 7} of the 8 in each block
    last_axis = TruncatedDFT(64, list(range(12)), "monarch")
    assert tuple(last_axis.w2.shape[:-1]) == (8, 2, 8)


def test_transforms_learn():
    _, learnable = _fno_pair("monarch", (8, 6), (16, 16))
    x = torch.randn(2, 3, 16, 16)
    learnable(x).square().mean().backward()
    grads = [p.grad for n, p in learnable.named_parameters() if "_transforms." in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_other_grid_is_refused():
    model = build_fno("dense", (8, 6), 1, 1, 4, n_layers=1, grid_size=(16, 16))
    with pytest.raises(ValueError, match="built for grid"):
        model(torch.randn(1, 1, 20, 16))
    with pytest.raises(ValueError, match="grid_size"):
        build_fno("monarch", (8, 6), 1, 1, 4)


def test_monarch_channel_mixing():
    model = build_fno("monarch", (8, 6), 3, 2, 8, n_layers=2, grid_size=16, monarch_channels=True)
    counts = parameter_counts(model)
    assert counts["monarch_channels"] > 0
    assert not any(isinstance(m, torch.nn.Conv1d) for m in model.modules())
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 2, 16, 16)
