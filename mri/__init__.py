"""Multi-coil MRI reconstruction with swappable (FFT / dense / Monarch) Fourier transforms.

Sub-packages: `mri.data` (SKM-TEA and fastMRI readers, realistic simulation, masks, coil maps) and
`mri.recon` (SENSE operators, zero-filled SENSE, mSENSE, unrolled networks, U-Net and classical
baselines, training, metrics, comparison reports). Public names are imported lazily.
"""
import importlib

_PUBLIC = {
    # name: module that defines it
    "SkmTeaSlices": "mri.data.skmtea",
    "FastMRISlices": "mri.data.fastmri",
    "SenseOp": "mri.recon.sense",
}


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'mri' has no attribute {name!r}")


__all__ = sorted(_PUBLIC)
