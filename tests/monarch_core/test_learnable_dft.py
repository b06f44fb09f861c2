import pytest
import torch

from monarch_core import LearnableDFT, transform_cost
from tests.monarch_core.test_dft import fft_reference


@pytest.mark.parametrize("kind", ["fft", "dense", "monarch"])
@pytest.mark.parametrize("n", [12, 16, 20])
def test_starts_equal_to_fft_along_any_dim(kind, n):
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(2, n, 3, dtype=torch.complex128, generator=gen)
    for inverse in (False, True):
        for norm in ("backward", "ortho", "forward"):
            for centered in (False, True):
                t = LearnableDFT(n, kind, inverse=inverse, norm=norm, centered=centered, dtype=torch.complex128)
                ref = fft_reference(x.movedim(1, -1), inverse, norm, centered).movedim(-1, 1)
                assert torch.allclose(t(x, dim=1), ref, atol=1e-12)
                assert torch.allclose(t(x.transpose(1, 2), dim=-1), ref.transpose(1, 2), atol=1e-12)


@pytest.mark.parametrize("kind", ["fft", "dense", "monarch"])
def test_adjoint_identity_after_training_step(kind):
    """⟨T x, y⟩ = ⟨x, Tᴴ y⟩ also once the learnable matrix has moved away from the DFT."""
    gen = torch.Generator().manual_seed(0)
    n = 24
    t = LearnableDFT(n, kind, centered=True, norm="ortho", dtype=torch.complex128)
    if kind != "fft":
        with torch.no_grad():
            for p in t.parameters():
                p.add_(0.1 * torch.randn(p.shape, dtype=p.dtype, generator=gen))
    x = torch.randn(3, n, 2, dtype=torch.complex128, generator=gen)
    y = torch.randn(3, n, 2, dtype=torch.complex128, generator=gen)
    lhs = torch.vdot(t(x, dim=1).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), t.adjoint(y, dim=1).flatten())
    assert torch.allclose(lhs, rhs, atol=1e-10)
    T = t.matrix()
    assert torch.allclose(t.adjoint(y, dim=1), torch.einsum("km,bkc->bmc", T.conj(), y), atol=1e-10)


@pytest.mark.parametrize("kind", ["dense", "monarch"])
def test_parameters_are_real_and_learn(kind):
    n = 16
    t = LearnableDFT(n, kind)
    assert all(not p.is_complex() and p.shape[-1] == 2 for p in t.parameters())
    assert t.parameter_count() == transform_cost(kind, n)["params"]
    opt = torch.optim.Adam(t.parameters(), lr=1e-2)
    x = torch.randn(32, n, dtype=torch.complex64)
    target = torch.fft.fft(x) * torch.linspace(0.5, 1.5, n)  # a filtered DFT: not reachable at init
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = (t(x) - target).abs().pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_errors():
    with pytest.raises(ValueError, match="kind"):
        LearnableDFT(16, "wavelet")
    with pytest.raises(ValueError, match="no Monarch factorisation"):
        LearnableDFT(13, "monarch")
    t = LearnableDFT(16, "monarch")
    with pytest.raises(ValueError, match="expected size 16"):
        t(torch.randn(3, 15, dtype=torch.complex64))
    with pytest.raises(TypeError, match="complex128"):
        t(torch.randn(3, 16, dtype=torch.complex128))
    assert LearnableDFT(13, "dense")(torch.ones(13)).shape == (13,)  # dense works for prime sizes
