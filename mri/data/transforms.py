"""Centred orthonormal 2-D FFT and SENSE combination on numpy arrays (the conventions of sigpy,
fastMRI and meddlr): ``F = fftshift ∘ fft2(norm="ortho") ∘ ifftshift`` over the last two axes."""
import numpy as np

_AXES = (-2, -1)


def fft2c(image: np.ndarray) -> np.ndarray:
    """Centred orthonormal FFT over the last two axes: (..., H, W) → (..., H, W), same dtype."""
    out = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image, axes=_AXES), norm="ortho"), axes=_AXES)
    return out.astype(np.result_type(image.dtype, np.complex64), copy=False)


def ifft2c(kspace: np.ndarray) -> np.ndarray:
    """Inverse of :func:`fft2c`: (..., H, W) → (..., H, W)."""
    out = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=_AXES), norm="ortho"), axes=_AXES)
    return out.astype(np.result_type(kspace.dtype, np.complex64), copy=False)


def sense_adjoint(kspace: np.ndarray, maps: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Aᴴy = Σ_c conj(S_c) · F⁻¹(M · y_c).

    kspace, maps: (..., coils, H, W); mask: broadcastable to (H, W) or None (fully sampled).
    Returns (..., H, W). With a full mask this is the SENSE combination that the stored targets are.
    """
    if mask is not None:
        kspace = kspace * mask
    return np.sum(np.conj(maps) * ifft2c(kspace), axis=-3)


def rss(x: np.ndarray, axis: int = -3) -> np.ndarray:
    """Root-sum-of-squares over the coil axis."""
    return np.sqrt(np.sum(np.abs(x) ** 2, axis=axis))
