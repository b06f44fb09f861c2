"""One-pass Monarch forward: x read once, y written once, z kept in a per-program scratch tile (L2).

Layout as in monarch_core.factors: x (B, k·p), w1 (k, q, p), w2 (l, s, r), y (B, s·l), l·r = k·q.

The batch is the MMA N dimension (zᵀ = W·xᵀ with N = BLOCK_B): each tl.dot is 2-D, and G blocks of a
factor are stacked into one block-diagonal tile of G·q × G·p (zeros off the diagonal), G chosen so that
the tile has 64 rows (or the whole factor when it is smaller). 64-row 2-D dots are what wgmma needs on
Hopper; the zeros cost G× the factor FLOPs of the block (2× at n = 1024), harmless for a memory-bound
product. A persistent program loops over batch tiles; per tile:

    stage 1   for each group of G1 blocks j:  zᵀ[j·q + c, b] = Σ_i w1[j, c, i] · x[b, j·p + i]
              → written to the program's scratch tile (l·max(r, s) rows × BLOCK_B, batch contiguous)
    barrier
    stage 2   for each group of G2 blocks a:  yᵀ[t·l + a, b] = Σ_α w2[a, t, α] · zᵀ[α·l + a, b]
              ← scratch rows α·l + a: the permutation P is the row addressing (each row one contiguous
                run of BLOCK_B values, so the gather is coalesced); → scratch rows t·l + a (in place: rows
                ≡ a mod l belong to this group alone; a barrier orders its reads before its writes)
    barrier
    stage 3   y[b, e] ← yᵀ[e, b] in chunks of Y_TILE features: transposed on chip, so the global stores
              run along y's unit-stride feature axis in 16-byte vectors (storing the stage-2 dot tiles
              directly wrote 2-byte values 2–8 KiB apart: 32 STG.E.U16 per thread and group)
    barrier   (the next tile overwrites the scratch)

Why a scratch tile and not registers/shared memory: every stage-2 block needs one value of *every*
stage-1 block (an all-to-all exchange). Triton cannot index shared memory, and register tensors can only
be permuted as a whole and not sliced into per-block 2-D dot operands; doing the exchange through MMAs
would cost the dense n² FLOPs. The scratch is (programs × l·max(r, s) × BLOCK_B), reused for every batch
tile, and all programs' scratch together stays within SCRATCH_BUDGET_BYTES (40 MiB, below the 50 MB L2 of
an H100/H200; BLOCK_B shrinks at large n to keep one program per SM inside it), so HBM sees x and y only
— plus the factors, read from L2. The y round trip through the scratch is L2 traffic.

Backward: the existing two-pass kernels (monarch_triton.monarch_backward); z, which they need for ∂w2,
is recomputed by one pass-1 block GEMM instead of being stored by the forward.
Complex inputs are not handled here: the dispatcher keeps the two-pass kernels for complex64/planar.
"""
from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl

from ..factors import check_factors, check_input
from .support import gpu_sm_count, resolve_precision, unsupported_reason

