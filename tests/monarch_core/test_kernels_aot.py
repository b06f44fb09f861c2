"""Ahead-of-time compile of the Triton kernels for sm_80 and sm_90 (no GPU needed: ptxas ships in the wheel).

Every kernel × dtype (fp32 "ieee", fp32 "tf32", fp32 "tf32x3", bf16, fp16, complex64 as planes) × the
configs the dispatcher can choose (the cached heuristic config, plus the GROUP = 1 / 64-row tile the
autotuner can pick) at representative sizes, and the one-pass forward (kernels/one_pass.py) with the
config its launcher picks, specialised as the JIT launcher would specialise real calls (ints equal to 1
become constexpr, pointers and ints divisible by 16 get tt.divisibility = 16). Fails on a compile error,
any register spill, or shared memory above the target's per-block limit; checks that the bf16 64-row
single-block two-pass tile and the 16-bit one-pass forward (n ≥ 1024) lower to wgmma on sm_90.
"""
import re
import time

import pytest
import torch

triton = pytest.importorskip("triton")
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from monarch_core.kernels import block_gemm, one_pass  # noqa: E402

SHARED_LIMIT = {80: 164 * 1024, 90: 228 * 1024}  # bytes per block (opt-in maximum)
TRITON_TYPE = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
# (name, element dtype of the planes, complex, fp32 precision)
DTYPES = [("fp32", torch.float32, False, "ieee"), ("tf32", torch.float32, False, "tf32"),
          ("tf32x3", torch.float32, False, "tf32x3"), ("bf16", torch.bfloat16, False, "tf32"),
          ("fp16", torch.float16, False, "tf32"), ("complex64", torch.float32, True, "tf32x3")]
POINTERS = {"gemm": ("a_re", "a_im", "w_re", "w_im", "o_re", "o_im"),
            "wgrad": ("go_re", "go_im", "a_re", "a_im", "dw_re", "dw_im"),
            "one_pass": ("x_ptr", "w1_ptr", "w2_ptr", "y_ptr", "z_ptr")}
KERNELS = {**block_gemm._KERNELS, "one_pass": one_pass._one_pass_kernel}


def _int_type(value: int) -> str:
    return "i32" if -2**31 <= value < 2**31 else "i64"


def specialise(kernel, values: dict, pointer_types: dict):
    """(signature, constexprs, attrs) for ASTSource, as the JIT launcher specialises a call with these values.

    values: every non-pointer argument (ints, bools, strings, tile constexprs); pointer_types: name → "*bf16"…
    Pointers from torch allocations are 16-byte aligned, so they get tt.divisibility like the launcher's.
    """
    signature, constexprs, attrs = {}, {}, {}
    for index, param in enumerate(kernel.params):
        name = param.name
        if name in pointer_types:
            signature[name] = pointer_types[name]
            attrs[(index,)] = [["tt.divisibility", 16]]
            continue
        value = values[name]
        if param.is_constexpr or not isinstance(value, int) or isinstance(value, bool) or value == 1:
            signature[name] = "constexpr"
            constexprs[name] = value
            continue
        signature[name] = _int_type(value)
        if value % 16 == 0:
            attrs[(index,)] = [["tt.divisibility", 16]]
    return signature, constexprs, attrs


