"""Fourier neural operators whose FFTs can be swapped for learnable transforms (monarch_core.TRANSFORM_KINDS).

Sub-packages: `pde.data` (generators for Navier–Stokes, Burgers, Darcy and readers for the published
formats) and `pde.experiments` (models, training, evaluation, comparison reports). The public names
below are imported lazily so that `import pde` stays cheap.
"""
from common.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    # name: module that defines it
    "navier_stokes_2d": "pde.data.navier_stokes",
    "load_dataset": "pde.data.readers",
    "build_fno": "pde.experiments.models",
})
