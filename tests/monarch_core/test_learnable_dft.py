import pytest
import torch

import monarch_core.transform_kinds as transform_kinds
from monarch_core import TRANSFORM_KINDS, LearnableDFT, dft_matrix, transform_cost
from tests.monarch_core.test_dft import fft_reference


@pytest.mark.parametrize("kind", ["fft", "dense", "monarch", "diag"])
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


@pytest.mark.parametrize("kind", ["fft", "dense", "monarch", "diag"])
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


@pytest.mark.parametrize("kind", ["dense", "monarch", "diag"])
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


# --- kept rows, every registered kind -----------------------------------------------------------------


TOL = {torch.complex64: 2e-5, torch.complex128: 1e-11}


def _force_path(monkeypatch, materialised: bool):
    """Make every Monarch transform take the materialised matmul path (True) or the factored one."""
    monkeypatch.setattr(transform_kinds, "MATERIALISE_MAX_ELEMENTS", 10**12 if materialised else 0)
    monkeypatch.setattr(transform_kinds, "MATERIALISE_FLOP_RATIO", float("inf"))


def _kept(n, centered, seed):
    """Random distinct frequencies (negative allowed, some beyond ±n) and their output rows."""
    gen = torch.Generator().manual_seed(seed)
    picks = torch.randperm(n, generator=gen)[: max(2, n // 3)]
    freqs = [int(p) - n // 2 + n * int(torch.randint(-1, 2, (1,), generator=gen)) for p in picks]
    h = n // 2 if centered else 0
    return freqs, [(f + h) % n for f in freqs]


@pytest.mark.parametrize("small_n_path", [True, False])
@pytest.mark.parametrize("kind", TRANSFORM_KINDS)
@pytest.mark.parametrize("n", [15, 32, 36, 64, 160])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_kept_rows_equal_torch_fft(monkeypatch, small_n_path, kind, n, dtype):
    _force_path(monkeypatch, small_n_path)
    real = torch.float32 if dtype == torch.complex64 else torch.float64
    for centered in (False, True):
        for inverse in (False, True):
            freqs, rows = _kept(n, centered, seed=n + 2 * centered + inverse)
            t = LearnableDFT(n, kind, inverse=inverse, norm="ortho", centered=centered, dtype=dtype, rows=freqs)
            for x in (torch.randn(2, n, 3, dtype=dtype), torch.randn(2, n, 3, dtype=real)):
                ref = fft_reference(x.to(torch.complex128).movedim(1, -1), inverse, "ortho", centered)[..., rows]
                got = t(x, dim=1)
                assert got.dtype == dtype and got.shape == (2, len(rows), 3)
                assert (got.movedim(1, -1) - ref).abs().max() < TOL[dtype], (centered, inverse)
            # adjoint = the matching columns of the conjugate transpose (= the inverse transform's columns)
            F = dft_matrix(n, inverse, "ortho", centered, torch.complex128)[rows]
            y = torch.randn(2, len(rows), 3, dtype=dtype)
            expected = torch.einsum("km,bkc->bmc", F.conj(), y.to(torch.complex128))
            assert (t.adjoint(y, dim=1) - expected).abs().max() < TOL[dtype]
            assert (t.matrix() - F).abs().max() < TOL[dtype]


def test_rows_are_frequencies_mod_n_and_distinct():
    t = LearnableDFT(12, "dense", rows=[-1, 13, 5], dtype=torch.complex128)
    assert t.row_list == [11, 1, 5] and t.frequencies() == [-1, 1, 5]
    centred = LearnableDFT(12, "monarch", centered=True, rows=[-1, 0, 2])
    assert centred.row_list == [5, 6, 8]
    with pytest.raises(ValueError, match="distinct"):
        LearnableDFT(12, "monarch", rows=[1, 13])
    with pytest.raises(ValueError, match="distinct"):
        LearnableDFT(12, "fft", rows=[])


@pytest.mark.parametrize("kind", TRANSFORM_KINDS)
def test_unscaled_unit_modulus_parameters_and_scale_override(kind):
    """The parametrisation rule: parameters hold the unscaled rows (modulus 1), the scale is applied apart."""
    t = LearnableDFT(36, kind, norm="forward", rows=[0, 1, -1, 7], dtype=torch.complex128)
    for p in t.parameters():
        assert torch.allclose(torch.view_as_complex(p).abs(), torch.ones((), dtype=torch.float64), atol=1e-12)
    assert t.scale == 1 / 36
    custom = LearnableDFT(36, kind, rows=[0, 1, -1, 7], scale=0.25, dtype=torch.complex128)
    x = torch.randn(4, 36, dtype=torch.complex128)
    assert torch.allclose(custom(x), 0.25 * torch.fft.fft(x)[:, [0, 1, 35, 7]], atol=1e-12)
    y = torch.randn(4, 4, dtype=torch.complex128)
    assert torch.allclose(custom.adjoint(y), y @ custom.matrix().conj(), atol=1e-12)


def test_monarch_stores_only_second_factor_rows_with_a_kept_frequency():
    t = LearnableDFT(64, "monarch", rows=range(-12, 12))
    w1, w2 = t.factors()
    assert tuple(w1.shape) == (8, 8, 8) and tuple(w2.shape) == (8, 4, 8)  # rows t ∈ {0, 1, 6, 7}
    assert tuple(LearnableDFT(64, "monarch", rows=range(12)).factors()[1].shape) == (8, 2, 8)
    assert t.parameter_count() == transform_cost("monarch", 64, rows=range(-12, 12))["params"]


@pytest.mark.parametrize("kind", ["dense", "monarch", "diag"])
@pytest.mark.parametrize("small_n_path", [True, False])
def test_gradcheck(monkeypatch, kind, small_n_path):
    _force_path(monkeypatch, small_n_path)
    t = LearnableDFT(6, kind, centered=True, norm="ortho", rows=[-1, 0, 2], dtype=torch.complex128)
    names = [name for name, _ in t.named_parameters()]
    params = [(p.detach() + 0.1 * torch.randn(p.shape, dtype=p.dtype)).requires_grad_() for p in t.parameters()]
    x = torch.randn(2, 6, dtype=torch.complex128, requires_grad=True)
    y = torch.randn(2, 3, dtype=torch.complex128, requires_grad=True)
    forward = lambda x, *ps: _with_params(t, dict(zip(names, ps)), lambda: t(x))  # noqa: E731
    adjoint = lambda y, *ps: _with_params(t, dict(zip(names, ps)), lambda: t.adjoint(y))  # noqa: E731
    assert torch.autograd.gradcheck(forward, [x, *params])
    assert torch.autograd.gradcheck(adjoint, [y, *params])


def _with_params(module, values, fn):
    """Call fn with module's parameters temporarily replaced by `values` (differentiable tensors)."""
    saved = dict(module.named_parameters())
    for name, v in values.items():
        del module._parameters[name]
        setattr(module, name, v)
    try:
        return fn()
    finally:
        for name, p in saved.items():
            delattr(module, name)
            module.register_parameter(name, p)


def test_small_n_path_equals_factored_path(monkeypatch):
    t = LearnableDFT(48, "monarch", rows=[-7, 0, 3, 20, 9], dtype=torch.complex128)
    with torch.no_grad():
        for p in t.parameters():
            p.add_(0.2 * torch.randn(p.shape, dtype=p.dtype))
    x, y = torch.randn(3, 48, 2, dtype=torch.complex128), torch.randn(3, 5, 2, dtype=torch.complex128)
    _force_path(monkeypatch, True)
    assert t.kind_impl.materialises(t)
    small = t(x, dim=1), t.adjoint(y, dim=1)
    _force_path(monkeypatch, False)
    assert not t.kind_impl.materialises(t)
    factored = t(x, dim=1), t.adjoint(y, dim=1)
    for a, b in zip(small, factored):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("small_n_path", [True, False])
@pytest.mark.parametrize("kind", TRANSFORM_KINDS)
@pytest.mark.parametrize("dim", [1, -1])
def test_real_data_paths_equal_the_complex_ones(monkeypatch, small_n_path, kind, dim):
    """forward_real(x) = T x and adjoint_real(y, w) = Re(Tᴴ (w·y)) against the dense matrix of a
    perturbed transform, values and gradients (x, y and every parameter), on either path."""
    _force_path(monkeypatch, small_n_path)
    gen = torch.Generator().manual_seed(len(kind) + 3 * small_n_path + (dim > 0))
    n, rows = 20, [0, 1, 2, 3, 17, 9]
    t = LearnableDFT(n, kind, norm="forward", rows=rows, dtype=torch.complex128)
    with torch.no_grad():
        for p in t.parameters():
            p.add_(0.2 * torch.randn(p.shape, dtype=p.dtype, generator=gen))
    x = torch.randn(3, n, 4, dtype=torch.float64, generator=gen).movedim(1, dim).requires_grad_()
    y = torch.randn(3, len(rows), 4, dtype=torch.complex128, generator=gen).movedim(1, dim).requires_grad_()
    w = torch.rand(len(rows), dtype=torch.float64, generator=gen) + 0.5
    T = t.matrix()
    ref_f = torch.einsum("mk,...k->...m", T, x.movedim(dim, -1).to(torch.complex128)).movedim(-1, dim)
    ref_a = torch.einsum("mk,m,...m->...k", T.conj(), w.to(torch.complex128), y.movedim(dim, -1)).real.movedim(-1, dim)
    got_f, got_a = t.forward_real(x, dim), t.adjoint_real(y, dim, row_weights=w)
    assert got_f.dtype == torch.complex128 and got_a.dtype == torch.float64
    assert got_a.is_contiguous() or dim != -1
    assert torch.allclose(got_f, ref_f, atol=1e-12) and torch.allclose(got_a, ref_a, atol=1e-12)
    probe_f = torch.randn(ref_f.shape, dtype=torch.complex128, generator=gen)
    probe_a = torch.randn(ref_a.shape, dtype=torch.float64, generator=gen)
    inputs = [x, y, *t.parameters()]
    loss = lambda f, a: (f * probe_f.conj()).real.sum() + (a * probe_a).sum()  # noqa: E731
    grads = torch.autograd.grad(loss(got_f, got_a), inputs, allow_unused=True)
    refs = torch.autograd.grad(loss(ref_f, ref_a), inputs, allow_unused=True)
    for g, r in zip(grads, refs):
        assert (g is None) == (r is None) and (g is None or torch.allclose(g, r, atol=1e-10))