def _cases():
    """(id, kernel name, values, pointer types, config, expect_wgmma)."""
    cases = []
    batch = 4096
    for n in (256, 1024, 4096):
        m = int(n ** 0.5)
        for dname, dtype, is_complex, precision in DTYPES:
            if ((n == 256 and dname != "bf16") or (n == 4096 and dname not in ("fp32", "bf16", "complex64"))
                    or dname == "tf32"):  # tf32 has tf32x3's tiles (one product instead of three)
                continue  # representative subset: keeps the test within its ~2-minute budget
            element = torch.tensor([], dtype=dtype).element_size()
            ptr = "*" + TRITON_TYPE[dtype]
            # pass 1 (x → z, contiguous rows) and pass 2 (z → y, permuted: inner stride l)
            passes = {"pass1": (n, m, 1, n, m, 1), "pass2": (n, 1, m, n, 1, m)}
            for pname, (sa_b, sa_g, sa_k, so_b, so_g, so_n) in passes.items():
                values = dict(B=batch, NG=m, N=m, K=m, sa_b=sa_b, sa_g=sa_g, sa_k=sa_k, sw_g=m * m, sw_n=m, sw_k=1,
                              so_b=so_b, so_g=so_g, so_n=so_n, B_BUCKET=1, STRIDE_KEY=block_gemm._stride_key(sa_k, 1, so_n),
                              IS_COMPLEX=is_complex, CONJ_W=False, PRECISION=precision)
                heuristic = block_gemm._heuristic(dict(a_re=torch.empty(0, dtype=dtype), N=m, K=m, NG=m, IS_COMPLEX=is_complex))
                configs = {"heuristic": heuristic, "group1": dict(BLOCK_B=64, GROUP=1, BLOCK_N=min(64, m),
                                                                  BLOCK_K=min(64, m), num_warps=4)}
                if dname != "bf16" or n == 256:
                    configs.pop("group1")
                for cname, config in configs.items():
                    wgmma = dname == "bf16" and n >= 1024 and cname == "group1"
                    cases.append((f"gemm-{pname}-{dname}-n{n}-{cname}", "gemm", values,
                                  {p: ptr for p in POINTERS["gemm"]}, config, wgmma))
            if n == 1024 and dname in ("fp32", "bf16", "complex64"):  # weight gradient: fp32 partial sums out
                values = dict(B=batch, NG=m, N=m, K=m, SPLIT=4, sgo_b=n, sgo_g=1, sgo_n=m, sa_b=n, sa_g=1, sa_k=m,
                              B_BUCKET=1, STRIDE_KEY=0, IS_COMPLEX=is_complex, PRECISION=precision)
                config = block_gemm._heuristic(dict(a_re=torch.empty(0, dtype=dtype), N=m, K=m, NG=m,
                                                    IS_COMPLEX=is_complex, SPLIT=4))
                types = {p: (ptr if not p.startswith("dw") else "*fp32") for p in POINTERS["wgrad"]}
                cases.append((f"wgrad-{dname}-n{n}", "wgrad", values, types, config, False))
    return cases + _one_pass_cases()


def _one_pass_cases():
    """The one-pass forward (square layouts, contiguous x and y) with the config its launcher picks."""
    cases = []
    for n, dname in [(256, "bf16"), (1024, "bf16"), (1024, "fp16"), (1024, "tf32x3"), (1024, "fp32"), (4096, "bf16"),
                     (4096, "tf32x3")]:
        _, dtype, _, precision = next(d for d in DTYPES if d[0] == dname)
        m = int(n ** 0.5)
        element = torch.tensor([], dtype=dtype).element_size()
        assert one_pass.one_pass_applies(n, m, m, dtype)
        config = one_pass.tile_config(m, m, m, m, m, m, element, precision)
        values = dict(B=4096, K1=m, Q=m, P=m, L=m, S=m, R=m, ROWS=one_pass.scratch_rows(m, m, m), sx_b=n, sx_j=m, sx_i=1, sw1_j=m * m, sw1_c=m, sw1_i=1,
                      sw2_a=m * m, sw2_t=m, sw2_r=1, sy_b=n, sy_e=1, PRECISION=precision)
        wgmma = element == 2 and n >= 1024
        cases.append((f"one_pass-{dname}-n{n}", "one_pass", values,
                      {p: "*" + TRITON_TYPE[dtype] for p in POINTERS["one_pass"]}, config, wgmma))
    return cases


CASES = _cases()


