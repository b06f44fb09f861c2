"""Triton kernels of the Monarch multiply against the PyTorch path, the dense matrix and torch.fft.

CPU: the kernel tests need TRITON_INTERPRET=1 set before Triton is imported, so
`test_kernels_under_interpreter` re-runs this file in a subprocess with it set (tiny sizes; fp32 and
complex64 only — bf16 is unreliable in the interpreter). Setting TRITON_INTERPRET=1 yourself runs
them directly. GPU: tests marked `gpu` check bf16/fp16 against an fp32 reference (skipped without CUDA).
"""
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import monarch_core.multiply as multiply
from monarch_core import backend
from monarch_core.dft import dft_monarch
from monarch_core.multiply import monarch_multiply, monarch_multiply_torch, monarch_to_dense
from tests.monarch_core.reference import monarch_dense_reference

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
ROOT = Path(__file__).resolve().parents[2]
interpreter = pytest.mark.skipif(not INTERPRETED, reason="runs inside test_kernels_under_interpreter (TRITON_INTERPRET=1)")
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# (batch, k, q, p, l, s, r): square, n not a power of two, non-square blocks, rectangular factors,
# blocks larger than the interpreter's 16-wide tiles (K loop, several N tiles), batches not multiples of 16.
LAYOUTS = [
    (5, 4, 4, 4, 4, 4, 4),
    (33, 8, 8, 8, 8, 8, 8),
    (7, 3, 4, 4, 4, 3, 3),
    (17, 2, 40, 32, 10, 3, 8),
    (9, 5, 6, 4, 6, 7, 5),
    (1, 6, 4, 5, 8, 2, 3),
]


