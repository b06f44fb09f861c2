"""The registry of reconstruction models: name → `ModelSpec` (family, transform kind, trainable,
fixed options, description). No torch at import time, so run.py's parsers stay fast; the names of
the transform-dependent models are made for every kind of `monarch_core.TRANSFORM_KINDS` when the
registry is first asked for (`registry()`).

    zf                     zero-filled SENSE (Aᴴy)                      no training
    cg-sense, l1-wavelet   sigpy SenseRecon / cycle-spun ℓ1-wavelet FISTA  no training
    bart-l1, bart-l2       `bart pics -l1 / -l2` through BART itself   no training (needs `bart`)
    unet                   residual U-Net on zf, output layer zero-initialised (starts at zf)
    unet-plain             fastMRI's U-Net (32 channels, 4 pools; train with L1, Adam 1e-3)
    msense, dsense, {kind}sense   zf with a learned inverse transform per axis (msense = Monarch,
                           the paper's mSENSE; dsense = dense; e.g. diagsense)
    unrolled-{kind}        unrolled proximal-gradient network, transform `kind` inside A
    modl-{kind}            the same with conjugate-gradient data consistency (MoDL)
    unrolled-fft-oracle, modl-fft-oracle   the FFT models with the known delay and B0 in A (mismatch data)
"""
from __future__ import annotations

from dataclasses import dataclass, field

LOSSES = ("l1", "ssim", "l1+ssim")
#: the inverse-transform models' names that predate the "{kind}sense" rule
SENSE_NAMES = {"monarch": "msense", "dense": "dsense"}
#: models of the default comparison and speed benchmark
DEFAULT_MODELS = ("zf", "cg-sense", "l1-wavelet", "unet", "msense", "dsense", "unrolled-fft", "unrolled-dense",
                  "unrolled-monarch")
NAMES_HELP = ("zf, cg-sense, l1-wavelet, bart-l1, bart-l2, unet, unet-plain, msense, dsense, unrolled-KIND, modl-KIND, KINDsense "
              "(KIND: fft, dense, monarch, diag, …)")


@dataclass(frozen=True)
class ModelSpec:
    family: str                 # zero-filled | classical | unet | unrolled (the builder in models.BUILDERS)
    transform: str              # transform kind of its Fourier operator ("fft" when fixed)
    trainable: bool
    description: str
    options: dict = field(default_factory=dict)  # fixed builder options of this name


def transform_kinds() -> tuple:
    """monarch_core.TRANSFORM_KINDS (the one list of kinds; imports torch)."""
    from monarch_core import TRANSFORM_KINDS

    return tuple(TRANSFORM_KINDS)


_REGISTRY: dict[str, ModelSpec] = {}


def registry() -> dict[str, ModelSpec]:
    """name → ModelSpec of every model (built once)."""
    if not _REGISTRY:
        specs = {
            "zf": ModelSpec("zero-filled", "fft", False, "zero-filled SENSE (Aᴴy)"),
            "cg-sense": ModelSpec("classical", "fft", False, "sigpy SenseRecon (ℓ2, CG)", {"method": "cg-sense"}),
            "l1-wavelet": ModelSpec("classical", "fft", False, "ℓ1-wavelet FISTA with random shifts (sigpy linops)",
                                    {"method": "l1-wavelet"}),
            "bart-l1": ModelSpec("classical", "fft", False, "BART pics -l1 (run through the bart executable)",
                                 {"method": "bart-l1"}),
            "bart-l2": ModelSpec("classical", "fft", False, "BART pics -l2 (run through the bart executable)",
                                 {"method": "bart-l2"}),
            "unet": ModelSpec("unet", "fft", True, "residual U-Net on zf, starts at zf", {"unet_residual": True}),
            "unet-plain": ModelSpec("unet", "fft", True, "fastMRI U-Net: 32 channels, 4 pools, not residual",
                                    {"unet_residual": False, "unet_chans": 32, "unet_pools": 4}),
        }
        kinds = transform_kinds()
        for kind in kinds:
            if kind != "fft":
                specs[SENSE_NAMES.get(kind, f"{kind}sense")] = ModelSpec(
                    "zero-filled", kind, True, f"zf with a learned {kind} inverse transform per axis")
        for family, dc, text in (("unrolled", "gradient", "unrolled proximal gradient"),
                                 ("modl", "cg", "unrolled with CG data consistency (MoDL)")):
            for kind in kinds:
                specs[f"{family}-{kind}"] = ModelSpec("unrolled", kind, True, f"{text}, {kind} transform in A",
                                                      {"data_consistency": dc})
        for family, dc in (("unrolled", "gradient"), ("modl", "cg")):  # the mismatch track's oracle-physics control
            specs[f"{family}-fft-oracle"] = ModelSpec("unrolled", "fft", True, f"{family}-fft with the known gradient "
                                                      "delay and B0 in A (mri.recon.mismatch_sense)",
                                                      {"data_consistency": dc, "oracle_physics": True})
        _REGISTRY.update(specs)
    return _REGISTRY


def known_models() -> tuple:
    return tuple(registry())


def is_trainable(name: str) -> bool:
    return registry()[name].trainable


def untrained_models() -> tuple:
    return tuple(n for n, s in registry().items() if not s.trainable)


def transform_of(name: str) -> str:
    """The Fourier transform kind a model uses ("fft", "dense", "monarch", "diag", …)."""
    return spec_of(name).transform


def spec_of(name: str) -> ModelSpec:
    from common.errors import ConfigError

    if name not in registry():
        raise ConfigError(f"unknown model {name!r}; choose from {known_models()}")
    return registry()[name]


def __getattr__(name):
    # MODELS / UNTRAINED as tuples, for code that used the old constants
    if name == "MODELS":
        return known_models()
    if name == "UNTRAINED":
        return untrained_models()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
