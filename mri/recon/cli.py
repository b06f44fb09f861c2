"""run.py sub-commands: `mri train|eval|compare|study` and `bench mri`. Handlers import torch lazily.

`mri study PRESET|SPEC` is the shared study engine (`common.study`) with the MRI application
(`mri.recon.study`) and its presets (`mri.recon.study_presets`); it replaces the old `mri protocol`.

`mri compare` is its untuned special case (`mri.recon.compare`: fixed options, the Tables 4/5 cells).
The training options of `mri train` and `mri compare` come from `training.TrainConfig` (default,
type and help written there once); model names from the registry (`model_names`).
"""
from common.bench_results import add_result_options
from common.config_cli import add_options, options_from_args
from mri.recon.model_names import DEFAULT_MODELS, NAMES_HELP
from mri.recon.training import TrainConfig

MODEL_SIZE_OPTIONS = (("steps", int), ("resblocks", int), ("channels", int), ("step-size", float),
                      ("cg-iters", int), ("cg-lambda", float), ("unet-chans", int), ("unet-pools", int))
COMPARE_EXCLUDE = ("data_dir", "acceleration", "n_train_scans", "train_scans", "val_scans", "out_dir", "run_name",
                   "resume", "overwrite", "epochs", "device", "progress", "mask_pool_dir", "trust_checkpoint")


def _add_model_options(p):
    # dest "model_<name>": the model's --step-size must not share `step_size` with TrainConfig's --lr-step-size
    for name, kind in MODEL_SIZE_OPTIONS:
        p.add_argument(f"--{name}", type=kind, default=None, metavar="N" if kind is int else "NUMBER",
                       dest="model_" + name.replace("-", "_"), help="override this setting of --scale (default: the scale's)")


def _model_kwargs(args) -> dict:
    keys = [name.replace("-", "_") for name, _ in MODEL_SIZE_OPTIONS]
    return {k: getattr(args, "model_" + k) for k in keys if getattr(args, "model_" + k, None) is not None}


def _train(args):
    from mri.recon.training import train

    values = options_from_args(args, TrainConfig)
    run_dir = train(TrainConfig(model=args.model, model_kwargs=_model_kwargs(args), **values))
    print(f"run folder: {run_dir}")


def _eval(args):
    from pathlib import Path

    from common.errors import ConfigError
    from common.files import write_json_atomic
    from mri.recon.evaluation import evaluate, evaluate_run, format_report, strip_examples
    from mri.recon.models import build_model
    from mri.recon.training import all_scan_ids, dataset_splits, load_model, open_slices

    if (args.run is None) == (args.model is None):
        raise ConfigError("give exactly one of --run RUN_FOLDER (a trained model) or --model NAME (an untrained one)")
    _check_eval_numbers(args)
    data = args.data
    if data is None and args.run:
        data = load_model(args.run, "best", trust=args.trust_checkpoint)[1].data_dir
    scans = args.scans
    if scans is None and data is not None:
        splits = dataset_splits(data)
        if args.n_test_scans:
            known = all_scan_ids(data, args.format)
            if args.n_test_scans > len(known):
                raise ConfigError(f"--n-test-scans {args.n_test_scans}: {data} holds {len(known)} scans",
                                  hint=f"pass --n-test-scans {len(known)} or less")
            scans = known[-args.n_test_scans:]
        elif splits:
            scans = splits["test"]
    if args.run:
        report = evaluate_run(args.run, data, args.acceleration, scans, args.device, trust=args.trust_checkpoint,
                              max_slices_per_scan=args.max_slices_per_scan)
        name = args.run
    else:
        if data is None or args.acceleration is None:
            raise ConfigError("--model needs --data and --acceleration")
        reader = open_slices(data, scans, None, format=args.format)
        model = build_model(args.model, reader.slice_shape(reader.scan_ids[0]), args.scale, **_model_kwargs(args))
        report = evaluate(model, data, args.acceleration, scans, args.echo, args.device,
                          max_slices_per_scan=args.max_slices_per_scan, format=args.format)
        name = args.model
    print(format_report(name, report))
    if args.out:
        write_json_atomic(Path(args.out), strip_examples(report))
        print(f"wrote {args.out}")