def _random_layouts(count, seed=0):
    """Random valid layouts (l a divisor of k·q) with random batch sizes."""
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        k, q, p, s = (rng.randint(1, 9) for _ in range(4))
        l = rng.choice([d for d in range(1, k * q + 1) if (k * q) % d == 0])
        if k * p <= 64 and s * l <= 64:
            out.append((rng.randint(1, 33), k, q, p, l, s, (k * q) // l))
    return out


def _draw(layout, dtype, seed, batch_shape=None):
    batch, k, q, p, l, s, r = layout
    gen = torch.Generator().manual_seed(seed)
    shape = batch_shape or (batch,)
    x = torch.randn(*shape, k * p, dtype=dtype, generator=gen)
    w1 = torch.randn(k, q, p, dtype=dtype, generator=gen)
    w2 = torch.randn(l, s, r, dtype=dtype, generator=gen)
    return [t.requires_grad_() for t in (x, w1, w2)]


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def _kernels():
    from monarch_core import kernels

    return kernels


def _check_against_torch_path(layout, dtype, seed, batch_shape=None, tol=2e-5):
    kernels = _kernels()
    x, w1, w2 = _draw(layout, dtype, seed, batch_shape)
    y = kernels.monarch_multiply_triton(x, w1, w2)
    y_ref = monarch_multiply_torch(x, w1, w2)
    assert y.shape == y_ref.shape and y.dtype == dtype
    assert _rel(y, y_ref) < tol
    assert _rel(y, x @ monarch_dense_reference(w1, w2).T) < tol  # independent of the PyTorch path
    g = torch.randn_like(y_ref)
    grads = torch.autograd.grad(y, (x, w1, w2), g)
    grads_ref = torch.autograd.grad(y_ref, (x, w1, w2), g)
    for name, got, want in zip(("x", "w1", "w2"), grads, grads_ref):
        assert _rel(got, want) < tol, f"grad of {name}"


@interpreter
@pytest.mark.parametrize("dtype, one_pass", [(torch.float32, "1"), (torch.float32, "0"), (torch.complex64, "1")])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_triton_matches_torch_path(layout, dtype, one_pass, monkeypatch):
    # fp32 runs on the one-pass forward by default (MONARCH_ONE_PASS=0: the two-pass kernels); complex on two-pass
    monkeypatch.setenv("MONARCH_ONE_PASS", one_pass)
    _check_against_torch_path(layout, dtype, seed=hash(layout) % 1000)


@interpreter
@pytest.mark.parametrize("layout", _random_layouts(5))
def test_triton_matches_torch_path_random_layouts(layout):
    _check_against_torch_path(layout, torch.complex64 if layout[0] % 2 else torch.float32, seed=layout[0])


@interpreter
def test_triton_keeps_batch_dimensions_and_strided_inputs():
    layout = (0, 4, 6, 3, 8, 5, 3)
    _check_against_torch_path(layout, torch.float32, seed=3, batch_shape=(2, 3))
    kernels = _kernels()
    x, w1, w2 = _draw((6, 4, 6, 3, 8, 5, 3), torch.float32, seed=4)
    x_strided = torch.randn(5, 24)[:, ::2]  # x with element stride 2
    w2_t = w2.detach().transpose(1, 2).contiguous().transpose(1, 2)  # non-contiguous factor
    assert _rel(kernels.monarch_multiply_triton(x_strided, w1, w2_t), monarch_multiply_torch(x_strided, w1, w2_t)) < 2e-5


@interpreter
def test_single_block_tiles_use_the_2d_dot(monkeypatch):
    from monarch_core.kernels import block_gemm

    monkeypatch.setattr(block_gemm, "INTERPRETER_CONFIG", dict(BLOCK_B=32, GROUP=1, BLOCK_N=16, BLOCK_K=16))
    for dtype in (torch.float32, torch.complex64):
        _check_against_torch_path((35, 3, 5, 20, 5, 6, 3), dtype, seed=5)


@interpreter
@pytest.mark.parametrize("n, norm", [(12, "backward"), (16, "ortho"), (36, "forward")])
def test_triton_dft_with_input_permutation_in_strides_matches_fft(n, norm):
    kernels = _kernels()
    perm, w1, w2 = dft_monarch(n, norm=norm)
    b1 = w1.shape[0]
    assert torch.equal(perm, torch.arange(n).reshape(n // b1, b1).T.reshape(n))  # what input_transposed reads
    x = torch.randn(19, n, dtype=torch.complex64)
    y = kernels.monarch_multiply_triton(x, w1, w2, input_transposed=True)
    assert _rel(y, torch.fft.fft(x, norm=norm)) < 2e-6


@interpreter
def test_planar_matches_complex_path_with_gradients():
    kernels = _kernels()
    x, w1, w2 = _draw((13, 4, 6, 5, 8, 3, 3), torch.complex64, seed=7)
    planes = [t.detach().real.clone().requires_grad_() for t in (x, w1, w2)]
    planes_im = [t.detach().imag.clone().requires_grad_() for t in (x, w1, w2)]
    (xr, w1r, w2r), (xi, w1i, w2i) = planes, planes_im
    yr, yi = kernels.monarch_multiply_planar(xr, xi, w1r, w1i, w2r, w2i)
    y_ref = monarch_multiply_torch(x, w1, w2)
    assert _rel(torch.complex(yr, yi), y_ref) < 2e-5
    g = torch.randn_like(y_ref)
    got = torch.autograd.grad((yr * g.real + yi * g.imag).sum(), (xr, xi, w1r, w1i, w2r, w2i))
    # for a real loss torch's complex gradient is ∂L/∂Re + i·∂L/∂Im
    ref = torch.autograd.grad((y_ref * g.conj()).real.sum(), (x, w1, w2))
    for i, want in enumerate(ref):
        assert _rel(torch.complex(got[2 * i], got[2 * i + 1]), want) < 2e-5


@interpreter
def test_dispatch_uses_triton_for_forced_backend_on_the_dft(monkeypatch):
    from monarch_core.kernels import monarch_triton

    calls = []
    real = monarch_triton.monarch_multiply_triton
    monkeypatch.setattr(monarch_triton, "monarch_multiply_triton", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setenv("MONARCH_BACKEND", "triton")
    perm, w1, w2 = dft_monarch(24, norm="ortho")
    x = torch.randn(5, 24, dtype=torch.complex64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback would warn
        y = monarch_multiply(x, w1, w2, input_transposed=True)
    assert calls and _rel(y, torch.fft.fft(x, norm="ortho")) < 2e-6


def test_unsupported_dtype_falls_back_with_one_warning():
    x, w1, w2 = (t.detach() for t in _draw((4, 3, 4, 4, 4, 3, 3), torch.float64, seed=1))
    backend._warned.clear()
    with pytest.warns(RuntimeWarning, match="float64 is not supported"):
        y = monarch_multiply(x, w1, w2, backend="triton")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monarch_multiply(x, w1, w2, backend="triton")  # the same reason warns only once
    assert torch.allclose(y, x @ monarch_to_dense(w1, w2).T)
    with pytest.raises(RuntimeError, match="cannot run this call"):
        _kernels().monarch_multiply_triton(x, w1, w2)


@pytest.mark.skipif(INTERPRETED, reason="outside the interpreter only")
def test_cpu_tensors_use_torch_path_and_forced_triton_falls_back(monkeypatch):
    x, w1, w2 = (t.detach() for t in _draw((4, 3, 4, 4, 4, 3, 3), torch.float32, seed=2))
    assert multiply.resolve_backend(None, x, w1, w2) == "torch"
    monkeypatch.setenv("MONARCH_BACKEND", "triton")
    backend._warned.clear()
    with pytest.warns(RuntimeWarning, match="need CUDA tensors"):
        y = monarch_multiply(x, w1, w2)
    assert torch.allclose(y, monarch_multiply_torch(x, w1, w2))


def test_planar_rejects_mixed_dtypes():
    k = _kernels()
    xr = torch.randn(2, 16)
    w = torch.randn(4, 4, 4)
    with pytest.raises(TypeError, match="all planes must be real"):
        k.monarch_multiply_planar(xr, xr.double(), w, w, w, w)


@pytest.mark.skipif(INTERPRETED, reason="this is the driver of the interpreter run")
def test_kernels_under_interpreter():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "MONARCH_BACKEND": "auto"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not gpu", str(Path(__file__))]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"interpreter run failed:\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    assert " passed" in run.stdout


# ---- the one-pass forward (kernels/one_pass.py) -----------------------------------------------------

# (batch, k, q, p, l, s, r): batches not multiples of the 16-row interpreter tile and more tiles than its
# 2 programs (the persistent loop), b1 ≠ b2, partial block groups (k, l not multiples of the group), blocks
# padded to 16 and to 64, rectangular factors.
ONE_PASS_LAYOUTS = [
    (37, 4, 8, 8, 8, 4, 4),
    (50, 3, 5, 7, 5, 6, 3),
    (19, 5, 6, 4, 6, 7, 5),
    (23, 2, 40, 32, 10, 3, 8),
    (33, 16, 2, 2, 2, 16, 16),
]


def _one_pass():
    from monarch_core.kernels import one_pass

    return one_pass


@interpreter
@pytest.mark.parametrize("layout", ONE_PASS_LAYOUTS)
def test_one_pass_matches_torch_path_and_dense_with_gradients(layout):
    one_pass = _one_pass()
    x, w1, w2 = _draw(layout, torch.float32, seed=layout[0])
    y = one_pass.monarch_multiply_one_pass(x, w1, w2)
    y_ref = monarch_multiply_torch(x, w1, w2)
    assert y.shape == y_ref.shape and _rel(y, y_ref) < 2e-5
    assert _rel(y, x @ monarch_dense_reference(w1, w2).T) < 2e-5
    g = torch.randn_like(y_ref)
    for name, got, want in zip("x w1 w2".split(), torch.autograd.grad(y, (x, w1, w2), g),
                               torch.autograd.grad(y_ref, (x, w1, w2), g)):
        assert _rel(got, want) < 2e-5, f"grad of {name}"


@interpreter
def test_one_pass_leading_dims_strided_input_and_transposed_order():
    one_pass = _one_pass()
    x, w1, w2 = _draw((0, 4, 6, 3, 8, 5, 3), torch.float32, seed=11, batch_shape=(3, 7))
    y = one_pass.monarch_multiply_one_pass(x, w1, w2)
    assert y.shape == (3, 7, 40) and _rel(y, monarch_multiply_torch(x, w1, w2)) < 2e-5
    (gx,) = torch.autograd.grad(y.square().sum(), x)
    (gx_ref,) = torch.autograd.grad(monarch_multiply_torch(x, w1, w2).square().sum(), x)
    assert _rel(gx, gx_ref) < 2e-5
    x_strided = torch.randn(40, 31).t()[:, ::4]  # (31, 10): batch stride 1, element stride 124
    w1d, w2d = torch.randn(2, 6, 5), torch.randn(3, 4, 4)
    assert not x_strided.is_contiguous()
    assert _rel(one_pass.monarch_multiply_one_pass(x_strided, w1d, w2d), monarch_multiply_torch(x_strided, w1d, w2d)) < 2e-5
    got = one_pass.monarch_multiply_one_pass(x_strided, w1d, w2d, input_transposed=True)
    assert _rel(got, monarch_multiply_torch(x_strided, w1d, w2d, input_transposed=True)) < 2e-5


@interpreter
def test_dispatch_routes_real_dtypes_to_one_pass_and_complex_to_two_pass(monkeypatch):
    one_pass = _one_pass()
    calls = []
    real = one_pass.one_pass_forward
    monkeypatch.setattr(one_pass, "one_pass_forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, w1, w2 = (t.detach() for t in _draw((9, 4, 4, 4, 4, 4, 4), torch.float32, seed=12))
    y = _kernels().monarch_multiply_triton(x, w1, w2)
    assert calls == [1] and _rel(y, monarch_multiply_torch(x, w1, w2)) < 2e-5
    _kernels().monarch_multiply_triton(x.to(torch.complex64), w1.to(torch.complex64), w2.to(torch.complex64))
    monkeypatch.setenv("MONARCH_ONE_PASS", "0")
    _kernels().monarch_multiply_triton(x, w1, w2)
    assert calls == [1]  # complex64 and MONARCH_ONE_PASS=0 stay on the two-pass kernels


@interpreter
def test_one_pass_failure_falls_back_to_two_pass_with_one_warning(monkeypatch):
    from monarch_core.kernels import monarch_triton, support

    one_pass = _one_pass()
    monkeypatch.setattr(support, "interpreting", lambda: False)  # with_fallback re-raises under the interpreter
    monkeypatch.setattr(monarch_triton, "unsupported_reason", lambda *a: None)  # ... and CPU tensors are refused

    def broken(*a, **k):
        raise RuntimeError("out of resources: shared memory, required 300000")

    monkeypatch.setattr(one_pass, "one_pass_forward", broken)
    x, w1, w2 = (t.detach() for t in _draw((9, 4, 4, 4, 4, 4, 4), torch.float32, seed=13))
    backend._warned.clear()
    with pytest.warns(RuntimeWarning, match="one-pass kernel.*out of resources.*two-pass"):
        y = _kernels().monarch_multiply_triton(x, w1, w2)
    assert _rel(y, monarch_multiply_torch(x, w1, w2)) < 2e-5


def test_one_pass_applies_to_real_dtypes_up_to_4096():
    pytest.importorskip("triton")
    one_pass = _one_pass()
    for n, b1 in ((256, 16), (1024, 32), (4096, 64), (1024, 16)):
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            assert one_pass.one_pass_applies(n, b1, n // b1, dtype), (n, b1, dtype)
    assert not one_pass.one_pass_applies(1024, 32, 32, torch.complex64)
    assert not one_pass.one_pass_applies(16384, 128, 128, torch.bfloat16)
    assert not one_pass.one_pass_applies(8192, 64, 128, torch.bfloat16)  # blocks wider than 64
    assert not one_pass.one_pass_applies(1024, 32, 31, torch.float32)  # not a factorisation of n


# ---- GPU: 16-bit accuracy against an fp32 reference, fp32 precision modes, the DFT --------------------

def _gpu_draw(n, batch, seed):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    perm, w1, w2 = dft_monarch(n, norm="ortho", device="cuda")
    w1 = w1.real.contiguous() + 0.1 * torch.randn(w1.shape, device="cuda", generator=gen)  # well-scaled real factors
    w2 = w2.real.contiguous() + 0.1 * torch.randn(w2.shape, device="cuda", generator=gen)
    x = torch.randn(batch, n, device="cuda", generator=gen)
    return x, w1, w2


def _rel_norm(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n", [64, 1024, 4096])
def test_gpu_16bit_close_to_fp32_reference(n, dtype):
    kernels = _kernels()
    x, w1, w2 = _gpu_draw(n, 1000, seed=n)
    xs, w1s, w2s = (t.to(dtype).requires_grad_() for t in (x, w1, w2))
    x32, w1_32, w2_32 = (t.detach().double().requires_grad_() for t in (xs, w1s, w2s))  # same rounded inputs
    y = kernels.monarch_multiply_triton(xs, w1s, w2s)
    y_ref = monarch_multiply_torch(x32, w1_32, w2_32)
    y_torch16 = monarch_multiply_torch(xs, w1s, w2s)
    err, err_torch = _rel_norm(y, y_ref), _rel_norm(y_torch16, y_ref)
    assert err < 1e-2 and err <= 1.5 * err_torch + 1e-3
    g = torch.randn_like(y_ref)
    grads = torch.autograd.grad(y, (xs, w1s, w2s), g.to(dtype))
    grads_ref = torch.autograd.grad(y_ref, (x32, w1_32, w2_32), g)
    for got, want in zip(grads, grads_ref):
        assert _rel_norm(got, want) < 2e-2


@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize("precision, tol", [("ieee", 1e-6), ("tf32x3", 1e-5), ("tf32", 5e-3)])
def test_gpu_fp32_precision_modes_on_the_dft(precision, tol):
    kernels = _kernels()
    n = 1024
    perm, w1, w2 = dft_monarch(n, norm="ortho", device="cuda")
    x = torch.randn(512, n, dtype=torch.complex64, device="cuda")
    y = kernels.monarch_multiply_triton(x, w1, w2, precision=precision, input_transposed=True)
    err = _rel_norm(torch.view_as_real(y), torch.view_as_real(torch.fft.fft(x.to(torch.complex128), norm="ortho")))
    assert err < tol


@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gpu_planar_16bit_dft_close_to_fft(dtype):
    kernels = _kernels()
    n = 256
    perm, w1, w2 = dft_monarch(n, norm="ortho", device="cuda")
    x = torch.randn(4096, n, dtype=torch.complex64, device="cuda")
    yr, yi = kernels.monarch_multiply_planar(*(t.to(dtype).contiguous() for t in (x.real, x.imag, w1.real, w1.imag,
                                                                                   w2.real, w2.imag)),
                                             input_transposed=True)
    assert _rel_norm(torch.complex(yr.float(), yi.float()), torch.fft.fft(x, norm="ortho")) < 2e-2


@pytest.mark.gpu
@requires_cuda
def test_gpu_auto_dispatch_picks_triton(monkeypatch):
    monkeypatch.delenv("MONARCH_BACKEND", raising=False)
    x, w1, w2 = _gpu_draw(256, 100, seed=0)
    assert multiply.resolve_backend(None, x, w1, w2) == "triton"
    assert multiply.resolve_backend("torch", x, w1, w2) == "torch"
    assert _rel_norm(monarch_multiply(x, w1, w2), monarch_multiply_torch(x.double(), w1.double(), w2.double())) < 1e-6


# ---- adjoint, heuristic cache, launch-failure fallback (added with the robustness work) ------------

@interpreter
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_triton_adjoint_matches_dense_and_its_gradient(dtype):
    kernels = _kernels()
    x, w1, w2 = _draw((21, 4, 6, 5, 8, 3, 3), dtype, seed=8)
    y = torch.randn(21, 24, dtype=dtype, requires_grad=True)
    M = monarch_dense_reference(w1.detach(), w2.detach())
    got = kernels.monarch_multiply_adjoint_triton(y, w1.detach(), w2.detach())
    assert _rel(got, y @ M.conj()) < 2e-5
    g = torch.randn_like(got)
    (gy,) = torch.autograd.grad(got, y, g)
    assert _rel(gy, g @ M.T) < 2e-5  # ∂y of x = Mᴴ y is M ∂x
    from monarch_core import monarch_multiply_adjoint

    assert _rel(monarch_multiply_adjoint(y.detach(), w1.detach(), w2.detach(), conjugate=False), y.detach() @ M) < 2e-5


def test_heuristic_config_is_cached():
    pytest.importorskip("triton")
    from monarch_core.kernels import block_gemm

    args = dict(a_re=torch.empty(1, dtype=torch.bfloat16), N=32, K=32, NG=32, IS_COMPLEX=False)
    first = block_gemm._heuristic(args)
    hits = block_gemm._heuristic_cached.cache_info().hits
    assert block_gemm._heuristic(args) == first and block_gemm._heuristic_cached.cache_info().hits == hits + 1
    assert first["BLOCK_N"] == 32 and first["BLOCK_B"] == 64
    # 4-byte planes get the smaller spill-free tiles (test_kernels_aot.py compiles them)
    fp32 = block_gemm._heuristic({**args, "a_re": torch.empty(1)})
    assert fp32["BLOCK_B"] == 32 and fp32["num_warps"] == 8 and fp32["GROUP"] * 32 * 32 <= block_gemm.MAX_TILE_ELEMENTS_4BYTE


@pytest.mark.skipif(INTERPRETED, reason="the interpreter re-raises instead of falling back")
def test_kernel_failure_falls_back_with_one_warning_per_reason(monkeypatch):
    from monarch_core.kernels import support

    x, w1, w2 = (t.detach() for t in _draw((4, 3, 4, 4, 4, 3, 3), torch.float32, seed=2))
    monkeypatch.setattr(support, "interpreting", lambda: False)
    monkeypatch.setattr(multiply, "resolve_backend", lambda *a, **k: "triton")
    pytest.importorskip("triton")
    from monarch_core.kernels import monarch_triton

    def broken(*a, **k):
        raise RuntimeError("out of resources: shared memory")

    monkeypatch.setattr(monarch_triton, "monarch_multiply_triton", broken)
    backend._warned.clear()
    with pytest.warns(RuntimeWarning, match="Triton kernels failed .*out of resources"):
        y = monarch_multiply(x, w1, w2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monarch_multiply(x, w1, w2)
    assert torch.allclose(y, monarch_multiply_torch(x, w1, w2))
