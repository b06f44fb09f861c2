"""Block-diagonal GEMM kernels with strided (permutation-folding) addressing, real or complex planes.

Every step of the Monarch multiply and of its backward is one of two operations over G independent
blocks, each reading and writing through arbitrary (batch, block, inner) strides:

    block_gemm:          out[b, g, n] = Σ_k a[b, g, k] · w[g, n, k]          (w conjugated on request)
    block_weight_grad:   dw[g, n, k]  = Σ_b go[b, g, n] · conj(a[b, g, k])

The Monarch permutations are such strides (see monarch_triton.py), so no permutation is ever
copied in memory. A program owns a tile of BLOCK_B batch rows × GROUP consecutive blocks ×
BLOCK_N outputs and loops over the inner dimension in BLOCK_K chunks. Several blocks per program
matter for the permuted reads/writes: consecutive blocks sit next to each other in memory there
(stride 1 between blocks, stride l inside a block), so a GROUP of them makes contiguous runs.
GROUP == 1 uses a 2-D tl.dot (wgmma on Hopper); GROUP > 1 a batched 3-D tl.dot (mma.sync).

Complex numbers travel as two real planes (separate pointers; an interleaved complex64 tensor is
passed as its two strided views): 4 real products per complex product, accumulated in fp32.

On a GPU the tile shape is autotuned (configs below, keyed on the block shape, dtype and a coarse
batch-size bucket); under TRITON_INTERPRET=1 a fixed small config is used (autotune needs a GPU).
"""
from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl

from .support import gpu_sm_count

Planes = tuple  # (real plane, imaginary plane or None)

# Fixed config of the CPU interpreter: small tiles so that tests exercise the masks, the K loop and
# several block groups even at tiny sizes.
INTERPRETER_CONFIG = dict(BLOCK_B=16, GROUP=2, BLOCK_N=16, BLOCK_K=16)
# MONARCH_TRITON_AUTOTUNE=0 skips autotuning on the GPU (a heuristic tile instead; faster first calls).
AUTOTUNE_ENV = "MONARCH_TRITON_AUTOTUNE"
# Accumulator budget of one program (fp32 elements, all planes together) when pruning autotune configs,
# for 16-bit and for 4-byte (fp32 / complex64 planes) operands. 4-byte operands need the smaller budget:
# their mma.sync operands sit in registers too (and tf32x3 splits each into two), so the 16-bit budget's
# tiles spilled 8-1688 bytes per thread on sm_80/sm_90 (measured by tests/monarch_core/test_kernels_aot.py).
MAX_TILE_ELEMENTS = 16384
MAX_TILE_ELEMENTS_4BYTE = 4096
# Triton before 3.9 (3.6 is the GPU machine's) allocates registers less tightly: there complex64 tiles
# (two fp32 planes, four dots per step) over 1024 elements spilled 56-976 bytes per thread on sm_80, and
# the heuristic's bf16 tiles at n = 4096 spilled 40 bytes at (4, 64, 64) and 8-24 at (2, 64, 64)
# (tests/monarch_core/test_kernels_aot.py, run under both versions: test_kernels_aot_triton36.py).
# 3.9 fits the larger tiles (and spills 8 bytes on a 1024-element complex one), so it keeps them.
OLD_TRITON = tuple(int(v) for v in triton.__version__.split(".")[:2]) < (3, 9)
MAX_TILE_ELEMENTS_COMPLEX_OLD_TRITON = 1024
HEURISTIC_MAX_TILE_ELEMENTS_OLD_TRITON = 4096
MAX_BLOCK_NK_4BYTE = 32  # 64-wide fp32/complex64 operand tiles spilled at n = 4096
# Shared-memory budget of the operand tiles (double-buffered), below Hopper's 228 KiB per SM.
MAX_OPERAND_BYTES = 160 * 1024
# Cap on the fp32 partial sums of the weight gradient (elements), which bounds the batch splits.
MAX_PARTIAL_ELEMENTS = 1 << 24