def _check_eval_numbers(args) -> None:
    """ConfigError, before any scan is read, for `mri eval` numbers that can never work."""
    import math

    from common.errors import ConfigError

    if args.n_test_scans is not None and args.n_test_scans < 1:
        raise ConfigError(f"--n-test-scans {args.n_test_scans}; expected ≥ 1 (or unset: the test split)")
    if args.acceleration is not None and not (math.isfinite(args.acceleration) and args.acceleration > 1):
        raise ConfigError(f"--acceleration {args.acceleration}; expected a finite undersampling factor > 1")
    if args.echo < 0:
        raise ConfigError(f"--echo {args.echo}; expected an echo index ≥ 0")
    if args.max_slices_per_scan is not None and args.max_slices_per_scan < 1:
        raise ConfigError(f"--max-slices-per-scan {args.max_slices_per_scan}; expected ≥ 1 (or unset for all)")


def _compare(args):
    import shlex
    import sys

    from common.study.cli import seeds_from_text
    from common.study.report import markdown
    from mri.recon.compare import run_compare

    values = options_from_args(args, TrainConfig, exclude=COMPARE_EXCLUDE)
    values["model_kwargs"] = _model_kwargs(args)
    seeds = seeds_from_text(args.seeds) if args.seeds else (values.pop("seed"),)
    values.pop("seed", None)
    command = "python run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    results = run_compare(args.data_dir, args.models or DEFAULT_MODELS, args.accelerations, args.n_train_scans,
                          args.epochs, args.out, seeds, args.device, command, args.overwrite,
                          n_test_scans=args.n_test_scans, classical_iters=args.classical_iters, **values)
    print(markdown(results, command))
    print(f"wrote {args.out}/report.md, report.json, report.png")


def _study_app():
    from mri.recon.study import MriStudyApp

    return MriStudyApp()


def _bench(args):
    import torch

    from common.bench_results import refuse_overwrite, write_results
    from common.device import resolve_device
    from common.environment import describe_environment
    from common.machine_load import LoadGuard, load_sentence
    from common.tables import markdown_table
    from mri.recon.benchmark import bench_models

    refuse_overwrite(args.out, args.stem, args.overwrite)
    guard = LoadGuard(torch.device("cpu"), args.allow_loaded, "bench mri")  # the CPU is always measured
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    devices = ["cpu", "cuda"] if args.device == "auto" else [args.device]
    devices = [str(resolve_device(d)) for d in devices if d == "cpu" or torch.cuda.is_available()]
    rows = []
    for d in devices:
        rows += bench_models(args.models, sizes, d, args.batch, args.coils, args.repeats, args.scale, args.max_seconds)
    payload = {"rows": rows, "environment": describe_environment(devices[-1])}
    payload["environment"]["load"] = guard.finish()
    table = markdown_table(["model", "transform", "size", "device", "slices/s", "ms/slice"],
                           [[r["model"], r["transform"], r["size"], r["device"], f"{r['slices_per_s']:.3g}",
                             f"{r['ms_per_slice']:.3g}"] for r in rows])
    md = (f"# MRI reconstruction inference speed{guard.label()}\n\nscale={args.scale}, batch={args.batch}, coils={args.coils}; "
          f"{payload['environment']['device']}; {load_sentence(payload['environment']['load'])}\n\n"
          f"Command: `{payload['environment']['command']}`\n\n{table}")
    print(table)
    write_results(args.out, args.stem, payload, md)


