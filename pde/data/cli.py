"""run.py sub-commands of `pde.data`: ``data <preset>`` (one per preset) and ``bench data``.

The preset table is small and import-light, so it is read at registration; solvers, h5py and torch
are imported only inside the handlers.
"""


def _generate(args):
    from common.device import resolve_device
    from common.errors import ConfigError
    from common.files import check_output_parent
    from pde.data.presets import configure, generate

    # Every option is checked (configure → validate, resolve_device) before any file is created.
    preset = configure(args.preset, n=args.n, res=args.res, gen_res=args.gen_res, dt=args.dt,
                       batch_size=args.batch_size)
    device = resolve_device(args.device)
    if args.seed >= 2 ** 63:  # negative seeds are refused by configure; numpy/torch overflow beyond 64 bits
        raise ConfigError(f"--seed {args.seed}; expected an integer in [0, 2**63)")
    if args.out:
        check_output_parent(args.out)
    path = generate(preset, args.out, seed=args.seed, device=device, overwrite=args.overwrite,
                    progress=not args.quiet)
    print(f"wrote {path} ({preset.n} samples: {preset.n_train} train + {preset.n_test} test)")
    return 0


def _bench(args):
    from pde.data import bench

    if args.dt_study:
        bench.dt_study(gen_res=args.study_res, res=args.study_res, n_samples=args.study_samples,
                       device=args.device, out=args.out, max_time=args.study_max_time, overwrite=args.overwrite)
    else:
        bench.run_bench(args.device, args.out, quick=args.quick, overwrite=args.overwrite,
                        allow_loaded=args.allow_loaded)
    return 0


def register(data=None, bench=None, **_):
    """Add one `data` sub-command per preset and `bench data` to run.py's groups."""
    from common.bench_results import add_result_options
    from pde.data.presets import PRESETS

    if data is not None:
        for name, preset in PRESETS.items():
            p = data.add_parser(name, help=preset.description,
                                description=f"{preset.description}. Default: {preset.n} samples "
                                            f"({preset.n_train} train + {preset.n_test} test), generated at "
                                            f"{preset.gen_res}, stored at {preset.res}.")
            p.add_argument("--n", type=int, help=f"number of samples (default {preset.n})")
            p.add_argument("--res", type=int, help=f"stored resolution (default {preset.res})")
            p.add_argument("--gen-res", type=int, help=f"generation resolution (default {preset.gen_res})")
            p.add_argument("--dt", type=float, help="solver time step (default: the preset's measured choice)")
            p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same file)")
            p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto")
            p.add_argument("--batch-size", type=int, help=f"samples per solver batch (default {preset.batch_size})")
            p.add_argument("--out", help=f"output file (default datasets/{name}.h5)")
            p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
            p.add_argument("--quiet", action="store_true", help="no progress bar")
            p.set_defaults(func=_generate, preset=name)
    if bench is not None:
        p = bench.add_parser("data", help="PDE data: NS solver throughput, tiny presets, --dt-study")
        p.add_argument("--device", default="auto", help="cpu, cuda or auto (CPU is always measured)")
        p.add_argument("--out", default="benchmarks/results", help="folder for JSON / markdown / PNG")
        p.add_argument("--quick", action="store_true", help="fewer timed steps")
        add_result_options(p)
        p.add_argument("--dt-study", action="store_true",
                       help="run the time-step convergence study instead (Δt vs 1e-4 at the recorded times)")
        p.add_argument("--study-res", type=int, default=64, help="grid of the Δt study (default 64)")
        p.add_argument("--study-samples", type=int, default=2, help="samples in the Δt study (default 2)")
        p.add_argument("--study-max-time", type=float,
                       help="cap each preset's final time in the Δt study (default: the preset's T)")
        p.set_defaults(func=_bench)
