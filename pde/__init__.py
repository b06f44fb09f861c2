"""Fourier neural operators whose FFTs can be swapped for learnable Monarch / dense transforms.

Sub-packages: `pde.data` (generators for Navier–Stokes, Burgers, Darcy and readers for the published
formats) and `pde.experiments` (models, training, evaluation, comparison reports). The public names
below are imported lazily so that `import pde` stays cheap.
"""
import importlib

_PUBLIC = {
    # name: module that defines it
    "navier_stokes_2d": "pde.data.navier_stokes",
    "load_dataset": "pde.data.readers",
    "build_fno": "pde.experiments.models",
}


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'pde' has no attribute {name!r}")


__all__ = sorted(_PUBLIC)
