"""Self-check before trust (monarch_core.self_check): the first call of a kernel configuration is compared
with the PyTorch path; a wrong kernel is disabled with one warning and the PyTorch path answers.

Two layers: `trusted` with stand-in kernels (plain CPU), and the real Triton kernels under
TRITON_INTERPRET=1 with one jitted kernel wrapped so that it writes wrong values (re-run of this file in a
subprocess by `test_self_check_under_interpreter`, as test_kernels.py does).
"""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import monarch_core.multiply as multiply
from monarch_core import backend, self_check
from monarch_core.multiply import monarch_multiply, monarch_multiply_adjoint, monarch_multiply_torch
from tests.monarch_core.reference import monarch_dense_reference

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
interpreter = pytest.mark.skipif(not INTERPRETED, reason="runs inside test_self_check_under_interpreter")


@pytest.fixture(autouse=True)
def fresh_state():
    self_check.reset()
    backend._warned.clear()
    yield
    self_check.reset()


def _draw(batch=20, k=4, q=4, p=4, l=4, s=4, r=4, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, k * p, generator=gen).to(dtype), torch.randn(k, q, p, generator=gen).to(dtype),
            torch.randn(l, s, r, generator=gen).to(dtype))


def _rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


class Counting:
    """A stand-in kernel: the PyTorch path, optionally corrupted (forward output or x's gradient)."""

    def __init__(self, corrupt_output=False, corrupt_grad=False):
        self.calls, self.corrupt_output, self.corrupt_grad = 0, corrupt_output, corrupt_grad

    def __call__(self, x, w1, w2):
        self.calls += 1
        y = monarch_multiply_torch(x, w1, w2)
        if self.corrupt_grad:
            y = _GradTimesTwo.apply(y)
        return y + 1.0 if self.corrupt_output else y


class _GradTimesTwo(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y):
        return y.clone()

    @staticmethod
    def backward(ctx, g):
        return 2 * g


def test_a_correct_kernel_is_verified_once_then_trusted():
    kernel, x = Counting(), _draw()
    reference_calls = []

    def reference(*a):
        reference_calls.append(a[0].shape[0])
        return monarch_multiply_torch(*a)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = self_check.trusted("mm", kernel, reference, x)
        self_check.trusted("mm", kernel, reference, x)
    assert torch.equal(y, monarch_multiply_torch(*x)) and kernel.calls == 2
    assert reference_calls == [self_check.SLICE_ROWS]  # one check on a slice, none on the second call


def test_a_wrong_forward_is_disabled_with_one_warning():
    kernel, x = Counting(corrupt_output=True), _draw()
    with pytest.warns(RuntimeWarning, match="disagree with the PyTorch path.*output: relative error"):
        y = self_check.trusted("mm", kernel, monarch_multiply_torch, x)
    assert torch.equal(y, monarch_multiply_torch(*x))  # the PyTorch path answered
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(self_check.trusted("mm", kernel, monarch_multiply_torch, x), y)
    assert kernel.calls == 1  # never called again
    # another configuration (other factor shapes) is checked on its own
    other = _draw(k=2, q=8, p=8, l=8, s=2, r=2)
    good = Counting()
    self_check.trusted("mm", good, monarch_multiply_torch, other)
    assert good.calls == 1


