"""resize_fno: a learnable FNO moved to another grid equals neuraloperator's FNO there at initialisation."""
import pytest
import torch

from pde.experiments.models import build_fno
from pde.experiments.resize import resize_fno


def _pair(kind, n_modes, grid):
    torch.manual_seed(0)
    reference = build_fno("fft", n_modes, in_channels=2, out_channels=1, hidden_channels=4, n_layers=2)
    learnable = build_fno(kind, n_modes, in_channels=2, out_channels=1, hidden_channels=4, n_layers=2, grid_size=grid)
    learnable.load_state_dict(reference.state_dict(), strict=False)
    return reference, learnable


@pytest.mark.parametrize("kind", ["dense", "monarch", "diag"])
@pytest.mark.parametrize("grid,new_grid", [((16, 16), (32, 24)), ((16, 16), (12, 10)), ((15, 9), (21, 25)),
                                           ((15, 9), (9, 15)), ((16, 12), (15, 9))])
def test_resized_fno_equals_neuralop_on_the_new_grid(kind, grid, new_grid):
    reference, learnable = _pair(kind, (6, 6), grid)
    resized, residuals = resize_fno(learnable, new_grid)
    assert len(residuals) == 2 and all(len(r) == 4 and max(r) < 1e-6 for r in residuals.values())
    x = torch.randn(2, 2, *new_grid)
    with torch.no_grad():
        expected, got = reference(x), resized(x)
    assert (got - expected).norm() / expected.norm() < 1e-5
    with torch.no_grad():  # the original keeps its grid and derives transforms for the new one
        assert (learnable(x) - expected).norm() / expected.norm() < 1e-5


def test_fft_model_is_returned_as_is_and_coarse_grids_are_refused():
    reference, learnable = _pair("monarch", (8, 6), (16, 16))
    assert resize_fno(reference, (32, 32)) == (reference, {})
    with pytest.raises(ValueError, match="n_modes"):
        resize_fno(learnable, (6, 6))


def test_residuals_of_a_learned_monarch_fno():
    _, learnable = _pair("monarch", (6, 6), (16, 16))
    with torch.no_grad():
        for name, p in learnable.named_parameters():
            if "_transforms." in name:
                p.add_(0.05 * torch.randn(p.shape))
    _, residuals = resize_fno(learnable, (32, 32))
    assert all(0 < r < 1 for rs in residuals.values() for r in rs)
