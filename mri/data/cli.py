"""run.py sub-commands of `mri.data`: `data mri-sim` (simulated multi-coil dataset in the SKM-TEA
layout) and `bench mri-data` (simulation and reader throughput)."""


def _simulate(args):
    from mri.data.presets import PRESETS
    from mri.data.simulate import simulate_dataset

    config = PRESETS[args.preset].replace(
        source=args.source, coils=args.coils, shape=tuple(args.shape) if args.shape else None,
        slices=args.slices, n_scans=args.n_scans, echoes=args.echoes, seed=args.seed,
        accelerations=tuple(float(a) for a in args.accelerations) if args.accelerations else None,
        snr_db=tuple(args.snr) if args.snr else None)
    out = args.out or f"datasets/mri-sim-{args.preset}"
    paths = simulate_dataset(config, out, progress=not args.quiet)
    print(f"{len(paths)} scans in the SKM-TEA layout under {out}; read them with mri.SkmTeaSlices({out!r})")
    return 0


def _bench(args):
    from mri.data.bench import main

    return main(args)


def register(data, bench):
    """Add `mri-sim` to run.py's `data` group and `mri-data` to its `bench` group."""
    p = data.add_parser("mri-sim", help="simulate multi-coil MRI (MNI152 or phantom anatomy) in the SKM-TEA layout")
    p.add_argument("--preset", default="default", choices=["tiny", "default", "skmtea-like"],
                   help="tiny: 3×4 slices 64², 4 coils (seconds); default: 8×16 slices 256², 8 coils; "
                        "skmtea-like: 512×160, 2 echoes")
    p.add_argument("--source", choices=["mni", "phantom"], help="anatomy: MNI152 (nilearn) or Shepp–Logan")
    p.add_argument("--coils", type=int, help="number of birdcage coils (preset: 8, tiny 4)")
    p.add_argument("--shape", type=int, nargs=2, metavar=("KY", "KZ"), help="slice size, e.g. 256 256 or 512 160")
    p.add_argument("--slices", type=int, help="slices per scan")
    p.add_argument("--n-scans", type=int, help="number of scans (one file each)")
    p.add_argument("--echoes", type=int, choices=[1, 2], help="1 or 2 echoes")
    p.add_argument("--accelerations", type=float, nargs="+", help="Poisson-disc masks to store (default 2 3 4 6 8)")
    p.add_argument("--snr", type=float, nargs="+", metavar="DB",
                   help="per-coil SNR in dB: one value, or LOW HIGH drawn per scan (default 25 35)")
    p.add_argument("--seed", type=int, help="base seed (default 0)")
    p.add_argument("--out", help="output folder (default datasets/mri-sim-<preset>/); reruns resume")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_simulate)

    b = bench.add_parser("mri-data", help="slices/s of the MRI simulation and of the SKM-TEA / fastMRI readers (CPU)")
    b.add_argument("--out", default="benchmarks/results", help="folder for mri_data_<device>.{json,md,png}")
    b.add_argument("--default-slices", type=int, default=4,
                   help="slices simulated at the default preset's size to time it (default 4)")
    b.set_defaults(func=_bench)
