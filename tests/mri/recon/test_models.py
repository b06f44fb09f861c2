import numpy as np
import pytest
import torch

from mri import SenseOp
from mri.data.transforms import sense_adjoint
from mri.recon.models import build_model, transform_of
from mri.recon.unrolled import conjugate_gradient


def _inputs(batch):
    y = batch["kspace"] * batch["mask"].unsqueeze(1)
    return y, batch["maps"], batch["mask"]


def test_zf_is_sense_adjoint_and_numpy_reference(batch):
    y, maps, mask = _inputs(batch)
    zf = build_model("zf", y.shape[-2:])(y, maps, mask)
    torch.testing.assert_close(zf, SenseOp(maps, mask).adjoint(y))
    np.testing.assert_allclose(zf.numpy(), sense_adjoint(y.numpy(), maps.numpy(), mask.numpy()[:, None]), atol=1e-5)


@pytest.mark.parametrize("name", ["msense", "dsense"])
def test_learned_sense_equals_zf_at_init_and_then_differs(batch, name):
    y, maps, mask = _inputs(batch)
    model = build_model(name, y.shape[-2:])
    assert transform_of(name) in ("monarch", "dense") and sum(p.numel() for p in model.parameters()) > 0
    zf = build_model("zf", y.shape[-2:])(y, maps, mask)
    torch.testing.assert_close(model(y, maps, mask), zf, atol=1e-5, rtol=1e-5)
    loss = (model(y, maps, mask) - batch["target"]).abs().mean()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("family", ["unrolled", "modl"])
@pytest.mark.parametrize("kind", ["dense", "monarch"])
def test_unrolled_equals_fft_counterpart_at_init(batch, family, kind):
    y, maps, mask = _inputs(batch)
    outs = []
    for k in ("fft", kind):
        torch.manual_seed(0)
        model = build_model(f"{family}-{k}", y.shape[-2:], scale="tiny")
        outs.append(model(y, maps, mask))
    torch.testing.assert_close(outs[1], outs[0], atol=1e-4, rtol=1e-4)
    assert outs[0].shape == y.shape[:1] + y.shape[-2:]


def test_conjugate_gradient_solves_normal_equations(batch):
    y, maps, mask = _inputs(batch)
    op = SenseOp(maps, mask)
    normal = lambda v: op.normal(v) + 0.5 * v  # noqa: E731
    rhs = op.adjoint(y)
    x = conjugate_gradient(normal, rhs, 40)
    torch.testing.assert_close(normal(x), rhs, atol=1e-4, rtol=1e-4)


def test_unet_keeps_shape_with_padding(batch):
    y, maps, mask = _inputs(batch)  # 16×12 is not a multiple of 2^pools: padded and cropped back
    out = build_model("unet", y.shape[-2:], scale="tiny", unet_pools=3)(y, maps, mask)
    assert out.shape == y.shape[:1] + y.shape[-2:] and out.dtype == torch.complex64


def test_residual_unet_starts_at_zero_filled_and_then_learns(batch):
    """An untrained residual U-Net is exactly zf (a random output layer once put it 11 dB below zf)."""
    y, maps, mask = _inputs(batch)
    model = build_model("unet", y.shape[-2:], scale="tiny", unet_pools=3)
    zf = build_model("zf", y.shape[-2:])(y, maps, mask)
    torch.testing.assert_close(model(y, maps, mask), zf)
    (model(y, maps, mask) - batch["target"]).abs().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", ["cg-sense", "l1-wavelet"])
def test_classical_beats_zero_filled(batch, name):
    y, maps, mask = _inputs(batch)
    target = batch["target"]
    err = lambda x: float((x - target).abs().pow(2).sum())  # noqa: E731
    zf = build_model("zf", y.shape[-2:])(y, maps, mask)
    out = build_model(name, y.shape[-2:], max_iter=20)(y, maps, mask)
    assert out.shape == zf.shape and err(out) < err(zf)


def test_unknown_model_is_explained():
    with pytest.raises(ValueError, match="choose from"):
        build_model("varnet", (8, 8))


def test_registry_names_every_transform_kind():
    from monarch_core import TRANSFORM_KINDS
    from mri.recon.model_names import registry

    specs = registry()
    for kind in TRANSFORM_KINDS:
        assert specs[f"unrolled-{kind}"].transform == kind and specs[f"modl-{kind}"].trainable
    assert specs["msense"].transform == "monarch" and specs["dsense"].transform == "dense"
    assert not specs["zf"].trainable and transform_of("unrolled-monarch") == "monarch"


def test_plain_unet_is_fastmri_sized_and_not_residual():
    from tests.mri.recon.conftest import phantom_batch

    y, maps, mask = _inputs(phantom_batch((32, 32), coils=2, batch=2))
    model = build_model("unet-plain", y.shape[-2:], scale="tiny")
    assert not model.residual and model.multiple == 16  # 4 pools whatever the scale
    assert model.unet.down[0][0].out_channels == 32 and model.unet.out.weight.abs().sum() > 0
    assert model(y, maps, mask).shape == y.shape[:1] + y.shape[-2:]
