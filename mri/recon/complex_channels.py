"""Conversions between complex images (B, H, W) and real two-channel tensors (B, 2, H, W) for CNNs."""
import torch


def to_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, H, W) complex → (B, 2, H, W) real (real, imaginary)."""
    return torch.view_as_real(x).permute(0, 3, 1, 2).contiguous()


def to_complex(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) real → (B, H, W) complex64 (float32 parts, also under autocast)."""
    if x.shape[1] != 2:
        raise ValueError(f"expected (B, 2, H, W) real/imaginary channels, got {tuple(x.shape)}")
    return torch.complex(x[:, 0].float(), x[:, 1].float())
