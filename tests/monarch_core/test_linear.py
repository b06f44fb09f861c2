import pytest
import torch
from torch import nn

from monarch_core import MonarchLinear, monarch_multiply


@pytest.mark.parametrize("in_f,out_f,nblocks", [(16, 16, 4), (10, 30, 4), (30, 10, 4), (64, 48, 8), (7, 5, 3)])
def test_from_linear_reproduces_a_monarch_layer(in_f, out_f, nblocks):
    torch.manual_seed(0)
    original = MonarchLinear(in_f, out_f, nblocks).double()
    dense = nn.Linear(in_f, out_f).double()
    with torch.no_grad():
        dense.weight.copy_(original.dense_weight())
        dense.bias.copy_(original.bias)
    rebuilt = MonarchLinear.from_linear(dense, nblocks)
    x = torch.randn(9, in_f, dtype=torch.float64)
    assert torch.allclose(rebuilt(x), original(x), atol=1e-10)
    assert torch.allclose(dense(x), original(x), atol=1e-10)


def test_drop_in_for_linear_shapes_and_gradients():
    layer = MonarchLinear(20, 12, nblocks=4)
    x = torch.randn(2, 3, 20, requires_grad=True)
    y = layer(x)
    assert y.shape == (2, 3, 12)
    y.sum().backward()
    assert x.grad.shape == x.shape and layer.w1.grad is not None and layer.w2.grad is not None
    weight = layer.dense_weight()
    assert torch.allclose(y, x @ weight.T + layer.bias, atol=1e-5)
    assert sum(p.numel() for p in [layer.w1, layer.w2]) < 20 * 12
    assert MonarchLinear(8, 8, bias=False).bias is None


def test_from_linear_of_a_dense_layer_is_its_best_approximation():
    torch.manual_seed(1)
    dense = nn.Linear(32, 32).double()
    approx = MonarchLinear.from_linear(dense, nblocks=4)
    err = torch.linalg.norm(approx.dense_weight() - dense.weight)
    noisy = MonarchLinear.from_linear(dense, nblocks=4)
    with torch.no_grad():
        noisy.w1.add_(1e-2 * torch.randn_like(noisy.w1))
    assert err < torch.linalg.norm(noisy.dense_weight() - dense.weight)


def test_errors_name_expected_shapes():
    layer = MonarchLinear(20, 12)
    with pytest.raises(ValueError, match=r"\(\.\.\., 20\)"):
        layer(torch.randn(3, 21))
    with pytest.raises(TypeError, match="nn.Linear"):
        MonarchLinear.from_linear(nn.Conv1d(3, 3, 1))
    with pytest.raises(ValueError, match="positive"):
        MonarchLinear(0, 4)
    with pytest.raises(TypeError, match="float64"):
        monarch_multiply(torch.randn(2, 20, dtype=torch.float64), layer.w1, layer.w2)
