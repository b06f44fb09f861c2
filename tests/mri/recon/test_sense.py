import numpy as np
import pytest
import sigpy.mri
import torch

from mri import SenseOp
from mri.recon.fourier import Fourier2d
from tests.mri.recon.conftest import random_complex


def _perturb(module, generator):
    # learned operators are not the FFT any more: the adjoint identity must hold for any matrices
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator))


@pytest.mark.parametrize("kind", ["fft", "dense", "monarch"])
@pytest.mark.parametrize("shared_maps", [True, False])
def test_adjoint_identity(kind, shared_maps):
    g = torch.Generator().manual_seed(1)
    B, C, H, W = 2, 3, 12, 8
    maps = random_complex(C, H, W, generator=g) if shared_maps else random_complex(B, C, H, W, generator=g)
    mask = (torch.rand(B, H, W, generator=g) > 0.5).float()
    transform = Fourier2d((H, W), kind)
    _perturb(transform, g)
    op = SenseOp(maps, mask, transform)
    x, y = random_complex(B, H, W, generator=g), random_complex(B, C, H, W, generator=g)
    lhs = torch.vdot(op(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), op.adjoint(y).flatten())
    assert abs(lhs - rhs) < 1e-4 * abs(lhs)


def test_fft_equals_sigpy_sense():
    g = torch.Generator().manual_seed(2)
    C, H, W = 4, 16, 10
    maps = random_complex(C, H, W, generator=g)
    mask = (torch.rand(H, W, generator=g) > 0.4).float()
    x, y = random_complex(H, W, generator=g), random_complex(C, H, W, generator=g)
    ref = sigpy.mri.linop.Sense(maps.numpy(), weights=mask.numpy())
    op = SenseOp(maps, mask, "fft")
    np.testing.assert_allclose(op(x)[0].numpy(), ref * x.numpy(), atol=1e-5)
    np.testing.assert_allclose(op.adjoint(y)[0].numpy(), ref.H * y.numpy(), atol=1e-5)


@pytest.mark.parametrize("kind", ["dense", "monarch"])
def test_learnable_kinds_start_at_fft(kind):
    g = torch.Generator().manual_seed(3)
    maps, x = random_complex(2, 12, 16, generator=g), random_complex(1, 12, 16, generator=g)
    ref, op = SenseOp(maps, None, "fft"), SenseOp(maps, None, Fourier2d((12, 16), kind))
    torch.testing.assert_close(op(x), ref(x), atol=1e-5, rtol=1e-5)
    y = ref(x)
    torch.testing.assert_close(op.adjoint(y), ref.adjoint(y), atol=1e-5, rtol=1e-5)


def test_bad_shapes_are_explained():
    maps = torch.zeros(2, 8, 8, dtype=torch.complex64)
    with pytest.raises(ValueError, match="mask"):
        SenseOp(maps, torch.ones(4, 4))
    with pytest.raises(ValueError, match="image"):
        SenseOp(maps)(torch.zeros(1, 8, 6, dtype=torch.complex64))
    with pytest.raises(TypeError, match="complex"):
        SenseOp(maps.real)


@pytest.mark.parametrize("kind", ["dense", "monarch"])
def test_learned_kind_by_name_is_refused(kind):
    """A learned transform named by a string would be a fresh, untrained one, not the model's."""
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="module"):
        SenseOp(random_complex(2, 8, 8), None, kind)


def test_with_data_shares_the_transform_module():
    g = torch.Generator().manual_seed(4)
    transform = Fourier2d((8, 6), "monarch")
    _perturb(transform, g)
    op = SenseOp(transform=transform)
    maps, x = random_complex(2, 2, 8, 6, generator=g), random_complex(2, 8, 6, generator=g)
    bound = op.with_data(maps)
    assert bound.transform is transform
    torch.testing.assert_close(bound(x), SenseOp(maps, None, transform)(x))
