"""The registry of transform kinds: names, costs, and that a new kind plugs into LearnableDFT."""
import math

import pytest
import torch

import monarch_core
import monarch_core.transform_kinds as transform_kinds
from monarch_core import TRANSFORM_KINDS, LearnableDFT, transform_cost, transform_kind


def test_kinds_and_exports():
    assert TRANSFORM_KINDS == ("fft", "dense", "monarch", "diag")
    assert monarch_core.TRANSFORM_KINDS is transform_kinds.TRANSFORM_KINDS
    assert [transform_kind(k).learnable for k in TRANSFORM_KINDS] == [False, True, True, True]
    with pytest.raises(ValueError, match="must be one of"):
        transform_kind("wavelet")


@pytest.mark.parametrize("kind", TRANSFORM_KINDS)
@pytest.mark.parametrize("n,rows", [(16, None), (36, [0, 1, 2, -1, -2]), (64, range(-12, 12)), (15, [7, -7])])
def test_parameter_count_matches_module(kind, n, rows):
    t = LearnableDFT(n, kind, rows=rows)
    assert t.parameter_count() == transform_cost(kind, n, rows=rows)["params"]


def test_costs_by_hand():
    assert transform_cost("fft", 64) == {"params": 0, "flops": int(5 * 64 * math.log2(64))}
    assert transform_cost("dense", 64) == {"params": 2 * 64 * 64, "flops": 8 * 64 * 64}
    assert transform_cost("dense", 64, rows=10) == {"params": 2 * 10 * 64, "flops": 8 * 10 * 64}
    # full Monarch 64 = 8·8: two factors of 8 blocks 8×8, complex
    assert transform_cost("monarch", 64) == {"params": 2 * 2 * 512, "flops": 8 * 2 * 512}
    # rows 0..11: second-factor rows {0, 1} of 8 are kept → w2 (8, 2, 8)
    assert transform_cost("monarch", 64, rows=12)["params"] == 2 * (512 + 8 * 2 * 8)
    assert transform_cost("diag", 64, rows=[1, 2, 3])["params"] == 6
    with pytest.raises(ValueError, match="no Monarch factorisation"):
        transform_cost("monarch", 13)


def test_a_new_kind_is_one_class(monkeypatch):
    """Registering a kind makes LearnableDFT accept it, with no other change (here: a scaled fixed FFT)."""
    monkeypatch.setattr(transform_kinds, "_REGISTRY", dict(transform_kinds._REGISTRY))

    @transform_kinds.register
    class Doubled(transform_kinds.TransformKind):
        name = "doubled"
        learnable = False

        def apply(self, t, x):
            return 2 * transform_kinds.fixed_rows(t, x)

    x = torch.randn(3, 10, dtype=torch.complex64)
    assert torch.allclose(LearnableDFT(10, "doubled", rows=[1, 2])(x), 2 * torch.fft.fft(x)[:, [1, 2]], atol=1e-5)
    assert transform_cost("doubled", 16)["params"] == 0
