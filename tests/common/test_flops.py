"""forward_flops: FFTs counted with the radix-2 estimate, matmuls as torch's counter counts them."""
import math

import pytest
import torch

from common.flops import forward_flops


class SpectralToy(torch.nn.Module):
    """rfft → complex mode mixing (a matmul) → irfft: the shape of one FNO spectral layer."""

    def __init__(self, n, modes):
        super().__init__()
        self.n, self.modes = n, modes
        self.weight = torch.nn.Parameter(torch.randn(modes, modes, dtype=torch.cfloat))

    def forward(self, x):
        spectrum = torch.fft.rfft(x)[..., :self.modes] @ self.weight
        return torch.fft.irfft(spectrum, n=self.n)


@pytest.mark.parametrize("n,batch", [(64, 3), (256, 1)])
def test_ffts_and_matmuls_are_counted_analytically(n, batch):
    modes = 8
    expected_fft = 2 * batch * 2.5 * n * math.log2(n)  # rfft + irfft of length n
    expected_mm = 2 * batch * modes * modes  # 2 per multiply-add (torch's rule)
    assert forward_flops(SpectralToy(n, modes), torch.randn(batch, n)) == pytest.approx(expected_fft + expected_mm)


def test_a_module_without_counted_operations_costs_nothing():
    assert forward_flops(torch.nn.ReLU(), torch.randn(4, 4)) == 0
