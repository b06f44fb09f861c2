import pytest
import torch

from monarch_core import monarch_multiply, monarch_multiply_adjoint, monarch_to_dense
from tests.monarch_core.reference import monarch_dense_reference

# (k, q, p, l, s, r): square, non-square blocks (n = b1·b2, b1 ≠ b2), rectangular, non-canonical P
LAYOUTS = [
    (4, 4, 4, 4, 4, 4),
    (3, 5, 5, 5, 3, 3),
    (8, 2, 2, 2, 8, 8),
    (4, 6, 8, 8, 5, 3),
    (2, 3, 4, 3, 7, 2),
    (6, 4, 5, 3, 2, 8),
]


def _factors(layout, dtype, gen):
    k, q, p, l, s, r = layout
    w1 = torch.randn(k, q, p, dtype=dtype, generator=gen)
    w2 = torch.randn(l, s, r, dtype=dtype, generator=gen)
    return w1, w2


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.float32, torch.complex64])
def test_multiply_matches_block_diagonal_reference(layout, dtype):
    gen = torch.Generator().manual_seed(hash(layout) % 2**31)
    w1, w2 = _factors(layout, dtype, gen)
    k, q, p, l, s, r = layout
    x = torch.randn(5, 3, k * p, dtype=dtype, generator=gen)
    M = monarch_dense_reference(w1, w2)
    tol = 1e-12 if dtype in (torch.float64, torch.complex128) else 1e-5
    y = monarch_multiply(x, w1, w2)
    assert y.shape == (5, 3, s * l)
    ref = x @ M.T
    assert (y - ref).abs().max() <= tol * ref.abs().max()
    assert torch.allclose(monarch_to_dense(w1, w2), M, atol=tol, rtol=0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_multiply_matches_einsum(layout):
    gen = torch.Generator().manual_seed(1)
    w1, w2 = _factors(layout, torch.complex128, gen)
    k, q, p, l, s, r = layout
    x = torch.randn(7, k * p, dtype=torch.complex128, generator=gen)
    z = torch.einsum("bjp,jqp->bjq", x.reshape(7, k, p), w1).reshape(7, r, l)
    y = torch.einsum("bra,asr->bsa", z, w2).reshape(7, s * l)
    assert torch.allclose(monarch_multiply(x, w1, w2), y, atol=1e-12)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("conjugate", [True, False])
def test_adjoint_is_conjugate_transpose(layout, conjugate):
    gen = torch.Generator().manual_seed(2)
    w1, w2 = _factors(layout, torch.complex128, gen)
    k, q, p, l, s, r = layout
    y = torch.randn(4, s * l, dtype=torch.complex128, generator=gen)
    M = monarch_dense_reference(w1, w2)
    expected = y @ (M.conj() if conjugate else M)
    assert torch.allclose(monarch_multiply_adjoint(y, w1, w2, conjugate=conjugate), expected, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("layout", [(3, 5, 5, 5, 3, 3), (4, 6, 8, 8, 5, 3), (2, 3, 4, 3, 7, 2)])
def test_gradcheck(layout, dtype):
    gen = torch.Generator().manual_seed(3)
    w1, w2 = _factors(layout, dtype, gen)
    k, q, p, l, s, r = layout
    x = torch.randn(3, k * p, dtype=dtype, generator=gen)
    for t in (x, w1, w2):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(monarch_multiply, (x, w1, w2))
    y = torch.randn(3, s * l, dtype=dtype, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(monarch_multiply_adjoint, (y, w1, w2))


def test_leading_batch_shapes_and_single_vector():
    w1, w2 = torch.randn(4, 4, 4), torch.randn(4, 4, 4)
    x = torch.randn(16)
    M = monarch_dense_reference(w1, w2)
    assert torch.allclose(monarch_multiply(x, w1, w2), M @ x, atol=1e-5)
    xb = torch.randn(2, 3, 4, 16)
    assert monarch_multiply(xb, w1, w2).shape == (2, 3, 4, 16)


def test_bad_arguments_name_the_expected_shapes():
    w1, w2 = torch.randn(4, 4, 4), torch.randn(4, 4, 4)
    with pytest.raises(ValueError, match=r"\(\.\.\., 16\)"):
        monarch_multiply(torch.randn(3, 15), w1, w2)
    with pytest.raises(ValueError, match="l\\*r == 16"):
        monarch_multiply(torch.randn(3, 16), w1, torch.randn(4, 4, 3))
    with pytest.raises(ValueError, match="3-D"):
        monarch_multiply(torch.randn(3, 16), w1.reshape(16, 4), w2)
    with pytest.raises(TypeError, match="float64"):
        monarch_multiply(torch.randn(3, 16, dtype=torch.float64), w1, w2)
    with pytest.raises(TypeError, match="share a dtype"):
        monarch_multiply(torch.randn(3, 16), w1, w2.double())
    with pytest.raises(ValueError, match="backend"):
        monarch_multiply(torch.randn(3, 16), w1, w2, backend="cuda-magic")


# ---- the chunked feature-major path and its hand-written backward ---------------------------------

@pytest.fixture
def small_chunks(monkeypatch):
    """Force several chunks (and a shorter last one) even at test sizes."""
    import monarch_core.multiply as multiply

    monkeypatch.setattr(multiply, "MIN_CHUNK", 4)
    monkeypatch.setattr(multiply, "MAX_CHUNK", 4)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("layout", [(3, 5, 5, 5, 3, 3), (4, 6, 8, 8, 5, 3), (2, 3, 4, 3, 7, 2)])
def test_gradcheck_across_chunks(small_chunks, layout, dtype, transposed):
    gen = torch.Generator().manual_seed(4)
    w1, w2 = _factors(layout, dtype, gen)
    k, q, p, l, s, r = layout
    x = torch.randn(11, k * p, dtype=dtype, generator=gen)  # 11 rows: chunks of 4, 4, 3
    for t in (x, w1, w2):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b, c: monarch_multiply(a, b, c, input_transposed=transposed), (x, w1, w2))


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_backward_matches_autograd_of_dense_product(small_chunks, dtype):
    """Grads of the hand-written backward against autograd through x @ Mᵀ with M built independently."""
    gen = torch.Generator().manual_seed(5)
    layout = (4, 6, 8, 8, 5, 3)
    w1, w2 = _factors(layout, dtype, gen)
    x = torch.randn(2, 9, 32, dtype=dtype, generator=gen)
    gy = torch.randn(2, 9, 40, dtype=dtype, generator=gen)
    grads = []
    for fn in (lambda a, b, c: monarch_multiply(a, b, c), lambda a, b, c: a @ monarch_dense_reference(b, c).T):
        leaves = [t.clone().requires_grad_(True) for t in (x, w1, w2)]
        fn(*leaves).backward(gy)
        grads.append([t.grad for t in leaves])
    for got, want in zip(*grads):
        assert torch.allclose(got, want, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_input_transposed_equals_gathering_the_dft_permutation(dtype):
    from monarch_core import dft_monarch

    perm, w1, w2 = dft_monarch(48, dtype=torch.complex64)  # b1 ≠ b2
    if not dtype.is_complex:
        w1, w2 = w1.real.contiguous(), w2.real.contiguous()
    x = torch.randn(70, 48, dtype=dtype)
    assert torch.allclose(monarch_multiply(x, w1, w2, input_transposed=True), monarch_multiply(x[:, perm], w1, w2), atol=1e-5)
    if dtype.is_complex:
        assert torch.allclose(monarch_multiply(x, w1, w2, input_transposed=True), torch.fft.fft(x), atol=1e-3)


def test_inference_path_and_autocast_path_match():
    """No-grad (plain chunked forward) and autocast (two-bmm fallback) give the same product."""
    gen = torch.Generator().manual_seed(6)
    w1, w2 = _factors((4, 6, 8, 8, 5, 3), torch.float32, gen)
    x = torch.randn(3000, 32, generator=gen)  # several full chunks and a remainder
    ref = x @ monarch_dense_reference(w1, w2).T
    with torch.no_grad():
        assert torch.allclose(monarch_multiply(x, w1, w2), ref, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = monarch_multiply(x, w1, w2)
    assert y.dtype == torch.bfloat16 and ((y.float() - ref).abs().max() / ref.abs().max()) < 3e-2
