"""The learnable-transform FNOs against neuraloperator's own FNO and against torch.fft."""
import pytest
import torch

from monarch_core import TRANSFORM_KINDS, LearnableDFT, count_parameters
from pde.experiments.models import TRANSFORMS, build_fno, build_uno, materialise, parameter_counts, trained_grids

LEARNABLE = [k for k in TRANSFORM_KINDS if k != "fft"]
CASES = [  # (n_modes, grid): 1-D, 2-D and 3-D, even and odd sizes (odd composite for Monarch)
    ((8,), (32,)), ((6,), (21,)), ((8, 6), (16, 16)), ((6, 8), (15, 9)), ((24, 22), (64, 64)),
    ((4, 4, 4), (8, 9, 6)),
]


def _fno_pair(kind, n_modes, grid, seed=0):
    torch.manual_seed(seed)
    reference = build_fno("fft", n_modes, in_channels=3, out_channels=2, hidden_channels=6, n_layers=2)
    learnable = build_fno(kind, n_modes, in_channels=3, out_channels=2, hidden_channels=6, n_layers=2, grid_size=grid)
    result = learnable.load_state_dict(reference.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert all("_transforms." in key for key in result.missing_keys)
    return reference, learnable


@pytest.mark.parametrize("kind", LEARNABLE)
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


def test_transform_kinds_are_the_registry():
    assert TRANSFORMS is TRANSFORM_KINDS


@pytest.mark.parametrize("kind", LEARNABLE)
def test_parameter_counts_find_every_learnable_dft(kind):
    _, learnable = _fno_pair(kind, (8, 6), (16, 16))
    transforms = [m for m in learnable.modules() if isinstance(m, LearnableDFT)]
    assert len(transforms) == 2 * 2 * 2  # layers × (forward, inverse) × axes
    counts = parameter_counts(learnable)
    assert counts["transform"] == sum(count_parameters(m) for m in transforms) > 0


def test_transforms_learn():
    _, learnable = _fno_pair("monarch", (8, 6), (16, 16))
    x = torch.randn(2, 3, 16, 16)
    learnable(x).square().mean().backward()
    grads = [p.grad for n, p in learnable.named_parameters() if "_transforms." in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_domain_padding_and_any_grid_for_every_kind(kind):
    """fft-padded models (the non-periodic Darcy set-up) of every kind: built lazily for the padded grid,
    equal to neuraloperator's padded FNO there and on another (odd, coarser) grid."""
    torch.manual_seed(0)
    kwargs = dict(in_channels=1, out_channels=1, hidden_channels=4, n_layers=2, domain_padding=0.125)
    reference = build_fno("fft", (8, 6), **kwargs)
    learnable = build_fno(kind, (8, 6), **kwargs)
    materialise(learnable, torch.zeros(1, 1, 16, 16))
    learnable.load_state_dict(reference.state_dict(), strict=False)
    if kind != "fft":
        assert trained_grids(learnable) == [(20, 20), (20, 20)]  # the padded grid: 16 + 2 · 0.125 · 16
    for grid in [(16, 16), (21, 15)]:
        x = torch.randn(2, 1, *grid)
        with torch.no_grad():
            expected, got = reference(x), learnable(x)
        assert got.shape == expected.shape
        assert (got - expected).norm() / expected.norm() < 1e-5


@pytest.mark.parametrize("kind", ["dense", "monarch"])
def test_lazy_model_trains_on_two_grids(kind):
    """Gradients from a batch on a non-native grid reach the native transforms' parameters."""
    model = build_fno(kind, (8, 6), 1, 1, 4, n_layers=1)
    materialise(model, torch.zeros(1, 1, 16, 16))
    names = [n for n, _ in model.named_parameters() if "_transforms." in n]
    assert names
    model(torch.randn(2, 1, 24, 20)).square().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if "_transforms." in n}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())


def test_monarch_channel_mixing():
    model = build_fno("monarch", (8, 6), 3, 2, 8, n_layers=2, grid_size=16, monarch_channels=True)
    counts = parameter_counts(model)
    assert counts["monarch_channels"] > 0
    assert not any(isinstance(m, torch.nn.Conv1d) for m in model.modules())
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 2, 16, 16)