def _compile(kernel_name, values, pointer_types, config, capability):
    kernel = KERNELS[kernel_name]
    config = dict(config)
    num_warps = config.pop("num_warps")
    num_stages = config.pop("num_stages", 2)  # block_gemm's autotune configs all use 2
    signature, constexprs, attrs = specialise(kernel, {**values, **config}, pointer_types)
    source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs)
    return triton.compile(source, target=GPUTarget("cuda", capability, 32),
                          options={"num_warps": num_warps, "num_stages": num_stages})


def test_specialise_follows_the_launcher_rules():
    kernel = block_gemm._KERNELS["gemm"]
    values = dict(B=4096, NG=32, N=32, K=1, sa_b=1024, sa_g=32, sa_k=1, sw_g=1024, sw_n=32, sw_k=1, so_b=1024,
                  so_g=32, so_n=1, B_BUCKET=1, STRIDE_KEY=7, IS_COMPLEX=False, CONJ_W=False, PRECISION="ieee",
                  BLOCK_B=64, GROUP=1, BLOCK_N=32, BLOCK_K=32)
    signature, constexprs, attrs = specialise(kernel, values, {p: "*bf16" for p in POINTERS["gemm"]})
    assert signature["K"] == "constexpr" and constexprs["K"] == 1 and signature["sa_b"] == "i32"
    index = [p.name for p in kernel.params].index("sa_b")
    assert attrs[(index,)] == [["tt.divisibility", 16]] and (index + 2,) not in attrs  # sa_k = 1 is constexpr


@pytest.mark.parametrize("capability", [80, 90])
def test_every_kernel_dtype_and_config_compiles_without_spills(capability):
    start = time.perf_counter()
    failures, wgmma_seen = [], []
    for case_id, kernel_name, values, pointer_types, config, want_wgmma in CASES:
        try:
            compiled = _compile(kernel_name, values, pointer_types, config, capability)
        except Exception as error:  # a compile error is a failure of this case, reported with the others
            failures.append(f"{case_id}: compile error {type(error).__name__}: {str(error)[:200]}")
            continue
        meta = compiled.metadata
        if not isinstance(getattr(meta, "shared", None), int) or "cubin" not in compiled.asm:
            failures.append(f"{case_id}: compiled kernel has no shared-memory size or cubin (Triton API changed?)")
            continue
        # Triton fills n_spills only when a kernel is loaded on a GPU: read the cubin's resource usage instead
        spills = _spills_from_asm(compiled)
        if spills:
            failures.append(f"{case_id}: {spills} bytes of register spills")
        if meta.shared > SHARED_LIMIT[capability]:
            failures.append(f"{case_id}: {meta.shared} bytes of shared memory > {SHARED_LIMIT[capability]}")
        if capability == 90 and want_wgmma:
            wgmma_seen.append(case_id)
            if "wgmma" not in compiled.asm["ptx"]:
                failures.append(f"{case_id}: 16-bit forward did not lower to wgmma on sm_90")
    assert not failures, "\n".join(failures)
    if capability == 90:
        assert "one_pass-bf16-n1024" in wgmma_seen, "the bf16 one-pass forward at n = 1024 was not checked for wgmma"
    print(f"sm_{capability}: {len(CASES)} kernels compiled in {time.perf_counter() - start:.1f} s")


def _cuobjdump(compiled, flag: str) -> str:
    """cuobjdump (shipped with the wheel's ptxas) run on the compiled cubin with one flag."""
    import subprocess
    import tempfile
    from pathlib import Path

    import triton.backends.nvidia as nvidia

    cuobjdump = Path(nvidia.__file__).parent / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as handle:
        handle.write(compiled.asm["cubin"])
        handle.flush()
        return subprocess.run([str(cuobjdump), flag, handle.name], capture_output=True, text=True).stdout


def _resource_usage(compiled) -> tuple[int, int]:
    """(registers per thread, stack bytes) from the cubin's resource usage."""
    text = _cuobjdump(compiled, "-res-usage")
    usage = re.findall(r"REG:(\d+) STACK:(\d+)", text)
    assert usage, f"cuobjdump -res-usage gave no resource line:\n{text[:500]}"
    return max(int(reg) for reg, _ in usage), sum(int(stack) for _, stack in usage)


