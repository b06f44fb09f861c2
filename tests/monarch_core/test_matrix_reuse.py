"""monarch_core.reused_matrices: one matrix build per transform per block, the same values and gradients."""
import pytest
import torch

from monarch_core import LearnableDFT, reused_matrices
from monarch_core.transform_kinds import transform_kind


def _perturbed(kind, n=64, seed=0, rows=None):
    torch.manual_seed(seed)
    t = LearnableDFT(n, kind, norm="ortho", rows=rows)
    with torch.no_grad():
        for p in t.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return t


def _repeated_use(t, x, times=5):
    """A model that applies t and its adjoint many times in one pass (an unrolled network's pattern)."""
    y = x
    for _ in range(times):
        y = torch.tanh(t.adjoint(t(y)).real).to(x.dtype) + x
    return y.abs().square().sum()


@pytest.mark.parametrize("kind,rows", [("dense", None), ("monarch", None), ("monarch", range(16))])
def test_values_and_gradients_equal_those_without_reuse(kind, rows):
    """All 64 rows: factored outside a block, materialised inside (MATERIALISE_FLOP_RATIO_REUSED)."""
    t = _perturbed(kind, rows=rows)
    x = torch.randn(8, 64, dtype=torch.complex64)[:, :t.n]
    loss = _repeated_use(t, x)
    expected = torch.autograd.grad(loss, list(t.parameters()))
    with reused_matrices():
        loss_reused = _repeated_use(t, x)
    got = torch.autograd.grad(loss_reused, list(t.parameters()))
    assert torch.allclose(loss_reused, loss, rtol=1e-6)
    for g, e in zip(got, expected):
        assert (g - e).norm() / e.norm() < 1e-5


@pytest.mark.parametrize("kind", ["dense", "monarch"])
def test_the_matrix_is_built_once_per_block_and_again_after_a_parameter_changes(kind, monkeypatch):
    t = _perturbed(kind, rows=range(16))  # few kept rows: materialised outside a block too
    impl = transform_kind(kind)
    builds = []
    real_matrix = type(impl).matrix
    monkeypatch.setattr(type(impl), "matrix", lambda self, tt: builds.append(1) or real_matrix(self, tt))
    x = torch.randn(4, 64, dtype=torch.complex64)
    _repeated_use(t, x)
    without = len(builds)
    assert without >= 10  # one build per call outside a block
    builds.clear()
    with reused_matrices():
        _repeated_use(t, x).backward()
        assert len(builds) == 1
        with torch.no_grad():  # an in-place update (an optimizer step) inside the block: rebuilt
            next(t.parameters()).mul_(1.01)
        _repeated_use(t, x)
        assert len(builds) == 2
    builds.clear()
    _repeated_use(t, x)  # after the block: nothing kept
    assert len(builds) == without


def test_two_backward_passes_in_two_blocks_accumulate_like_without_reuse():
    """Gradient accumulation over micro-batches (one block per forward pass) gives the plain gradient."""
    t = _perturbed("monarch")
    xs = [torch.randn(4, 64, dtype=torch.complex64) for _ in range(2)]
    for x in xs:
        _repeated_use(t, x).backward()
    expected = [p.grad.clone() for p in t.parameters()]
    t.zero_grad()
    for x in xs:
        with reused_matrices():
            _repeated_use(t, x).backward()
    for p, e in zip(t.parameters(), expected):
        assert (p.grad - e).norm() / e.norm() < 1e-5