@triton.jit
def _dot(a, b, acc, GROUP: tl.constexpr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr,
         PRECISION: tl.constexpr):
    """acc + a @ b for (GROUP, M, K) @ (GROUP, K, N); a plain 2-D dot when GROUP == 1."""
    if GROUP == 1:
        c = tl.dot(tl.reshape(a, (M, K)), tl.reshape(b, (K, N)), tl.reshape(acc, (M, N)), input_precision=PRECISION)
        return tl.reshape(c, (1, M, N))
    else:
        return tl.dot(a, b, acc, input_precision=PRECISION)


@triton.jit
def _block_gemm_kernel(
    a_re, a_im, w_re, w_im, o_re, o_im,
    B, NG, N, K,
    sa_b, sa_g, sa_k, sw_g, sw_n, sw_k, so_b, so_g, so_n,
    B_BUCKET, STRIDE_KEY,  # only part of the autotune key
    IS_COMPLEX: tl.constexpr, CONJ_W: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_B: tl.constexpr, GROUP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    # Batch tiles on grid axis 0 (up to 2^31 - 1 programs; axes 1 and 2 stop at 65,535, which capped the
    # batch at ~1M rows); block group × output tile on axis 1 (at most a few thousand programs).
    pid_b = tl.program_id(0)
    pid_gn = tl.program_id(1)
    n_tiles = tl.cdiv(N, BLOCK_N)
    g = ((pid_gn // n_tiles) * GROUP + tl.arange(0, GROUP)[:, None, None]).to(tl.int64)  # (G, 1, 1)
    n = (pid_gn % n_tiles) * BLOCK_N + tl.arange(0, BLOCK_N)[None, None, :]  # (1, 1, BN)
    b = (pid_b * BLOCK_B + tl.arange(0, BLOCK_B)[None, :, None]).to(tl.int64)  # (1, BB, 1)
    ka = tl.arange(0, BLOCK_K)[None, None, :]  # inner index of the a tile (G, BB, BK)
    kw = tl.arange(0, BLOCK_K)[None, :, None]  # inner index of the wᵀ tile (G, BK, BN)
    row_ok = (g < NG) & (b < B)
    acc_re = tl.zeros((GROUP, BLOCK_B, BLOCK_N), dtype=tl.float32)
    acc_im = tl.zeros((GROUP, BLOCK_B, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        a_mask = row_ok & (k0 + ka < K)
        a_off = b * sa_b + g * sa_g + (k0 + ka) * sa_k
        w_mask = (g < NG) & (n < N) & (k0 + kw < K)
        w_off = g * sw_g + n * sw_n + (k0 + kw) * sw_k
        ar = tl.load(a_re + a_off, mask=a_mask, other=0.0)
        wr = tl.load(w_re + w_off, mask=w_mask, other=0.0)
        acc_re = _dot(ar, wr, acc_re, GROUP, BLOCK_B, BLOCK_N, BLOCK_K, PRECISION)
        if IS_COMPLEX:
            ai = tl.load(a_im + a_off, mask=a_mask, other=0.0)
            wi = tl.load(w_im + w_off, mask=w_mask, other=0.0)
            if CONJ_W:
                wi = -wi
            acc_re = _dot(ai, -wi, acc_re, GROUP, BLOCK_B, BLOCK_N, BLOCK_K, PRECISION)
            acc_im = _dot(ar, wi, acc_im, GROUP, BLOCK_B, BLOCK_N, BLOCK_K, PRECISION)
            acc_im = _dot(ai, wr, acc_im, GROUP, BLOCK_B, BLOCK_N, BLOCK_K, PRECISION)
    o_off = b * so_b + g * so_g + n * so_n
    o_mask = row_ok & (n < N)
    tl.store(o_re + o_off, acc_re.to(o_re.dtype.element_ty), mask=o_mask)
    if IS_COMPLEX:
        tl.store(o_im + o_off, acc_im.to(o_im.dtype.element_ty), mask=o_mask)


@triton.jit
def _block_weight_grad_kernel(
    go_re, go_im, a_re, a_im, dw_re, dw_im,  # dw: fp32 partial sums (SPLIT, NG, N, K), contiguous
    B, NG, N, K, SPLIT,
    sgo_b, sgo_g, sgo_n, sa_b, sa_g, sa_k,
    B_BUCKET, STRIDE_KEY,  # only part of the autotune key
    IS_COMPLEX: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_B: tl.constexpr, GROUP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_gnk = tl.program_id(0)
    split = tl.program_id(1)  # this program sums batch tiles split, split + SPLIT, ...
    n_tiles = tl.cdiv(N, BLOCK_N)
    k_tiles = tl.cdiv(K, BLOCK_K)
    tile = pid_gnk % (n_tiles * k_tiles)
    g = ((pid_gnk // (n_tiles * k_tiles)) * GROUP + tl.arange(0, GROUP)[:, None, None]).to(tl.int64)
    n = (tile // k_tiles) * BLOCK_N + tl.arange(0, BLOCK_N)[None, :, None]  # go tile read as (G, BN, BB)
    k = (tile % k_tiles) * BLOCK_K + tl.arange(0, BLOCK_K)[None, None, :]  # a tile (G, BB, BK)
    bt = tl.arange(0, BLOCK_B)[None, None, :].to(tl.int64)
    ba = tl.arange(0, BLOCK_B)[None, :, None].to(tl.int64)
    acc_re = tl.zeros((GROUP, BLOCK_N, BLOCK_K), dtype=tl.float32)
    acc_im = tl.zeros((GROUP, BLOCK_N, BLOCK_K), dtype=tl.float32)
    for b0 in range(split * BLOCK_B, B, SPLIT * BLOCK_B):
        go_mask = (g < NG) & (n < N) & (b0 + bt < B)
        go_off = (b0 + bt) * sgo_b + g * sgo_g + n * sgo_n
        a_mask = (g < NG) & (k < K) & (b0 + ba < B)
        a_off = (b0 + ba) * sa_b + g * sa_g + k * sa_k
        gr = tl.load(go_re + go_off, mask=go_mask, other=0.0)
        ar = tl.load(a_re + a_off, mask=a_mask, other=0.0)
        acc_re = _dot(gr, ar, acc_re, GROUP, BLOCK_N, BLOCK_K, BLOCK_B, PRECISION)
        if IS_COMPLEX:  # go · conj(a)
            gi = tl.load(go_im + go_off, mask=go_mask, other=0.0)
            ai = tl.load(a_im + a_off, mask=a_mask, other=0.0)
            acc_re = _dot(gi, ai, acc_re, GROUP, BLOCK_N, BLOCK_K, BLOCK_B, PRECISION)
            acc_im = _dot(gi, ar, acc_im, GROUP, BLOCK_N, BLOCK_K, BLOCK_B, PRECISION)
            acc_im = _dot(gr, -ai, acc_im, GROUP, BLOCK_N, BLOCK_K, BLOCK_B, PRECISION)
    dw_off = ((split * NG + g) * N + n) * K + k
    dw_mask = (g < NG) & (n < N) & (k < K)
    tl.store(dw_re + dw_off, acc_re, mask=dw_mask)
    if IS_COMPLEX:
        tl.store(dw_im + dw_off, acc_im, mask=dw_mask)


# ---- autotuning (GPU only) -------------------------------------------------------------------------

def _pow2(v: int, lo: int = 16) -> int:
    return max(lo, triton.next_power_of_2(int(v)))


def _configs():
    out = []
    for block_b in (16, 32, 64, 128):
        for group in (1, 2, 4, 8, 16):
            for block_nk in (16, 32, 64, 128):
                for warps in (4, 8):
                    out.append(triton.Config(dict(BLOCK_B=block_b, GROUP=group, BLOCK_N=block_nk, BLOCK_K=block_nk),
                                             num_warps=warps, num_stages=2))
    return out


def _prune(configs, named_args, **kwargs):
    """Keep the widest tiles (up to the block size, ≤ 128) that fit the register and shared-memory budgets."""
    args = {**named_args, **kwargs}
    n, k, ng = args["N"], args["K"], args["NG"]
    planes = 2 if args["IS_COMPLEX"] else 1
    element = args["a_re"].element_size() if "a_re" in args else args.get("ELEMENT", 4)
    weight_grad = "SPLIT" in args  # its accumulator is (GROUP, BLOCK_N, BLOCK_K), the batch is reduced
    want = min(_pow2(max(n, k)), 128 if element < 4 else MAX_BLOCK_NK_4BYTE)
    budget = MAX_TILE_ELEMENTS_4BYTE if element >= 4 else MAX_TILE_ELEMENTS
    if OLD_TRITON and element >= 4 and planes == 2:
        budget = MAX_TILE_ELEMENTS_COMPLEX_OLD_TRITON
    if weight_grad and element >= 4:  # measured: a real fp32 (4, 32, 32) gradient tile still spills on sm_90
        budget = budget // 2 * planes
    feasible = []
    for c in configs:
        kw = c.kwargs
        g, bb, bn, bk = kw["GROUP"], kw["BLOCK_B"], kw["BLOCK_N"], kw["BLOCK_K"]
        acc = g * bn * (bk if weight_grad else bb) * planes
        operands = g * (bb * bk + bk * bn if not weight_grad else bn * bb + bb * bk) * element * planes * 2
        if bn > want or g > _pow2(ng, 1) or acc > budget or operands > MAX_OPERAND_BYTES:
            continue
        if c.num_warps != _warps(acc, element):  # one warp count per tile size keeps the search short
            continue
        feasible.append(c)
    widest = max((c.kwargs["BLOCK_N"] for c in feasible), default=None)
    kept = [c for c in feasible if c.kwargs["BLOCK_N"] == widest]
    return kept or [triton.Config(dict(BLOCK_B=16, GROUP=1, BLOCK_N=16, BLOCK_K=16), num_warps=4)]


def _warps(acc: int, element: int) -> int:
    """4-byte operands always get 8 warps (their register operands spread over more threads); 16-bit ones
    8 warps only for accumulators over 4096 elements."""
    return 8 if acc > 4096 or element >= 4 else 4


# Batch rows the heuristic prefers: 64 for 16-bit operands; 32 for 4-byte ones, whose 64-row tiles spill,
# (keyed by element size and whether it is the weight-gradient kernel).
HEURISTIC_BLOCK_B = {(2, False): 64, (2, True): 64, (4, False): 32, (4, True): 32}


# Triton adds the tensors' dtypes. STRIDE_KEY says which inner strides are 1 (contiguous rows): a tile
# tuned for unit-stride loads is not the best one for the permuted (stride-l) reads and writes.
_KEY = ["N", "K", "NG", "B_BUCKET", "STRIDE_KEY", "IS_COMPLEX", "PRECISION"]


_KERNELS = {"gemm": _block_gemm_kernel, "wgrad": _block_weight_grad_kernel}


@functools.lru_cache(maxsize=None)
def _tuned(kernel_name: str):
    kernel = _KERNELS[kernel_name]
    return triton.autotune(configs=_configs(), key=_KEY, prune_configs_by={"early_config_prune": _prune})(kernel)


def tuned_configs() -> dict:
    """{kernel: {autotune key: chosen config}} of the autotuned kernels called so far in this process (what
    a GPU run's autotuning found, to compare with `_heuristic`'s tiles); empty without autotuning."""
    if _tuned.cache_info().currsize == 0:
        return {}
    return {name: {str(key): str(config) for key, config in getattr(_tuned(name), "cache", {}).items()}
            for name in _KERNELS}


def _stride_key(*inner_strides: int) -> int:
    """Bit i set when inner stride i is 1 (part of the autotune key)."""
    return sum(1 << i for i, st in enumerate(inner_strides) if st == 1)


def _batch_bucket(batch: int) -> int:
    return 0 if batch <= 256 else (1 if batch <= 8192 else 2)


def _heuristic(args: dict) -> dict:
    """The config used without autotuning (MONARCH_TRITON_AUTOTUNE=0): the first one the pruning keeps
    with HEURISTIC_BLOCK_B batch rows (or the largest group of blocks that fits). Cached: building and pruning the 160
    candidate configs takes ~2 ms, longer than the kernels themselves."""
    element = args["a_re"].element_size()
    return dict(_heuristic_cached("SPLIT" in args, args["N"], args["K"], args["NG"], bool(args["IS_COMPLEX"]), element))


@functools.lru_cache(maxsize=4096)
def _heuristic_cached(weight_grad: bool, n: int, k: int, ng: int, is_complex: bool, element: int) -> tuple:
    args = dict(N=n, K=k, NG=ng, IS_COMPLEX=is_complex, ELEMENT=element)
    if weight_grad:
        args["SPLIT"] = 1
    configs = _prune(_configs(), args)
    if OLD_TRITON and element < 4:
        small = [c for c in configs if c.kwargs["GROUP"] * c.kwargs["BLOCK_N"] * c.kwargs["BLOCK_B"]
                 <= HEURISTIC_MAX_TILE_ELEMENTS_OLD_TRITON]
        configs = small or configs
    rows = HEURISTIC_BLOCK_B[min(element, 4), weight_grad]
    by_size = sorted(configs, key=lambda c: (c.kwargs["BLOCK_B"] != rows, -c.kwargs["GROUP"]))
    return tuple({**by_size[0].kwargs, "num_warps": by_size[0].num_warps}.items())


def _launch(kernel_name: str, grid, args: dict, on_gpu: bool):
    kernel = _KERNELS[kernel_name]
    if not on_gpu:
        kernel[grid(INTERPRETER_CONFIG)](**args, **INTERPRETER_CONFIG)
    elif os.environ.get(AUTOTUNE_ENV, "1") == "0":
        config = _heuristic(args)
        # B_BUCKET and STRIDE_KEY only key the autotuner (the kernel never reads them): held constant here,
        # or their values (0 / 1 / other) would specialise the JIT into extra compiles of the same tile
        kernel[grid(config)](**{**args, "B_BUCKET": 0, "STRIDE_KEY": 0}, **config)
    else:
        _tuned(kernel_name)[grid](**args)


def _check_view(name: str, t: torch.Tensor, extent: tuple, strides: tuple) -> None:
    """The strided view must stay inside t's storage: a wrong stride must fail here, not corrupt memory."""
    last = sum((e - 1) * abs(s) for e, s in zip(extent, strides))
    room = t.untyped_storage().nbytes() // t.element_size() - t.storage_offset()
    if any(e <= 0 for e in extent) or last >= room:
        raise ValueError(f"{name}: view of extent {extent} and strides {strides} overruns its storage ({room} elements)")


# ---- launchers -------------------------------------------------------------------------------------

def block_gemm(a: Planes, a_strides, w: Planes, w_strides, out: Planes, out_strides, *,
               batch: int, blocks: int, n: int, k: int, conj_w: bool = False, precision: str = "ieee") -> None:
    """out[b, g, n] = Σ_k a[b, g, k] · w[g, n, k] for b < batch, g < blocks, written in place.

    a, w, out are (real, imag-or-None) planes; each *_strides gives the element strides of the
    (batch, block, inner) axes of a and out, and of the (block, out, inner) axes of w. All planes of
    one operand share strides; out may be a lower precision than the fp32 accumulator.
    """
    is_complex = a[1] is not None
    if (w[1] is not None) != is_complex or (out[1] is not None) != is_complex:
        raise ValueError("block_gemm: a, w and out must all be real or all have imaginary planes")
    _check_view("a", a[0], (batch, blocks, k), a_strides)
    _check_view("w", w[0], (blocks, n, k), w_strides)
    _check_view("out", out[0], (batch, blocks, n), out_strides)
    args = dict(
        a_re=a[0], a_im=a[1] if is_complex else a[0], w_re=w[0], w_im=w[1] if is_complex else w[0],
        o_re=out[0], o_im=out[1] if is_complex else out[0],
        B=batch, NG=blocks, N=n, K=k,
        sa_b=a_strides[0], sa_g=a_strides[1], sa_k=a_strides[2],
        sw_g=w_strides[0], sw_n=w_strides[1], sw_k=w_strides[2],
        so_b=out_strides[0], so_g=out_strides[1], so_n=out_strides[2],
        B_BUCKET=_batch_bucket(batch), STRIDE_KEY=_stride_key(a_strides[2], w_strides[2], out_strides[2]),
        IS_COMPLEX=is_complex, CONJ_W=conj_w, PRECISION=precision,
    )

    def grid(meta):
        return (triton.cdiv(batch, meta["BLOCK_B"]), triton.cdiv(blocks, meta["GROUP"]) * triton.cdiv(n, meta["BLOCK_N"]))

    _launch("gemm", grid, args, gpu_sm_count(a[0].device) is not None)


def block_weight_grad(go: Planes, go_strides, a: Planes, a_strides, *, batch: int, blocks: int, n: int, k: int,
                      precision: str = "ieee") -> Planes:
    """dw[g, n, k] = Σ_b go[b, g, n] · conj(a[b, g, k]) as fp32 planes of shape (blocks, n, k).

    The batch sum is split over programs (axis 1 of the grid) into fp32 partial sums added here, so a
    large batch with few blocks still fills the GPU, deterministically (no atomics).
    """
    is_complex = a[1] is not None
    _check_view("go", go[0], (batch, blocks, n), go_strides)
    _check_view("a", a[0], (batch, blocks, k), a_strides)
    device = a[0].device
    sms = gpu_sm_count(device)
    if sms is not None:
        split = max(1, min(triton.cdiv(batch, 256), triton.cdiv(4 * sms, blocks), MAX_PARTIAL_ELEMENTS // (blocks * n * k)))
    else:
        split = 1
    planes = 2 if is_complex else 1
    partial = torch.empty((planes, split, blocks, n, k), dtype=torch.float32, device=device)
    args = dict(
        go_re=go[0], go_im=go[1] if is_complex else go[0], a_re=a[0], a_im=a[1] if is_complex else a[0],
        dw_re=partial[0], dw_im=partial[-1],
        B=batch, NG=blocks, N=n, K=k, SPLIT=split,
        sgo_b=go_strides[0], sgo_g=go_strides[1], sgo_n=go_strides[2],
        sa_b=a_strides[0], sa_g=a_strides[1], sa_k=a_strides[2],
        B_BUCKET=_batch_bucket(batch), STRIDE_KEY=_stride_key(go_strides[2], a_strides[2]),
        IS_COMPLEX=is_complex, PRECISION=precision,
    )

    def grid(meta):  # ≤ 4·SMs splits, so axis 1 stays far below its 65,535 cap
        tiles = triton.cdiv(n, meta["BLOCK_N"]) * triton.cdiv(k, meta["BLOCK_K"])
        return (triton.cdiv(blocks, meta["GROUP"]) * tiles, split)

    _launch("wgrad", grid, args, sms is not None)
    dw = partial.sum(dim=1)
    return dw[0], (dw[1] if is_complex else None)
