"""`run.py bench monarch|kernels|steps|gpu` (the PDE and MRI packages register their own benchmarks).

Parsers only: each handler imports its benchmark module (and torch) when it runs, so `run.py --help`
stays fast.
"""

#: sections of `bench gpu`, in run order (benchmarks.gpu runs them)
GPU_SECTIONS = ("sanitizer", "pytest_gpu", "ceilings", "kernels", "kernels_tuned", "dft", "fno_steps", "ns_generation", "mri_steps")
#: training steps `bench steps` can time (benchmarks.steps)
STEP_MODELS = ("fno", "mri", "modl", "ns")
DEFAULT_STEP_MODELS = ("fno", "mri", "modl")  # ns (a 40-frame rollout per step) on request: minutes on a CPU

from common.bench_results import add_result_options  # noqa: E402  (no torch: --help stays fast)


def _bench_monarch(args):
    from benchmarks.monarch import main

    return main(args)


def _bench_kernels(args):
    from benchmarks.kernels import main

    return main(args)


def _bench_steps(args):
    from benchmarks.steps import main

    return main(args)


def _bench_gpu(args):
    from benchmarks.gpu import main

    return main(args)


def register(bench):
    p = bench.add_parser("monarch", help="dense matmul vs monarch_multiply vs torch.fft (CPU or CUDA)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024, 4096], help="transform sizes n")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16", "float16"],
                   help="real dtype of x and the factors")
    p.add_argument("--elements", type=float, nargs="+", default=[2**18, 2**21],
                   help="batch·n per call, so every size moves about the same data (default 2^18 2^21)")
    p.add_argument("--repeats", type=int, default=20, help="timed repetitions (median reported)")
    p.add_argument("--out", default="benchmarks/results", help="folder for the JSON/markdown results")
    add_result_options(p)
    p.set_defaults(func=_bench_monarch)

    k = bench.add_parser("kernels", help="dense vs PyTorch path vs Triton kernels vs torch.fft, against the copy roofline",
                         description="Times forward and forward+backward of dense matmul, the PyTorch Monarch path, "
                         "the Triton kernels and torch.fft, plus the Monarch DFT through the kernels (complex64, bf16, "
                         "fp16 planes); reports GB/s and the fraction of the copy bandwidth measured in the same run. "
                         "On CPU the Triton rows need TRITON_INTERPRET=1 (interpreter: tiny sizes, correctness only).")
    k.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    k.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024, 4096, 16384], help="transform sizes n")
    k.add_argument("--batches", type=int, nargs="+", default=[1, 64, 4096, 16384, 65536], help="batch sizes")
    k.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16", "float16"],
                   help="dtypes to time")
    k.add_argument("--max-elements", type=float, default=2**28, help="skip cases with batch·n above this (memory)")
    k.add_argument("--dense-max-flop", type=float, default=2e13, help="skip dense rows above this many FLOPs per call")
    k.add_argument("--repeats", type=int, default=10, help="timed repetitions (median reported)")
    k.add_argument("--out", default="benchmarks/results", help="folder for kernels_<device>.json/.md/.png")
    add_result_options(k)
    k.set_defaults(func=_bench_kernels)

    p = bench.add_parser("steps", help="training-step time of the FNO and the unrolled MRI network per transform "
                         "kind, side by side (ratios to fft)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_STEP_MODELS), choices=STEP_MODELS,
                   help="which training steps to time: the FNO, the unrolled MRI network, its MoDL (CG) variant, "
                        "the FNO's 40-frame Navier–Stokes rollout (ns)")
    p.add_argument("--kinds", nargs="+", default=None, help="transform kinds (default: all of TRANSFORM_KINDS)")
    p.add_argument("--amp", action="store_true", help="float16 autocast with loss scaling (CUDA only)")
    p.add_argument("--rounds", type=int, default=10, help="timed interleaved rounds (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps of each variant first")
    p.add_argument("--no-profile", action="store_true", help="do not profile when a goal is missed")
    p.add_argument("--out", default="benchmarks/results", help="folder for <device>_steps.json/.md")
    add_result_options(p)
    p.set_defaults(func=_bench_steps)

    p = bench.add_parser("gpu", help="the prepared GPU check: gpu tests, kernels vs cuBLAS/cuFFT with ceilings, "
                         "Monarch DFT in bf16, FNO/MRI steps, NS generation (one run, < 8 min)")
    p.add_argument("--device", default="auto", help="cuda, cuda:N or auto (default)")
    p.add_argument("--budget-s", type=float, default=420.0, help="global time budget; what is left is skipped")
    p.add_argument("--sections", nargs="+", choices=GPU_SECTIONS, default=None, help="run only these (default: all)")
    p.add_argument("--dry-run", action="store_true", help="the same code at tiny sizes on the CPU")
    p.add_argument("--out", default=None, help="results folder (default $OUT/bench-gpu when OUT is "
                   "set, else benchmarks/results; dry run: $OUT/bench-gpu-dry or runs/bench-gpu-dry)")
    p.add_argument("--overwrite", action="store_true", help="replace existing gpu_check.* in --out")
    p.add_argument("--autotune", action="store_true", help="autotune the two-pass kernels in every section "
                   "(default: a fixed heuristic tile per shape; only the kernels_tuned section autotunes)")
    p.add_argument("--in-process", action="store_true", help="run the sections in this process (default: one "
                   "subprocess each, so a CUDA fault in one cannot poison the next)")
    p.set_defaults(func=_bench_gpu)
