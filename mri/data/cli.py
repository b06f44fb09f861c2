"""run.py sub-commands of `mri.data`: `data mri-sim` (simulated multi-coil dataset in the SKM-TEA
layout), `data import-bart` (BART .cfl arrays → that layout) and `bench mri-data` (simulation and reader throughput)."""


def _check_out_folder(out) -> None:
    """ConfigError before anything is written when `out` is a file, sits under a file, or is a folder of
    other files (no meta.json of a simulated dataset): the simulation would mix its scans into them."""
    from common.errors import ConfigError
    from common.files import check_output_parent

    out = check_output_parent(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; expected a folder for the scans", hint="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / "meta.json").exists():
        raise ConfigError(f"--out {out} is a non-empty folder that holds no simulated dataset (no meta.json)",
                          hint="choose a new or empty folder, or the folder of an earlier `data mri-sim` run")


def _simulate(args):
    from common.errors import ConfigError
    from mri.data.mismatch import parse_mismatch
    from mri.data.presets import PRESETS
    from mri.data.simulate import read_splits, simulate_dataset

    split_counts = (args.n_train_scans, args.n_val_scans, args.n_test_scans)
    if args.n_scans is not None and any(n is not None for n in split_counts):
        raise ConfigError("--n-scans and --n-train/val/test-scans were both given; use one or the other")
    config = PRESETS[args.preset].replace(
        source=args.source, coils=args.coils, shape=tuple(args.shape) if args.shape else None,
        slices=args.slices, n_scans=args.n_scans, n_train=args.n_train_scans, n_val=args.n_val_scans,
        n_test=args.n_test_scans, echoes=args.echoes, seed=args.seed,
        accelerations=tuple(float(a) for a in args.accelerations) if args.accelerations else None,
        snr_db=tuple(args.snr) if args.snr else None, **parse_mismatch(args.mismatch))
    out = args.out or f"datasets/mri-sim-{args.preset}"
    _check_out_folder(out)
    if args.seed is not None and not 0 <= args.seed < 2 ** 31:  # numpy / torch seeds of each scan
        raise ConfigError(f"--seed {args.seed}; expected an integer in [0, 2**31)")
    paths = simulate_dataset(config.validate(), out, progress=not args.quiet)
    sizes = ", ".join(f"{len(v)} {k}" for k, v in read_splits(out).items())
    print(f"{len(paths)} scans ({sizes}; one subject each, splits in {out}/meta.json) in the SKM-TEA layout "
          f"under {out}; read them with mri.SkmTeaSlices({out!r}, scans=...)")
    return 0


def _import_bart(args):
    from mri.data.bart_import import import_bart

    meta = import_bart(args.kspace, args.maps, args.out, args.mask, args.reference, args.splits,
                       args.accelerations or (), args.seed, args.overwrite)
    sizes = ", ".join(f"{len(v)} {k}" for k, v in meta["splits"].items())
    print(f"{sum(len(v) for v in meta['splits'].values())} scans ({sizes}) in the SKM-TEA layout under {args.out}; "
          f"masks at accelerations {meta['accelerations']} (run.py mri train/eval --data {args.out} --acceleration R)")
    return 0


def _bench(args):
    from mri.data.bench import main

    return main(args)


def register(data, bench):
    """Add `mri-sim` to run.py's `data` group and `mri-data` to its `bench` group."""
    from common.bench_results import add_result_options
    from mri.data.presets import PRESETS

    p = data.add_parser("mri-sim", help="simulate multi-coil MRI (MNI152 or phantom anatomy) in the SKM-TEA layout")
    p.add_argument("--preset", default="default", choices=list(PRESETS),
                   help="tiny: 1+1+1 scans × 4 slices 64², 4 coils (seconds); default: 5+1+2 scans × 16 slices "
                        "256², 8 coils; skmtea-like: 512×160, 2 echoes; protocol-cpu: 8+2+10 subjects × 4 slices "
                        "64², 6 coils (≈1 min); protocol-gpu: 32+4+16 × 8 slices 128², 8 coils; *-mismatch: "
                        "the same with b0=60,delay=0.3")
    p.add_argument("--source", choices=["mni", "phantom", "mixed"],
                   help="anatomy: deformed MNI152 subjects (nilearn), perturbed 3-D Shepp–Logan, or mixed "
                        "(every 4th subject of a split a phantom)")
    p.add_argument("--coils", type=int, help="number of birdcage coils (preset: 8, tiny 4)")
    p.add_argument("--shape", type=int, nargs=2, metavar=("KY", "KZ"), help="slice size, e.g. 256 256 or 512 160")
    p.add_argument("--slices", type=int, help="slices per scan")
    p.add_argument("--n-scans", type=int, help="total scans (one file and one subject each), split ≈ 5:1:2 "
                   "into train/val/test; or give the three counts below")
    p.add_argument("--n-train-scans", type=int, help="training subjects (scans SIM_000 …)")
    p.add_argument("--n-val-scans", type=int, help="validation subjects (the next scans)")
    p.add_argument("--n-test-scans", type=int, help="test subjects (the last scans)")
    p.add_argument("--mismatch", metavar="KEY=VALUE,...",
                   help="model-mismatch track: b0=<peak off-resonance Hz>, delay=<gradient delay, readout "
                        "samples>, bw=<Hz/pixel, default 250>, maps=espirit|true; e.g. b0=60,delay=0.3")
    p.add_argument("--echoes", type=int, choices=[1, 2], help="1 or 2 echoes")
    p.add_argument("--accelerations", type=float, nargs="+", help="Poisson-disc masks to store (default 2 3 4 6 8)")
    p.add_argument("--snr", type=float, nargs="+", metavar="DB",
                   help="per-coil SNR in dB: one value, or LOW HIGH drawn per scan (default 25 35)")
    p.add_argument("--seed", type=int, help="base seed (default 0)")
    p.add_argument("--out", help="output folder (default datasets/mri-sim-<preset>/); reruns resume")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_simulate)

    q = data.add_parser("import-bart", help="BART .cfl k-space + maps (+ mask, reference) → a dataset for mri train/eval")
    q.add_argument("--kspace", nargs="+", required=True, metavar="CFL",
                   help="BART k-space per scan: (X, Y, 1, coils), slices in dim 13")
    q.add_argument("--maps", nargs="+", required=True, metavar="CFL", help="ESPIRiT maps (bart ecalib), one or one per scan")
    q.add_argument("--mask", nargs="+", metavar="CFL", help="sampling pattern(s), e.g. from bart poisson")
    q.add_argument("--reference", nargs="+", metavar="CFL",
                   help="reference images per scan (default: SENSE combination of the k-space)")
    q.add_argument("--accelerations", type=float, nargs="+", help="also draw Poisson-disc masks at these R")
    q.add_argument("--splits", type=int, nargs=3, metavar=("TRAIN", "VAL", "TEST"),
                   help="scan counts per split, in --kspace order (default: all train)")
    q.add_argument("--seed", type=int, default=0, help="seed of the drawn masks")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    q.set_defaults(func=_import_bart)

    b = bench.add_parser("mri-data", help="slices/s of the MRI simulation and of the SKM-TEA / fastMRI readers (CPU)")
    b.add_argument("--out", default="benchmarks/results", help="folder for mri_data_<device>.{json,md,png}")
    b.add_argument("--default-slices", type=int, default=4,
                   help="slices simulated at the default preset's size to time it (default 4)")
    add_result_options(b)
    b.set_defaults(func=_bench)
