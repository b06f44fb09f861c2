"""U-Net from the zero-filled SENSE image to the target (the paper's learned baseline), as fastMRI's
`Unet` (conv blocks with instance norm and LeakyReLU, transpose-conv upsampling) wrapped like its
`NormUnet`: real/imag channels, per-image normalisation, padding to a multiple of 2^pools."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mri.recon.complex_channels import to_channels, to_complex
from mri.recon.zero_filled import ZeroFilledSense


def _conv_block(cin, cout, drop):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2, True),
        nn.Dropout2d(drop),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2, True),
        nn.Dropout2d(drop))


def _up_block(cin, cout):
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False), nn.InstanceNorm2d(cout),
                         nn.LeakyReLU(0.2, True))


class Unet(nn.Module):
    """fastMRI's U-Net: (B, in_chans, H, W) → (B, out_chans, H, W); H, W multiples of 2^pools."""

    def __init__(self, in_chans=2, out_chans=2, chans=32, pools=4, drop=0.0):
        super().__init__()
        self.down = nn.ModuleList([_conv_block(in_chans, chans, drop)])
        ch = chans
        for _ in range(pools - 1):
            self.down.append(_conv_block(ch, ch * 2, drop))
            ch *= 2
        self.bottom = _conv_block(ch, ch * 2, drop)
        self.up_t, self.up_conv = nn.ModuleList(), nn.ModuleList()
        for _ in range(pools):
            self.up_t.append(_up_block(ch * 2, ch))
            self.up_conv.append(_conv_block(ch * 2, ch, drop))
            ch //= 2
        self.out = nn.Conv2d(chans, out_chans, 1)

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.avg_pool2d(x, 2)
        x = self.bottom(x)
        for up, conv in zip(self.up_t, self.up_conv):
            x = conv(torch.cat([up(x), skips.pop()], dim=1))
        return self.out(x)


class UnetRecon(nn.Module):
    """zf image → U-Net → image. forward(kspace, maps, mask) → (B, H, W) complex.

    residual=True (default) predicts the correction zf + U-Net(zf): with short training budgets a plain
    U-Net must first learn the identity and stays far below zf (seen on our CPU protocol), which would
    make the baseline a straw man; residual=False is fastMRI's plain U-Net. The residual U-Net's output
    conv starts at zero so the model starts exactly at zf: with fastMRI's random init the correction is
    O(image std) and the untrained model is ~11 dB below zf, which 6-50 epochs on one scan do not undo
    (benchmarks/results/mri_recon_investigation.md).
    """

    def __init__(self, shape, chans: int = 32, pools: int = 4, drop: float = 0.0, residual: bool = True):
        super().__init__()
        self.transform_kind, self.multiple, self.residual = "fft", 2 ** pools, residual
        self.zero_filled = ZeroFilledSense(shape, "fft")
        self.unet = Unet(2, 2, chans, pools, drop)
        if residual:
            nn.init.zeros_(self.unet.out.weight)
            nn.init.zeros_(self.unet.out.bias)

    def forward(self, kspace, maps, mask=None):
        zf = self.zero_filled(kspace, maps, mask)
        x = to_channels(zf)
        scale = x.flatten(1).std(dim=1).clamp_min(1e-12)[:, None, None, None]  # per-image, as NormUnet
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        x = F.pad(x / scale, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        y = self.unet(x)[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
        out = to_complex(y * scale)
        return zf + out if self.residual else out