def test_a_wrong_gradient_is_caught_when_the_call_needs_gradients():
    x, w1, w2 = _draw()
    kernel = Counting(corrupt_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        self_check.trusted("mm", kernel, monarch_multiply_torch, (x, w1, w2))  # no gradients: forward is right
    self_check.reset()
    xg = x.clone().requires_grad_()
    with pytest.warns(RuntimeWarning, match="grad of input 0"):
        y = self_check.trusted("mm", kernel, monarch_multiply_torch, (xg, w1, w2))
    (gx,) = torch.autograd.grad(y.sum(), xg)
    assert torch.allclose(gx, torch.ones(1, 16) @ monarch_dense_reference(w1, w2))  # the PyTorch path's gradient


def test_an_uninformative_slice_leaves_the_configuration_unverified():
    x, w1, w2 = _draw()
    kernel = Counting(corrupt_output=True)  # y + 1: wrong, but an all-zero reference cannot tell how wrong
    zeros = torch.zeros_like(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        self_check.trusted("mm", Counting(), monarch_multiply_torch, (zeros, w1, w2))
    nan = x.clone()
    nan[0, 0] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        self_check.trusted("mm", kernel, monarch_multiply_torch, (nan, w1, w2))  # reference not finite
    with pytest.warns(RuntimeWarning, match="disagree"):  # the next informative call is checked
        self_check.trusted("mm", kernel, monarch_multiply_torch, (x, w1, w2))


def test_tolerances_sit_between_rounding_and_a_wrong_kernel():
    """fp16 rounding of a Monarch product (unit-scale data) is ~1e-3 relative: well inside the tolerance;
    a one-ulp-per-element perturbation of the output passes, a 10 % error does not."""
    x, w1, w2 = _draw(dtype=torch.float16)
    y16 = monarch_multiply_torch(x, w1, w2)
    ref = monarch_multiply_torch(x.double(), w1.double(), w2.double())
    error = _rel(y16, ref)
    assert 1e-5 < error < self_check.TOLERANCE[torch.float16] / 5
    assert self_check._relative_error(ref * 1.1, ref) > self_check.TOLERANCE[torch.bfloat16]


# ---- the real kernels under the interpreter, one of them made wrong -----------------------------------

class WrongKernel:
    """Wraps a @triton.jit kernel: launches it, then corrupts the tensor argument `out` it wrote."""

    def __init__(self, real, out):
        self.real, self.out = real, out

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.real[grid](*args, **kwargs)
            names = list(self.real.arg_names)  # the interpreter's InterpretedFunction
            target = kwargs[self.out] if self.out in kwargs else args[names.index(self.out)]
            target.add_(1.0)

        return launch


@interpreter
def test_interpreted_wrong_one_pass_kernel_falls_back_to_pytorch_with_one_warning(monkeypatch):
    from monarch_core.kernels import one_pass

    monkeypatch.setattr(one_pass, "_one_pass_kernel", WrongKernel(one_pass._one_pass_kernel, "y_ptr"))
    x, w1, w2 = _draw(batch=37, k=4, q=8, p=8, l=8, s=4, r=4)
    with pytest.raises(AssertionError):  # the kernel entry point itself is wrong (not self-checked)
        from monarch_core.kernels import monarch_multiply_triton

        assert _rel(monarch_multiply_triton(x, w1, w2), monarch_multiply_torch(x, w1, w2)) < 1e-5
    with pytest.warns(RuntimeWarning, match="monarch_multiply: the Triton kernels disagree"):
        y = monarch_multiply(x, w1, w2, backend="triton")
    assert _rel(y, x @ monarch_dense_reference(w1, w2).T) < 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _rel(monarch_multiply(x, w1, w2, backend="triton"), y) < 1e-6
    # the two-pass kernels (another configuration: MONARCH_ONE_PASS=0) are checked and trusted
    monkeypatch.setenv("MONARCH_ONE_PASS", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _rel(monarch_multiply(x, w1, w2, backend="triton"), y) < 1e-5


@interpreter
def test_interpreted_wrong_weight_gradient_kernel_is_caught_on_the_first_training_call(monkeypatch):
    from monarch_core.kernels import block_gemm

    monkeypatch.setitem(block_gemm._KERNELS, "wgrad", WrongKernel(block_gemm._KERNELS["wgrad"], "dw_re"))
    x, w1, w2 = _draw(batch=21, k=3, q=5, p=6, l=5, s=4, r=3)
    w1.requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monarch_multiply(x, w1.detach(), w2, backend="triton")  # forward only: right, verified
    with pytest.warns(RuntimeWarning, match="grad of input 1"):
        y = monarch_multiply(x, w1, w2, backend="triton")
    (g,) = torch.autograd.grad(y.square().sum(), w1)
    (g_ref,) = torch.autograd.grad(monarch_multiply_torch(x, w1, w2).square().sum(), w1)
    assert _rel(g, g_ref) < 1e-6


@interpreter
def test_interpreted_wrong_adjoint_is_caught(monkeypatch):
    from monarch_core.kernels import block_gemm

    monkeypatch.setitem(block_gemm._KERNELS, "gemm", WrongKernel(block_gemm._KERNELS["gemm"], "o_re"))
    x, w1, w2 = _draw(batch=9, dtype=torch.float32)
    with pytest.warns(RuntimeWarning, match="monarch_multiply_adjoint: the Triton kernels disagree"):
        got = monarch_multiply_adjoint(x, w1, w2, backend="triton")
    assert _rel(got, x @ monarch_dense_reference(w1, w2)) < 1e-6


@pytest.mark.slow  # a Triton-interpreter subprocess (20–70 s on a shared 2-core machine)
@pytest.mark.skipif(INTERPRETED, reason="this is the driver of the interpreter run")
def test_self_check_under_interpreter():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(Path(__file__)), "-k", "interpreted"]
    run = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, f"interpreter run failed:\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    assert "3 passed" in run.stdout