ONE_PASS_ENV = "MONARCH_ONE_PASS"  # "0" keeps the two-pass kernels everywhere (for comparisons)
REAL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
MAX_N = 4096  # largest n routed here (n ≤ 1024 always fits; 4096 when the estimate below fits)
MAX_BLOCK = 64  # largest (padded) block side: one block is at most one 64×64 tile
TILE_ROWS = 64  # rows of a stacked block-diagonal tile on the GPU (wgmma wants 64)
MIN_DIM = 16  # tl.dot needs every dimension ≥ 16 on NVIDIA
PROGRAMS_PER_SM = 2
# GPU configs, chosen by compiling for sm_80 and sm_90 (tests/monarch_core/test_kernels_aot.py): none spills
# at n = 256…4096. 16-bit: 128 batch rows, 8 warps (4 warps spill on sm_80). fp32: 32 rows — 64 rows spill
# (tf32x3 splits both operands; "ieee" multiplies on FMAs with both operands in registers); one stage,
# since prefetching the next group's masked tiles into registers is what spilled with two.
GPU_CONFIGS = {
    "16-bit": dict(BLOCK_B=128, TILE=TILE_ROWS, num_warps=8, num_stages=2),
    "fp32-tf32": dict(BLOCK_B=32, TILE=TILE_ROWS, num_warps=4, num_stages=1),
    "fp32-ieee": dict(BLOCK_B=32, TILE=TILE_ROWS, num_warps=8, num_stages=1),
}
# Scratch of all programs together, below an H100/H200's 50 MB L2 so that it stays resident (the rest of
# L2 holds the factors and the x/y lines in flight). BLOCK_B is halved (down to MIN_DIM) until one program
# per SM of a REFERENCE_SMS device fits it; the launcher then runs as many programs as the budget holds
# (up to PROGRAMS_PER_SM per SM). n = 4096, bf16: 32 rows, 256 KiB a program, 160 programs = 40 MiB.
SCRATCH_BUDGET_BYTES = 40 << 20
REFERENCE_SMS = 132  # H100 / H200 SXM
Y_TILE = 64  # features per chunk of the final scratch → y copy (a 64 × BLOCK_B tile transposed on chip)
SHARED_LIMIT_BYTES = 160 * 1024  # estimate cap (sm_80 opt-in maximum is 164 KiB, sm_90 228 KiB)
# CPU interpreter: small tiles so that tests run several groups, partial groups and several batch tiles
# per program (2 programs).
INTERPRETER_CONFIG = dict(BLOCK_B=16, TILE=32, PROGRAMS=2, Y_TILE=16, num_warps=4, num_stages=1)


@triton.jit
def _one_pass_kernel(
    x_ptr, w1_ptr, w2_ptr, y_ptr, z_ptr,  # z_ptr: scratch (programs, ROWS, BLOCK_B), batch contiguous
    B, K1, Q, P, L, S, R, ROWS,  # ROWS = l·max(r, s): z (k·q = l·r rows), then y (s·l rows) in place
    sx_b, sx_j, sx_i, sw1_j, sw1_c, sw1_i, sw2_a, sw2_t, sw2_r, sy_b, sy_e,
    PRECISION: tl.constexpr, BLOCK_B: tl.constexpr,
    G1: tl.constexpr, QP: tl.constexpr, PP: tl.constexpr,  # stage-1 tile: G1 blocks of QP × PP (padded)
    G2: tl.constexpr, SP: tl.constexpr, RP: tl.constexpr,  # stage-2 tile: G2 blocks of SP × RP
    Y_TILE: tl.constexpr,  # features per chunk of the final scratch → y copy
):
    pid = tl.program_id(0)
    z_base = z_ptr + pid.to(tl.int64) * ROWS * BLOCK_B
    cols = tl.arange(0, BLOCK_B)
    # stage-1 tile: row g·QP + c (block j0 + g, output c), column g'·PP + i (block j0 + g', input i)
    g_m1 = tl.arange(0, G1 * QP) // QP
    c = tl.arange(0, G1 * QP) % QP
    g_k1 = tl.arange(0, G1 * PP) // PP
    i = tl.arange(0, G1 * PP) % PP
    diag1 = (g_m1[:, None] == g_k1[None, :]) & (c[:, None] < Q) & (i[None, :] < P)
    # stage-2 tile: row g·SP + t (block a0 + g, output t), column g'·RP + α
    g_m2 = tl.arange(0, G2 * SP) // SP
    t = tl.arange(0, G2 * SP) % SP
    g_k2 = tl.arange(0, G2 * RP) // RP
    al = tl.arange(0, G2 * RP) % RP
    diag2 = (g_m2[:, None] == g_k2[None, :]) & (t[:, None] < S) & (al[None, :] < R)
    for tile in range(pid, tl.cdiv(B, BLOCK_B), tl.num_programs(0)):
        b = (tile * BLOCK_B + cols).to(tl.int64)  # tile·BLOCK_B < B + BLOCK_B fits int32; b·sx_b may not
        b_ok = b < B
        for j0 in range(0, K1, G1):
            j_m = j0 + g_m1
            j_k = j0 + g_k1
            w = tl.load(w1_ptr + j_m[:, None] * sw1_j + c[:, None] * sw1_c + i[None, :] * sw1_i,
                        mask=diag1 & (j_m[:, None] < K1), other=0.0)
            xt = tl.load(x_ptr + b[None, :] * sx_b + j_k[:, None] * sx_j + i[:, None] * sx_i,
                         mask=(j_k[:, None] < K1) & (i[:, None] < P) & b_ok[None, :], other=0.0)
            z = tl.dot(w, xt, input_precision=PRECISION)  # (G1·QP, BLOCK_B), fp32
            f = j_m * Q + c
            tl.store(z_base + f[:, None] * BLOCK_B + cols[None, :], z.to(z_ptr.dtype.element_ty),
                     mask=(c[:, None] < Q) & (j_m[:, None] < K1))
        tl.debug_barrier()  # stage 2 reads rows that other threads of this program wrote
        for a0 in range(0, L, G2):
            a_m = a0 + g_m2
            a_k = a0 + g_k2
            w = tl.load(w2_ptr + a_m[:, None] * sw2_a + t[:, None] * sw2_t + al[None, :] * sw2_r,
                        mask=diag2 & (a_m[:, None] < L), other=0.0)
            zt = tl.load(z_base + (al * L + a_k)[:, None] * BLOCK_B + cols[None, :],
                         mask=(al[:, None] < R) & (a_k[:, None] < L), other=0.0)
            y = tl.dot(w, zt, input_precision=PRECISION)  # (G2·SP, BLOCK_B)
            # y[b, t·l + a] goes to scratch row t·l + a: rows ≡ a (mod l), which only this group reads (z rows
            # α·l + a); the barrier lets every thread finish reading them first
            tl.debug_barrier()
            tl.store(z_base + (t * L + a_m)[:, None] * BLOCK_B + cols[None, :], y.to(z_ptr.dtype.element_ty),
                     mask=(t[:, None] < S) & (a_m[:, None] < L))
        tl.debug_barrier()  # stage 3 reads rows that other threads wrote
        # stage 3: y rows of this batch tile from the scratch, written along the feature axis (unit stride in
        # y): the transpose runs through shared memory and the global stores become 16-byte vectors, where
        # storing the dot tiles directly scattered 2-byte values 2–8 KiB apart
        for e0 in range(0, S * L, Y_TILE):
            e = e0 + tl.arange(0, Y_TILE)
            e_ok = e < S * L
            v = tl.load(z_base + e[:, None] * BLOCK_B + cols[None, :], mask=e_ok[:, None], other=0.0)
            tl.store(y_ptr + b[None, :] * sy_b + e[:, None] * sy_e, v.to(y_ptr.dtype.element_ty),
                     mask=e_ok[:, None] & b_ok[None, :])
        tl.debug_barrier()  # the next batch tile overwrites the scratch


