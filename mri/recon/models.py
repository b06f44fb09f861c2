"""Build the reconstruction models of the registry (`mri.recon.model_names`) by name.

    model = build_model("unrolled-monarch", (H, W), scale="small", steps=4)

Each name's `ModelSpec` says its family (which builder below), transform kind and fixed options;
`scale` picks the size preset (DEFAULTS) and keyword overrides replace single settings.
"""
from __future__ import annotations

from mri.recon.classical import ClassicalRecon
from mri.recon.model_names import (DEFAULT_MODELS, ModelSpec, known_models, registry, spec_of,  # noqa: F401
                                   transform_of, untrained_models)
from mri.recon.unet import UnetRecon
from mri.recon.unrolled import UnrolledNet
from mri.recon.zero_filled import ZeroFilledSense

# Defaults of the knee config (meddlr) and fastMRI's U-Net; `tiny` is the CPU / demo scale.
DEFAULTS = {
    "full": {"steps": 8, "resblocks": 2, "channels": 128, "unet_chans": 32, "unet_pools": 4},
    "small": {"steps": 5, "resblocks": 2, "channels": 32, "unet_chans": 16, "unet_pools": 3},
    "tiny": {"steps": 3, "resblocks": 1, "channels": 16, "unet_chans": 8, "unet_pools": 2},
}


def _zero_filled(shape, spec: ModelSpec, cfg: dict):
    return ZeroFilledSense(shape, spec.transform)


def _classical(shape, spec: ModelSpec, cfg: dict):
    extra = {k: cfg[k] for k in ("wavelet", "random_shifts", "seed") if k in cfg}  # l1-wavelet's options
    return ClassicalRecon(spec.options["method"], cfg.get("lamda"), cfg.get("max_iter", 30), **extra)


def _unet(shape, spec: ModelSpec, cfg: dict):
    return UnetRecon(shape, cfg["unet_chans"], cfg["unet_pools"], residual=cfg["unet_residual"])


def _unrolled(shape, spec: ModelSpec, cfg: dict):
    extra = {k: cfg[k] for k in ("step_size", "cg_iters", "cg_lambda", "oracle_physics") if k in cfg}
    return UnrolledNet(shape, spec.transform, cfg["steps"], cfg["resblocks"], cfg["channels"],
                       data_consistency=cfg["data_consistency"], **extra)


#: family → builder(shape, spec, settings)
BUILDERS = {"zero-filled": _zero_filled, "classical": _classical, "unet": _unet, "unrolled": _unrolled}


#: override → (kind, lower bound, bound included): the values a model can be built with
OVERRIDE_RANGES = {"steps": (int, 1, True), "resblocks": (int, 1, True), "channels": (int, 1, True),
                   "unet_chans": (int, 1, True), "unet_pools": (int, 1, True), "cg_iters": (int, 1, True),
                   "max_iter": (int, 1, True), "step_size": (float, 0.0, False), "cg_lambda": (float, 0.0, False),
                   "lamda": (float, 0.0, True)}


def check_overrides(overrides: dict) -> None:
    """ConfigError naming the option (``--steps`` …) when a size / solver override cannot build a model:
    counts must be integers ≥ 1, the initial gradient step and CG λ finite and > 0, λ of L1-wavelet ≥ 0."""
    import math

    from common.errors import ConfigError

    for key, value in overrides.items():
        if value is None or key not in OVERRIDE_RANGES:
            continue
        kind, low, closed = OVERRIDE_RANGES[key]
        flag = "--" + key.replace("_", "-")
        if kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
            expected = f"an integer ≥ {low}"
        else:
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                  and (value >= low if closed else value > low))
            expected = f"a finite number {'≥' if closed else '>'} {low:g}"
        if not ok:
            raise ConfigError(f"{flag} {value!r}; expected {expected}", hint=f"pass a valid {flag} or leave it unset")


def build_model(name: str, shape, scale: str = "small", **overrides):
    """A fresh model `name` (see model_names) for (H, W) slices; `scale` picks DEFAULTS, `overrides`
    replace single settings (steps, resblocks, channels, step_size, cg_iters, cg_lambda, unet_chans,
    unet_pools, lamda, max_iter; l1-wavelet: wavelet, random_shifts, seed). Raises ConfigError for an unknown name or scale."""
    from common.errors import ConfigError

    spec = spec_of(name)
    check_overrides(overrides)
    if scale not in DEFAULTS:
        raise ConfigError(f"scale must be one of {sorted(DEFAULTS)}, got {scale!r}")
    cfg = {**DEFAULTS[scale], **spec.options, **{k: v for k, v in overrides.items() if v is not None}}
    return BUILDERS[spec.family](shape, spec, cfg)


def transform_parameter_count(model) -> int:
    """Number of (real) parameters in the model's learnable transforms (LearnableDFT modules)."""
    from common.training import transform_parameters
    from monarch_core import LearnableDFT

    return sum(p.numel() * (2 if p.is_complex() else 1) for p in transform_parameters(model, (LearnableDFT,)))


MODELS = known_models()
UNTRAINED = untrained_models()
