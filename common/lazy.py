"""Lazy public names for a package: `import pde` stays cheap, `pde.build_fno` imports its module on use."""
from __future__ import annotations

import importlib


def lazy_exports(package: str, public: dict[str, str]):
    """(__getattr__, __all__) for a package whose public names live in submodules.

    public: {name: dotted module that defines it}. Use in the package's __init__:
        __getattr__, __all__ = lazy_exports(__name__, {"build_fno": "pde.experiments.models"})
    """
    def __getattr__(name):
        if name in public:
            return getattr(importlib.import_module(public[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(public)