@pytest.mark.parametrize("kind", ["dense", "monarch"])
def test_uno_equals_neuralop_uno_at_initialisation(kind):
    """build_uno's U (full → half → full resolution, horizontal skips, domain padding) with learnable
    transforms equals neuraloperator's UNO with the same weights, on the grid it was built for and on
    another (odd) one."""
    from neuralop.layers.spectral_convolution import SpectralConv

    from pde.experiments.models import build_uno
    from pde.experiments.transform_conv import TransformSpectralConv

    torch.manual_seed(0)
    kwargs = dict(in_channels=2, out_channels=1, hidden_channels=6, n_layers=4, domain_padding=0.125)
    reference = build_uno("fft", (8, 6), **kwargs)
    learnable = build_uno(kind, (8, 6), grid_size=(24, 20), **kwargs)
    convs = [m for m in learnable.modules() if isinstance(m, SpectralConv)]
    assert len(convs) == 4 and all(isinstance(m, TransformSpectralConv) for m in convs)
    # the U on the padded grid (round(0.125 · 24) = 3 and round(0.125 · 20) = 2 points per side: 30×24):
    # layers 0, 1 see it, layer 1 halves it, layers 2, 3 see 15×12 and the last one restores 30×24
    padded = tuple(reference.domain_padding.pad(torch.zeros(1, 1, 24, 20)).shape[2:])
    assert padded == (30, 24) and trained_grids(learnable) == [(30, 24), (30, 24), (15, 12), (15, 12)]
    result = learnable.load_state_dict(reference.state_dict(), strict=False)
    assert not result.unexpected_keys and all("_transforms." in key for key in result.missing_keys)
    for grid in [(24, 20), (21, 17)]:
        x = torch.randn(2, 2, *grid)
        with torch.no_grad():
            expected, got = reference(x), learnable(x)
        assert got.shape == expected.shape == (2, 1, *grid)
        assert (got - expected).norm() / expected.norm() < 1e-5


@pytest.mark.parametrize("kind", TRANSFORMS)
@pytest.mark.parametrize("builder", [build_fno, build_uno])
def test_a_model_that_ran_on_the_cpu_moves_to_another_device(kind, builder):
    if builder is build_uno and kind != "fft":
        pytest.skip("UNO's coarse layers derive transforms with data-dependent indexing the meta device lacks")
    """A model that ran on the CPU (build_fno's dry forward, an evaluation) leaves nothing behind there:
    moved to another device (the meta device stands in for CUDA on a CPU machine) it runs forward and
    backward. neuraloperator's grid embedding caches its grid as a plain tensor; kept, it broke every
    learnable kind on the H200."""
    model = builder(kind, (8, 6), in_channels=3, out_channels=1, hidden_channels=4, n_layers=3, grid_size=(16, 12))
    model(torch.randn(2, 3, 16, 12))
    model.to("meta")
    model(torch.randn(2, 3, 16, 12, device="meta")).sum().backward()
    assert all(p.device.type == "meta" for p in model.parameters())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", TRANSFORMS)
def test_gpu_model_equals_its_cpu_self_and_trains(kind):
    """Built on the CPU (as the study engine builds it), moved to CUDA: the same outputs as on the CPU,
    and one AMP training step gives finite gradients for every parameter."""
    from common.training import autocast

    torch.manual_seed(0)
    model = build_fno(kind, (8, 6), in_channels=3, out_channels=1, hidden_channels=8, n_layers=2, grid_size=(32, 24))
    x, x_other = torch.randn(4, 3, 32, 24), torch.randn(4, 3, 40, 30)  # the native grid and a derived one
    with torch.no_grad():
        expected, expected_other = model(x), model(x_other)  # the derived transforms are cached on the CPU
        model.to("cuda")
        got, got_other = model(x.cuda()).cpu(), model(x_other.cuda()).cpu()
    assert (got - expected).norm() / expected.norm() < 1e-3
    assert (got_other - expected_other).norm() / expected_other.norm() < 1e-3
    device = torch.device("cuda")
    with autocast(device, True):
        loss = model(x.cuda()).float().square().mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_an_autoregressive_rollout_builds_each_transform_once(monkeypatch):
    """The NS rollout (one FNO call per predicted frame) builds each Monarch matrix once per forward pass,
    and predicts what it predicts without the reuse."""
    import contextlib

    import pde.experiments.problems as problems
    from monarch_core.transform_kinds import transform_kind

    torch.manual_seed(0)
    model = build_fno("monarch", (8, 6), in_channels=3, out_channels=1, hidden_channels=4, n_layers=2, grid_size=(16, 16))
    predictor = problems.Predictor(model, autoregressive=True, t_out=4)
    x = torch.randn(2, 3, 16, 16)
    impl = type(transform_kind("monarch"))
    builds, real_matrix = [], impl.matrix
    monkeypatch.setattr(impl, "matrix", lambda self, t: builds.append(1) or real_matrix(self, t))
    reused = predictor(x)
    transforms = sum(1 for m in model.modules() if isinstance(m, LearnableDFT) and m.kind == "monarch")
    assert len(builds) == transforms
    monkeypatch.setattr(problems, "reused_matrices", contextlib.nullcontext)
    builds.clear()
    plain = predictor(x)
    assert len(builds) == 4 * transforms
    assert (reused - plain).norm() / plain.norm() < 1e-5
