"""LearnableDFT.resized: band-limited resampling of the kept rows to another length."""
import math

import pytest
import torch

from monarch_core import TRANSFORM_KINDS, LearnableDFT, dft_matrix

C128 = torch.complex128


def _frequencies(n, n_new, seed):
    """Random distinct signed frequencies representable at both lengths (no Nyquist)."""
    limit = (min(n, n_new) - 1) // 2
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randperm(2 * limit + 1, generator=gen)[: max(2, limit)]
    return [int(p) - limit for p in pool]


@pytest.mark.parametrize("kind", TRANSFORM_KINDS)
@pytest.mark.parametrize("n,n_new", [(16, 32), (32, 12), (15, 45), (21, 10), (36, 25)])
def test_resized_at_initialisation_is_the_dft_at_the_new_length(kind, n, n_new):
    for centered in (False, True):
        for inverse in (False, True):
            freqs = _frequencies(n, n_new, seed=n + n_new + 2 * centered + inverse)
            t = LearnableDFT(n, kind, inverse=inverse, norm="ortho", centered=centered, rows=freqs, dtype=C128)
            r = t.resized(n_new)
            h = n_new // 2 if centered else 0
            expected = dft_matrix(n_new, inverse, "ortho", centered, C128)[[(f + h) % n_new for f in freqs]]
            assert r.n == n_new and r.frequencies() == freqs and r.scale == pytest.approx(1 / math.sqrt(n_new))
            assert (r.matrix() - expected).abs().max() < 1e-12, (centered, inverse)
            assert r.projection_residual < 1e-12
            for p in r.parameters():  # the parametrisation rule survives the re-projection
                assert torch.allclose(torch.view_as_complex(p).abs(), torch.ones((), dtype=torch.float64))


def _band_limited_rows(m, n, seed):
    """Random (m, n) rows whose spectra vanish at |k| ≥ n/4 (so they survive n → 2n → n exactly)."""
    gen = torch.Generator().manual_seed(seed)
    spectrum = torch.randn(m, n, dtype=C128, generator=gen)
    k = torch.fft.fftfreq(n) * n
    spectrum[:, k.abs() >= n / 4] = 0
    return torch.fft.ifft(spectrum)


@pytest.mark.parametrize("kind", ["dense", "diag"])
@pytest.mark.parametrize("n", [16, 15])
def test_round_trip_of_a_learned_transform(kind, n):
    t = LearnableDFT(n, kind, rows=[0, 1, -2, 3], centered=True, norm="forward", dtype=C128)
    with torch.no_grad():
        if kind == "dense":
            t.weight.copy_(torch.view_as_real(_band_limited_rows(4, n, seed=n)))
        else:
            t.gain.copy_(torch.randn(4, 2, dtype=torch.float64))
    back = t.resized(2 * n).resized(n)
    assert torch.allclose(back.matrix(), t.matrix(), atol=1e-12)
    assert back.row_list == t.row_list and back.scale == t.scale


def test_monarch_residual_is_the_frobenius_projection_error():
    """n=15 → 36 = 6·6 keeping the frequencies of second-factor rows {0, 5}: every compact output is a
    kept row, so the optimum is per-block rank one. Reference: trigonometric interpolation by solving
    for the coefficients and singular values of each block, sharing no code with resized()."""
    n, n_new, b = 15, 36, 6
    freqs = list(range(0, 6)) + list(range(-6, 0))
    t = LearnableDFT(n, "monarch", rows=freqs, dtype=C128)
    with torch.no_grad():
        for p in t.parameters():
            p.add_(0.3 * torch.randn(p.shape, dtype=p.dtype))
    r = t.resized(n_new)

    k = torch.arange(-(n // 2), n // 2 + 1, dtype=torch.float64)  # odd n: all frequencies, no Nyquist
    E_old = torch.exp(2j * math.pi * torch.arange(n, dtype=torch.float64)[:, None] * k / n)
    E_new = torch.exp(2j * math.pi * torch.arange(n_new, dtype=torch.float64)[:, None] * k / n_new)
    with torch.no_grad():
        unscaled, got = t.matrix() / t.scale, r.matrix() / r.scale
    A = torch.linalg.solve(E_old, unscaled.T).T @ E_new.T  # (m, n_new) interpolated rows
    assert r.projection_residual == pytest.approx(float((got - A).norm() / A.norm()), rel=1e-9)

    # Output o = t·6 + c, input x = 6·i + j: block (c, j) of rows t ∈ {0, 5}, columns i is rank one.
    blocks = A.reshape(len(freqs), 6, 6)  # (row, i, j)
    order = [(f % n_new) for f in freqs]
    error2 = 0.0
    for c in range(b):
        for j in range(b):
            rows = [order.index(tt * b + c) for tt in (0, 5)]
            s = torch.linalg.svdvals(blocks[rows][:, :, j])
            error2 += float((s[1:] ** 2).sum())
    assert r.projection_residual == pytest.approx(math.sqrt(error2) / float(A.norm()), rel=1e-9)
    assert 0.01 < r.projection_residual < 1


def test_scale_and_refusals():
    custom = LearnableDFT(16, "dense", rows=[0, 1], scale=0.5)  # norm "backward": forward scale 1
    assert custom.resized(32).scale == 0.5
    forward_norm = LearnableDFT(16, "dense", rows=[0, 1], norm="forward", scale=0.5 / 16)
    assert forward_norm.resized(32).scale == pytest.approx(0.5 / 32)  # keeps its ratio to the norm's scale
    with pytest.raises(ValueError, match="no Monarch factorisation"):
        LearnableDFT(16, "monarch", rows=[0, 1]).resized(13)
    assert LearnableDFT(16, "dense", rows=[0, 1]).resized(13).n == 13
    with pytest.raises(ValueError, match="not representable"):
        LearnableDFT(16, "monarch", rows=[0, 5]).resized(10)
    with pytest.raises(ValueError, match="Nyquist"):
        LearnableDFT(16, "dense").resized(32)
