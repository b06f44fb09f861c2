"""`run.py bench monarch|kernels|steps|gpu` (the PDE and MRI packages register their own benchmarks)."""


def _bench_monarch(args):
    from benchmarks.monarch import main

    return main(args)


def _bench_kernels(args):
    from benchmarks.kernels import main

    return main(args)


def register(bench):
    from benchmarks.gpu import register as register_gpu
    from benchmarks.steps import register as register_steps

    p = bench.add_parser("monarch", help="dense matmul vs monarch_multiply vs torch.fft (CPU or CUDA)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024, 4096], help="transform sizes n")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16", "float16"],
                   help="real dtype of x and the factors")
    p.add_argument("--elements", type=float, nargs="+", default=[2**18, 2**21],
                   help="batch·n per call, so every size moves about the same data (default 2^18 2^21)")
    p.add_argument("--repeats", type=int, default=20, help="timed repetitions (median reported)")
    p.add_argument("--out", default="benchmarks/results", help="folder for the JSON/markdown results")
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
    k.set_defaults(func=_bench_kernels)
    register_steps(bench)
    register_gpu(bench)
