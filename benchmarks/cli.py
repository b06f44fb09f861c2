"""`run.py bench monarch|kernels` (the PDE and MRI packages register their own benchmarks)."""


def _bench_monarch(args):
    from benchmarks.monarch import main

    return main(args)


def register(bench):
    p = bench.add_parser("monarch", help="dense matmul vs monarch_multiply vs torch.fft (CPU or CUDA)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024, 4096])
    p.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16", "float16"])
    p.add_argument("--elements", type=float, default=2**21,
                   help="batch·n per call, so every size moves about the same data (default 2^21)")
    p.add_argument("--repeats", type=int, default=20, help="timed repetitions (median reported)")
    p.add_argument("--out", default="benchmarks/results", help="folder for the JSON/markdown results")
    p.set_defaults(func=_bench_monarch)