def _spills_from_asm(compiled) -> int:
    """Spill bytes: the stack frame, where spilled registers go."""
    return _resource_usage(compiled)[1]


# ---- the one-pass forward: wide y stores, two programs per SM, scratch inside L2 (issue 22, item 4) ----

L2_BYTES = 50_000_000  # H100 / H200 L2 (50 MB)
SM90_REGISTERS, SM90_SHARED = 65536, 228 * 1024  # per SM


def _global_store_bytes(ptx: str) -> list[tuple[str, int]]:
    """(instruction, bytes per thread) of every global store in the PTX: st.global[.vN].bW → N·W/8."""
    out = []
    for op in re.findall(r"\bst\.global\S*", ptx):  # cache hints (.L1::…, .cs) may sit between the parts
        vec = re.search(r"\.v(\d+)\b", op)
        width = re.findall(r"\.[bufs](\d+)\b", op)
        assert width, f"cannot read the width of {op!r}"
        out.append((op, int(vec.group(1) if vec else 1) * int(width[-1]) // 8))
    return out


def test_global_store_widths_are_read_from_ptx():
    ptx = "st.global.b16 [%rd1], %rs1;\n st.global.v4.b32 [%rd2], {%r1, %r2, %r3, %r4};\n" \
          "st.global.L1::no_allocate.v2.b32 [%rd3], {%r5, %r6};\n @%p1 st.global.f32 [%rd4], %f1;"
    assert [size for _, size in _global_store_bytes(ptx)] == [2, 16, 8, 4]


@pytest.mark.parametrize("case", [c for c in _one_pass_cases()], ids=lambda c: c[0])
def test_one_pass_writes_16_byte_vectors_and_fits_two_programs_per_sm(case):
    """No global store of the one-pass kernel (y, and the z/y scratch) is narrower than a 16-byte vector on
    sm_90 (PTX st.global…, SASS STG.E.*): y used to be written as 32 scattered STG.E.U16 per thread and
    group. Registers and shared memory leave room for two programs per SM."""
    case_id, kernel_name, values, pointer_types, config, _ = case
    compiled = _compile(kernel_name, values, pointer_types, config, 90)
    stores = _global_store_bytes(compiled.asm["ptx"])
    assert stores, "no global store found in the PTX (instruction syntax changed?)"
    narrow = sorted({op for op, size in stores if size < 16})
    assert not narrow, f"{case_id}: global stores narrower than 16 bytes: {narrow}"
    sass_stores = set(re.findall(r"\bSTG\.E[.\w]*", _cuobjdump(compiled, "-sass")))
    assert sass_stores and sass_stores <= {"STG.E.128"}, f"{case_id}: SASS stores {sass_stores}"
    registers, _ = _resource_usage(compiled)
    threads = 32 * config["num_warps"]
    assert 2 * (-(-registers // 8) * 8) * threads <= SM90_REGISTERS, f"{case_id}: {registers} registers"
    assert 2 * compiled.metadata.shared <= SM90_SHARED, f"{case_id}: {compiled.metadata.shared} B shared"


def test_one_pass_scratch_at_n4096_fits_in_l2():
    """All programs' scratch together (what the launcher allocates on a 132-SM H100/H200 for the bench's
    batch) stays below the 50 MB L2, for every real dtype, at n = 4096 and 1024."""
    for n, m in ((4096, 64), (1024, 32)):
        for dtype in one_pass.REAL_DTYPES:
            for precision in ("tf32x3", "ieee"):
                total = one_pass.scratch_bytes(m, m, m, m, m, m, dtype, batch=2 ** 25 // n, sms=132,
                                               precision=precision)
                assert 0 < total <= min(L2_BYTES, one_pass.SCRATCH_BUDGET_BYTES), (n, dtype, precision, total)
    # the old sizing (programs never below the SM count, 128 rows) took 132 MiB here: the check can fail
    assert 132 * 4096 * 128 * 2 > L2_BYTES