# ---- tile choice -----------------------------------------------------------------------------------

def _pad(v: int) -> int:
    return max(MIN_DIM, triton.next_power_of_2(int(v)))


def _group(rows: int, cols: int, blocks: int, tile: int) -> int:
    """Blocks stacked per tile: enough for `tile` rows/columns, never more than the (padded) block count."""
    return max(1, min(tile // max(rows, cols), triton.next_power_of_2(blocks)))


def tile_config(k: int, q: int, p: int, l: int, s: int, r: int, element: int, precision: str = "tf32x3",
                interpret: bool = False) -> dict:
    """Launch constants of the one-pass kernel for this layout, element size (bytes) and fp32 precision:
    BLOCK_B, the stacked-tile shapes (G1, QP, PP, G2, SP, RP), num_warps, num_stages (a fresh dict)."""
    return dict(_tile_config_cached(k, q, p, l, s, r, element, precision, interpret))


@functools.lru_cache(maxsize=1024)
def _tile_config_cached(k, q, p, l, s, r, element, precision, interpret) -> tuple:
    if interpret:
        base = INTERPRETER_CONFIG
    elif element == 2:
        base = GPU_CONFIGS["16-bit"]
    else:
        base = GPU_CONFIGS["fp32-ieee" if precision == "ieee" else "fp32-tf32"]
    qp, pp, sp, rp = _pad(q), _pad(p), _pad(s), _pad(r)
    block_b = base["BLOCK_B"]
    while not interpret and block_b > MIN_DIM and REFERENCE_SMS * scratch_rows(l, s, r) * block_b * element > SCRATCH_BUDGET_BYTES:
        block_b //= 2
    return tuple(dict(BLOCK_B=block_b, num_warps=base["num_warps"], num_stages=base["num_stages"],
                      G1=_group(qp, pp, k, base["TILE"]), QP=qp, PP=pp,
                      G2=_group(sp, rp, l, base["TILE"]), SP=sp, RP=rp,
                      Y_TILE=base.get("Y_TILE", Y_TILE)).items())


def scratch_rows(l: int, s: int, r: int) -> int:
    """Rows of a program's scratch tile: z (k·q = l·r rows), overwritten in place by y (s·l rows)."""
    return l * max(r, s)


def scratch_bytes(k: int, q: int, p: int, l: int, s: int, r: int, dtype: torch.dtype, batch: int, sms: int,
                  precision: str = "tf32x3") -> int:
    """Bytes of scratch the launcher allocates for this call on a device with `sms` SMs (all programs)."""
    element = torch.tensor([], dtype=dtype).element_size()
    block_b = tile_config(k, q, p, l, s, r, element, precision)["BLOCK_B"]
    per_program = scratch_rows(l, s, r) * block_b * element
    return _programs(batch, block_b, sms, per_program) * per_program


def shared_memory_estimate(config: dict, element: int) -> int:
    """Bytes of shared memory the two stages' dot operands take (the larger stage), double-buffered."""
    bb = config["BLOCK_B"]
    stage1 = config["G1"] * config["QP"] * config["G1"] * config["PP"] + config["G1"] * config["PP"] * bb
    stage2 = config["G2"] * config["SP"] * config["G2"] * config["RP"] + config["G2"] * config["RP"] * bb
    return max(2 * max(stage1, stage2), config["Y_TILE"] * bb) * element  # stage 3: the transpose buffer


def one_pass_applies(n: int, b1: int, b2: int, dtype: torch.dtype) -> bool:
    """Whether the one-pass kernel takes the square layout w1 (b1, b2, b2), w2 (b2, b1, b1) of size n = b1·b2
    for this dtype (see `layout_applies` for any layout). Complex dtypes keep the two-pass kernels."""
    if b1 * b2 != n:
        return False
    return layout_applies((b1, b2, b2), (b2, b1, b1), dtype)


def layout_applies(w1_shape, w2_shape, dtype: torch.dtype) -> bool:
    """Whether the one-pass kernel takes factors of these shapes and dtype (real dtypes, n ≤ MAX_N, blocks
    at most MAX_BLOCK on a side, the operand tiles within SHARED_LIMIT_BYTES)."""
    if dtype not in REAL_DTYPES or os.environ.get(ONE_PASS_ENV, "1") == "0":
        return False
    k, q, p = (int(v) for v in w1_shape)
    l, s, r = (int(v) for v in w2_shape)
    if max(k * p, s * l, k * q) > MAX_N or max(_pad(q), _pad(p), _pad(s), _pad(r)) > MAX_BLOCK:
        return False
    element = torch.tensor([], dtype=dtype).element_size()
    return all(shared_memory_estimate(tile_config(k, q, p, l, s, r, element, precision), element) <= SHARED_LIMIT_BYTES
               for precision in ("ieee", "tf32x3"))


def _programs(batch: int, block_b: int, sms: int | None, scratch_per_program: int) -> int:
    tiles = triton.cdiv(batch, block_b)
    if sms is None:
        return min(tiles, INTERPRETER_CONFIG["PROGRAMS"])
    return max(1, min(tiles, PROGRAMS_PER_SM * sms, SCRATCH_BUDGET_BYTES // max(scratch_per_program, 1)))


# ---- launcher --------------------------------------------------------------------------------------

def one_pass_forward(x2: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, precision: str,
                     transposed: bool = False) -> torch.Tensor:
    """y (B, s·l) = M x for x2 (B, k·p) (x2[b, i·k + j] as element i of block j when transposed); any strides.

    Real dtypes only (float32 / bfloat16 / float16); precision is tl.dot's input_precision for fp32.
    """
    k, q, p = w1.shape
    l, s, r = w2.shape
    batch = x2.shape[0]
    if x2.dim() != 2 or x2.shape[1] != k * p:
        raise ValueError(f"one_pass_forward: x must be (B, {k * p}) for w1 {tuple(w1.shape)}, got {tuple(x2.shape)}")
    if x2.dtype not in REAL_DTYPES or w1.dtype != x2.dtype or w2.dtype != x2.dtype:
        raise TypeError(f"one_pass_forward: x, w1, w2 must share one real dtype of {REAL_DTYPES}, got "
                        f"{x2.dtype}, {w1.dtype}, {w2.dtype}")
    y = torch.empty((batch, s * l), dtype=x2.dtype, device=x2.device)
    if batch == 0:
        return y
    element = x2.element_size()
    sms = gpu_sm_count(x2.device)
    config = tile_config(k, q, p, l, s, r, element, precision, interpret=sms is None)
    launch = dict(num_warps=config.pop("num_warps"), num_stages=config.pop("num_stages"))
    bb = config["BLOCK_B"]
    rows = scratch_rows(l, s, r)
    programs = _programs(batch, bb, sms, rows * bb * element)
    scratch = torch.empty((programs, rows, bb), dtype=x2.dtype, device=x2.device)
    sb, se = x2.stride()
    sx_j, sx_i = (se, k * se) if transposed else (p * se, se)
    _one_pass_kernel[(programs,)](
        x2, w1, w2, y, scratch,
        batch, k, q, p, l, s, r, rows,
        sb, sx_j, sx_i, *w1.stride(), *w2.stride(), *y.stride(),
        PRECISION=precision, **config, **launch,
    )
    return y


class _OnePassMultiply(torch.autograd.Function):
    """y = M x with the one-pass forward; backward on the two-pass kernels (z recomputed by pass 1)."""

    @staticmethod
    def forward(ctx, x2, w1, w2, precision, transposed):
        ctx.save_for_backward(x2, w1, w2)
        ctx.precision, ctx.transposed = precision, transposed
        return one_pass_forward(x2, w1, w2, precision, transposed)

    @staticmethod
    def backward(ctx, gy):
        from .monarch_triton import intermediate, monarch_backward

        x2, w1, w2 = ctx.saved_tensors
        need_x, need_w1, need_w2 = ctx.needs_input_grad[:3]
        z = intermediate((x2, None), (w1, None), ctx.precision, ctx.transposed) if need_w2 else None
        gx = torch.empty_like(x2, memory_format=torch.contiguous_format) if need_x else None
        gw1, gw2 = monarch_backward((gy, None), (x2, None), z, (w1, None), (w2, None), (gx, None),
                                    ctx.precision, ctx.transposed, need_w1, need_w2)
        gw1 = None if gw1 is None else gw1[0].to(w1.dtype)
        gw2 = None if gw2 is None else gw2[0].to(w2.dtype)
        return gx, gw1, gw2, None, None


def monarch_multiply_one_pass(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, precision: str | None = None,
                              input_transposed: bool = False) -> torch.Tensor:
    """y = M x along the last axis with the one-pass kernel; differentiable in x, w1, w2.

    Args:
        x: (..., k·p) float32 / bfloat16 / float16, CUDA (or CPU under TRITON_INTERPRET=1); any strides.
        w1: (k, q, p), w2: (l, s, r), l·r = k·q, same dtype and device; blocks ≤ 64 on a side.
        precision: fp32 dot precision "ieee" | "tf32x3" | "tf32" (None: MONARCH_FP32_PRECISION, else tf32x3).
        input_transposed: read x[..., i·k + j] as element i of block j (the DFT input permutation).
    Returns:
        y: (..., s·l), dtype of x.
    Raises:
        ValueError / TypeError for shapes or dtypes this kernel does not take (see `layout_applies`);
        RuntimeError when the Triton kernels cannot run on this device.
    """
    k, q, p, l, s, r = check_factors(w1, w2)
    check_input(x, w1, w2, k * p)
    reason = unsupported_reason(x, w1, w2)
    if reason is not None:
        raise RuntimeError(f"monarch_multiply_one_pass cannot run this call: {reason}")
    if x.dtype not in REAL_DTYPES or max(_pad(q), _pad(p), _pad(s), _pad(r)) > MAX_BLOCK:
        raise ValueError(f"monarch_multiply_one_pass takes real dtypes {REAL_DTYPES} with blocks ≤ {MAX_BLOCK} a "
                         f"side; got {x.dtype}, w1 {tuple(w1.shape)}, w2 {tuple(w2.shape)}: use monarch_multiply_triton")
    y = _OnePassMultiply.apply(x.reshape(-1, k * p), w1, w2, resolve_precision(precision, x.dtype),
                               bool(input_transposed))
    return y.reshape(*x.shape[:-1], s * l)
