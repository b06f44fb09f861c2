"""Multi-coil MRI reconstruction with swappable Fourier transforms (monarch_core.TRANSFORM_KINDS).

Sub-packages: `mri.data` (SKM-TEA and fastMRI readers, realistic simulation, masks, coil maps) and
`mri.recon` (SENSE operators, zero-filled SENSE, mSENSE, unrolled networks, U-Net and classical
baselines, training, metrics, comparison reports). Public names are imported lazily.
"""
from common.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    # name: module that defines it
    "SkmTeaSlices": "mri.data.skmtea",
    "FastMRISlices": "mri.data.fastmri",
    "SenseOp": "mri.recon.sense",
})