def register(mri, bench):
    """Add `mri train|eval|compare|study` and `bench mri` to run.py."""
    text = "train one reconstruction model (single process or torchrun)"
    p = mri.add_parser("train", help=text, description=text)
    p.add_argument("--model", required=True, metavar="NAME", help=f"model to train: {NAMES_HELP}")
    add_options(p, TrainConfig)
    _add_model_options(p)
    p.set_defaults(func=_train)

    text = "evaluate a trained run or an untrained model on the test scans"
    p = mri.add_parser("eval", help=text, description=text)
    p.add_argument("--run", default=None, metavar="FOLDER", help="run folder written by `mri train`")
    p.add_argument("--model", default=None, metavar="NAME", help="evaluate a fresh model (zf, cg-sense, l1-wavelet)")
    p.add_argument("--data", default=None, metavar="FOLDER", help="scans (default: the run's data folder)")
    p.add_argument("--acceleration", type=float, default=None, metavar="NUMBER",
                   help="undersampling factor (default: the run's)")
    p.add_argument("--scans", nargs="+", default=None, metavar="SCAN",
                   help="test scan ids (default: meta.json's test split, else all)")
    p.add_argument("--n-test-scans", type=int, default=None, metavar="N", help="the last N scans (default: unset)")
    p.add_argument("--out", default=None, metavar="FILE", help="write the metrics JSON here (default: none)")
    add_options(p, TrainConfig, include=("format", "echo", "max_slices_per_scan", "device", "trust_checkpoint",
                                         "scale"))
    _add_model_options(p)
    p.set_defaults(func=_eval)

    text = ("the whole table, untuned: models × accelerations × training scans at one fixed setting (a study of the "
            "engine; `mri study` tunes)")
    p = mri.add_parser("compare", help=text, description=text)
    p.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help=f"models ({NAMES_HELP}) (default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--accelerations", type=float, nargs="+", default=[2.0, 4.0, 8.0], metavar="NUMBER",
                   help="undersampling factors (default: 2 4 8)")
    p.add_argument("--n-train-scans", type=int, nargs="+", default=[1, 2, 4], metavar="N",
                   help="training-set sizes in scans (default: 1 2 4)")
    p.add_argument("--n-test-scans", type=int, default=None, metavar="N",
                   help="test scans (default: meta.json's test split, else all scans after the largest training set)")
    p.add_argument("--classical-iters", type=int, default=None, metavar="N",
                   help="iterations of CG-SENSE / L1-wavelet (default: 30)")
    p.add_argument("--seeds", default=None, metavar="LIST",
                   help="seeds, comma list (default: --seed alone); the report's intervals count seeds")
    p.add_argument("--out", default="runs/mri/compare", metavar="FOLDER",
                   help="study folder: report.{md,json,png}, runs under FOLDER/runs; rerunning resumes "
                        "(default: runs/mri/compare)")
    p.add_argument("--overwrite", action="store_true", help="replace a folder that holds another comparison")
    add_options(p, TrainConfig, include=("data_dir", "epochs", "device"))
    add_options(p, TrainConfig, exclude=COMPARE_EXCLUDE)
    _add_model_options(p)
    p.set_defaults(func=_compare)

    from common.study.cli import register_study
    from mri.recon.study_presets import PRESETS

    register_study(mri, _study_app, PRESETS, "mri")

    text = "inference slices/s of every MRI reconstruction model"
    p = bench.add_parser("mri", help=text, description=text)
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="NAME",
                   help=f"models (default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--sizes", nargs="+", default=["256x256", "512x160"], metavar="HxW",
                   help="slice sizes (default: 256x256 512x160)")
    p.add_argument("--device", default="auto", metavar="DEVICE", help="cpu, cuda or auto: both when CUDA is there "
                   "(default: auto)")
    p.add_argument("--scale", default="full", choices=["tiny", "small", "full"], help="model sizes (default: full)")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="slices per call (default: 1)")
    p.add_argument("--coils", type=int, default=8, metavar="N", help="coils (default: 8)")
    p.add_argument("--repeats", type=int, default=5, metavar="N", help="timed calls (default: 5)")
    p.add_argument("--max-seconds", type=float, default=60.0, metavar="NUMBER",
                   help="time slow models once only past this (default: 60)")
    p.add_argument("--out", default="benchmarks/results", metavar="FOLDER", help="(default: benchmarks/results)")
    p.add_argument("--stem", default="mri_recon_bench", metavar="NAME", help="(default: mri_recon_bench)")
    add_result_options(p)
    p.set_defaults(func=_bench)
