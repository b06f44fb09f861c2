import pytest
import torch

from monarch_core import dft_matrix, dft_monarch, factor_pair, monarch_multiply

SIZES = [4, 16, 64, 1024, 15, 27, 36, 42, 48, 85, 160, 168, 196, 320, 512]
NORMS = ["backward", "ortho", "forward"]
TOLERANCE = {torch.complex64: 1e-5, torch.complex128: 1e-12}


def fft_reference(x, inverse, norm, centered):
    fn = torch.fft.ifft if inverse else torch.fft.fft
    if centered:
        return torch.fft.fftshift(fn(torch.fft.ifftshift(x, dim=-1), norm=norm), dim=-1)
    return fn(x, norm=norm)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_dft_monarch_equals_torch_fft(n, dtype):
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(4, n, dtype=torch.complex128, generator=gen)
    for inverse in (False, True):
        for norm in NORMS:
            for centered in (False, True):
                perm, w1, w2 = dft_monarch(n, inverse=inverse, norm=norm, centered=centered, dtype=dtype)
                y = monarch_multiply(x.to(dtype)[..., perm], w1, w2)
                ref = fft_reference(x, inverse, norm, centered)
                err = ((y.to(torch.complex128) - ref).abs().max() / ref.abs().max()).item()
                assert err <= TOLERANCE[dtype], (n, inverse, norm, centered, err)


@pytest.mark.parametrize("n,sizes", [(48, (6, 8)), (48, (8, 6)), (48, (2, 24)), (36, (4, 9))])
def test_explicit_sizes(n, sizes):
    perm, w1, w2 = dft_monarch(n, sizes=sizes, dtype=torch.complex128)
    assert w1.shape == (sizes[0], sizes[1], sizes[1]) and w2.shape == (sizes[1], sizes[0], sizes[0])
    x = torch.randn(3, n, dtype=torch.complex128)
    assert torch.allclose(monarch_multiply(x[..., perm], w1, w2), torch.fft.fft(x), atol=1e-10)


@pytest.mark.parametrize("n", [15, 64, 85])
def test_dense_dft_matrix(n):
    x = torch.randn(2, n, dtype=torch.complex128)
    for inverse in (False, True):
        for centered in (False, True):
            D = dft_matrix(n, inverse, "ortho", centered, dtype=torch.complex128)
            assert torch.allclose(x @ D.T, fft_reference(x, inverse, "ortho", centered), atol=1e-12)


@pytest.mark.parametrize("n", [2, 3, 7, 97, 1021])
def test_prime_sizes_are_rejected_with_advice(n):
    with pytest.raises(ValueError, match="no Monarch factorisation.*(Pad|pad).*dense"):
        dft_monarch(n)


def test_bad_sizes_and_dtypes():
    with pytest.raises(ValueError, match="do not factor n=48"):
        dft_monarch(48, sizes=(5, 10))
    with pytest.raises(TypeError, match="complex"):
        dft_monarch(16, dtype=torch.float32)
    with pytest.raises(ValueError, match="norm"):
        dft_monarch(16, norm="unitary")
    assert factor_pair(1024) == (32, 32) and factor_pair(160) == (10, 16)
