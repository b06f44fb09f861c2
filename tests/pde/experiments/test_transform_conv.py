"""Guard: TransformSpectralConv mirrors private conventions of neuraloperator 2.0.x's SpectralConv.

SpectralConv's forward (rfftn, fftshift on all axes but the last, the centred slice of kept modes, the
second fftshift on the way back, irfftn) is reproduced with explicit kept-row transforms; nothing in
neuraloperator's public API promises those conventions, so a new neuraloperator version may change them.
These tests compare the two layers directly and say which convention broke.
"""
import importlib.metadata

import pytest
import torch
from neuralop.layers.spectral_convolution import SpectralConv

from pde.experiments.transform_conv import TransformSpectralConv

MESSAGE = ("SpectralConv's fftshift/slicing convention changed: TransformSpectralConv mirrors neuraloperator "
           "2.0.x (rfftn, fftshift of every axis but the last, centred slice of n_modes, fftshift back, irfftn; "
           "kept_indices and _inverse_frequencies in pde/experiments/transform_conv.py); installed neuraloperator "
           + importlib.metadata.version("neuraloperator"))


def test_neuraloperator_version_is_the_mirrored_one():
    assert importlib.metadata.version("neuraloperator").startswith("2.0."), MESSAGE


@pytest.mark.parametrize("kind", ["fft", "dense", "monarch"])
@pytest.mark.parametrize("n_modes,grid", [((8,), (16,)), ((6,), (15,)), ((6, 6), (12, 16)), ((7, 5), (15, 9)),
                                          ((4, 4, 4), (8, 9, 6))])
def test_equals_spectral_conv(kind, n_modes, grid):
    torch.manual_seed(0)
    reference = SpectralConv(3, 2, n_modes)
    layer = TransformSpectralConv(3, 2, n_modes, transform=kind, grid_size=grid)
    layer.load_state_dict(reference.state_dict(), strict=False)
    x = torch.randn(2, 3, *grid)
    with torch.no_grad():
        expected, got = reference(x), layer(x)
    assert (got - expected).norm() / expected.norm() < 1e-5, MESSAGE


def test_monarch_on_a_prime_axis_falls_back_to_dense_rows_with_one_note(monkeypatch):
    """13 has no Monarch factorisation: that axis gets exact dense rows (equal to SpectralConv), the
    factorable axis stays Monarch, and the note is issued once per size, not per layer."""
    from pde.experiments import transform_conv

    monkeypatch.setattr(transform_conv, "_NOTED", set())
    torch.manual_seed(0)
    reference = SpectralConv(3, 2, (6, 6))
    x = torch.randn(2, 3, 13, 12)
    with pytest.warns(RuntimeWarning, match="13 points has no Monarch factorisation"):
        layer = TransformSpectralConv(3, 2, (6, 6), transform="monarch", grid_size=(13, 12))
    assert [t.kind for t in layer.forward_transforms] == ["dense", "monarch"]
    assert [t.kind for t in layer.inverse_transforms] == ["dense", "monarch"]
    layer.load_state_dict(reference.state_dict(), strict=False)
    with torch.no_grad():
        expected, got = reference(x), layer(x)
    assert (got - expected).norm() / expected.norm() < 1e-5
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TransformSpectralConv(3, 2, (6, 6), transform="monarch", grid_size=(13, 12))  # no second note
    with pytest.raises(ValueError, match="do not factor"):  # explicit sizes are not overridden
        TransformSpectralConv(3, 2, (6, 6), transform="monarch", grid_size=(13, 12), monarch_sizes=(3, 4))
