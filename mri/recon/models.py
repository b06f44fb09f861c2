"""The reconstruction models of the benchmark by name, and how to build them.

    zf          zero-filled SENSE (Aᴴy)                         no training
    cg-sense    sigpy SenseRecon (ℓ2, conjugate gradient)        no training
    l1-wavelet  sigpy L1WaveletRecon                            no training
    msense      zf with a learned Monarch IFFT per axis           (the paper's mSENSE)
    dsense      zf with a learned dense IFFT per axis
    unet        U-Net on the zf image                           (the paper's learned baseline)
    unrolled-fft | unrolled-dense | unrolled-monarch           unrolled network, transform in A
    modl-fft | modl-dense | modl-monarch                       the same with CG data consistency
"""
from __future__ import annotations

from mri.recon.classical import ClassicalRecon
from mri.recon.model_names import MODELS, UNTRAINED, transform_of  # noqa: F401 (re-exported)
from mri.recon.unet import UnetRecon
from mri.recon.unrolled import UnrolledNet
from mri.recon.zero_filled import ZeroFilledSense

# Defaults of the knee config (meddlr) and fastMRI's U-Net; `tiny` is the CPU / demo scale.
DEFAULTS = {
    "full": {"steps": 8, "resblocks": 2, "channels": 128, "unet_chans": 32, "unet_pools": 4},
    "small": {"steps": 5, "resblocks": 2, "channels": 32, "unet_chans": 16, "unet_pools": 3},
    "tiny": {"steps": 3, "resblocks": 1, "channels": 16, "unet_chans": 8, "unet_pools": 2},
}


def build_model(name: str, shape, scale: str = "small", **overrides):
    """A fresh model `name` (see MODELS) for (H, W) slices; `scale` picks DEFAULTS, `overrides`
    replace single settings (steps, resblocks, channels, step_size, cg_iters, unet_chans, unet_pools, unet_residual,
    lamda, max_iter)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {MODELS}")
    if scale not in DEFAULTS:
        raise ValueError(f"scale must be one of {sorted(DEFAULTS)}, got {scale!r}")
    cfg = {**DEFAULTS[scale], **{k: v for k, v in overrides.items() if v is not None}}
    if name in ("zf", "msense", "dsense"):
        return ZeroFilledSense(shape, transform_of(name))
    if name in ("cg-sense", "l1-wavelet"):
        return ClassicalRecon(name, cfg.get("lamda"), cfg.get("max_iter", 30))
    if name == "unet":
        return UnetRecon(shape, cfg["unet_chans"], cfg["unet_pools"], residual=cfg.get("unet_residual", True))
    dc = "gradient" if name.startswith("unrolled-") else "cg"
    extra = {k: cfg[k] for k in ("step_size", "cg_iters", "cg_lambda") if k in cfg}
    return UnrolledNet(shape, transform_of(name), cfg["steps"], cfg["resblocks"], cfg["channels"],
                       data_consistency=dc, **extra)
