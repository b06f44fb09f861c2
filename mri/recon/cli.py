"""run.py sub-commands: `mri train|eval|compare` and `bench mri`. Handlers import lazily."""
import json


def _add_common(p, data_required=True):
    p.add_argument("--data", required=data_required, help="folder of SKM-TEA-layout .h5 scans (e.g. from "
                   "`run.py data mri-sim`)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--echo", type=int, default=0)


def _add_model_options(p):
    p.add_argument("--scale", default="small", choices=["tiny", "small", "full"],
                   help="model sizes: full = meddlr knee config (8 steps, 128 ch) and fastMRI U-Net (32 ch)")
    for name, kind in (("steps", int), ("resblocks", int), ("channels", int), ("step-size", float),
                       ("cg-iters", int), ("unet-chans", int), ("unet-pools", int)):
        p.add_argument(f"--{name}", type=kind, default=None, help="override the scale's setting")


def _add_train_options(p):
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam lr of the network weights")
    p.add_argument("--transform-lr", type=float, default=1e-3, help="Adam lr of the learnable transforms")
    p.add_argument("--weight-decay", type=float, default=0.0, help="network weights only (never transforms)")
    p.add_argument("--loss", default="l1", choices=["l1", "ssim", "l1+ssim"])
    p.add_argument("--masks", default="fixed", choices=["fixed", "random"],
                   help="fixed: the per-scan stored masks; random: a seeded bank, one draw per slice and epoch")
    p.add_argument("--max-slices-per-scan", type=int, default=None, help="keep only this many central slices")
    p.add_argument("--amp", action="store_true", help="mixed precision for the CNNs (fp16 on CUDA, bf16 on CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _model_kwargs(args) -> dict:
    keys = ("steps", "resblocks", "channels", "step_size", "cg_iters", "unet_chans", "unet_pools")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _train_overrides(args) -> dict:
    return dict(scale=args.scale, model_kwargs=_model_kwargs(args), batch_size=args.batch_size, lr=args.lr,
                transform_lr=args.transform_lr, weight_decay=args.weight_decay, loss=args.loss, masks=args.masks,
                max_slices_per_scan=args.max_slices_per_scan, amp=args.amp, seed=args.seed,
                num_workers=args.workers, echo=args.echo)


def _train(args):
    from mri.recon.training import TrainConfig, train

    cfg = TrainConfig(data_dir=args.data, model=args.model, acceleration=args.acceleration,
                      n_train_scans=args.n_train_scans, train_scans=args.train_scans, val_scans=args.val_scans,
                      epochs=args.epochs, device=args.device, out_dir=args.out, run_name=args.run_name,
                      resume=args.resume, progress=not args.quiet, **_train_overrides(args))
    run_dir = train(cfg)
    print(f"run folder: {run_dir}")


def _eval(args):
    from mri.recon.evaluation import evaluate, evaluate_run, format_report, strip_examples
    from mri.recon.models import build_model
    from mri.recon.training import all_scan_ids, load_model, write_json_atomically

    if (args.run is None) == (args.model is None):
        raise SystemExit("give exactly one of --run RUN_DIR (a trained model) or --model zf|cg-sense|l1-wavelet|...")
    scans = args.scans
    if scans is None and args.n_test_scans:
        if args.data is None and args.run:
            args.data = load_model(args.run, "best")[1].data_dir
        scans = all_scan_ids(args.data)[-args.n_test_scans:]
    if args.run:
        report = evaluate_run(args.run, args.data, args.acceleration, scans, args.device,
                              max_slices_per_scan=args.max_slices_per_scan)
        name = args.run
    else:
        if args.data is None or args.acceleration is None:
            raise SystemExit("--model needs --data and --acceleration")
        from mri.data.skmtea import SkmTeaSlices

        reader = SkmTeaSlices(args.data, scans=scans)
        model = build_model(args.model, reader.slice_shape(reader.scan_ids[0]), args.scale, **_model_kwargs(args))
        report = evaluate(model, args.data, args.acceleration, scans, args.echo, args.device,
                          max_slices_per_scan=args.max_slices_per_scan)
        name = args.model
    print(format_report(name, report))
    if args.out:
        write_json_atomically(strip_examples(report), __import__("pathlib").Path(args.out))
        print(f"wrote {args.out}")


def _compare(args):
    from mri.recon.compare import run_compare

    overrides = _train_overrides(args)
    classical = {k: v for k, v in (("lamda", None), ("max_iter", args.classical_iters)) if v is not None}
    from mri.recon.compare import DEFAULT_MODELS

    report = run_compare(args.data, models=args.models or DEFAULT_MODELS, accelerations=args.accelerations,
                         n_train_scans=args.n_train_scans, epochs=args.epochs, out_dir=args.out, device=args.device,
                         n_test_scans=args.n_test_scans, stem=args.stem, classical=classical,
                         table5_models=args.table5_models, progress=not args.quiet, **overrides)
    print(json.dumps(report["gaps"], indent=2))
    print(f"wrote {args.out}/{args.stem}.json, .md, _examples.png, _curves.png")


def _bench(args):
    from benchmarks.timing import environment, markdown_table, pick_device, write_results
    from mri.recon.benchmark import bench_models

    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    devices = ["cpu", "cuda"] if args.device == "auto" else [args.device]
    devices = [d for d in devices if d == "cpu" or __import__("torch").cuda.is_available()]
    rows = []
    for d in devices:
        rows += bench_models(args.models, sizes, str(pick_device(d)), args.batch, args.coils, args.repeats, args.scale,
                             args.max_seconds)
    payload = {"rows": rows, "environment": environment(pick_device(devices[-1]))}
    table = markdown_table(["model", "transform", "size", "device", "slices/s", "ms/slice"],
                           [[r["model"], r["transform"], r["size"], r["device"], f"{r['slices_per_s']:.3g}",
                             f"{r['ms_per_slice']:.3g}"] for r in rows])
    md = (f"# MRI reconstruction inference speed\n\nscale={args.scale}, batch={args.batch}, coils={args.coils}; "
          f"{payload['environment']['device']}\n\nCommand: `{payload['environment']['command']}`\n\n{table}")
    print(table)
    write_results(args.out, args.stem, payload, md)


def register(mri, bench):
    """Add `mri train|eval|compare` and `bench mri` to run.py."""
    from mri.recon.model_names import MODELS

    p = mri.add_parser("train", help="train one reconstruction model (single process or torchrun)")
    _add_common(p)
    p.add_argument("--model", required=True, choices=[m for m in MODELS if m not in ("zf", "cg-sense", "l1-wavelet")])
    p.add_argument("--acceleration", type=float, default=4.0)
    p.add_argument("--n-train-scans", type=int, default=1, help="first N scans (sorted ids) train")
    p.add_argument("--train-scans", nargs="+", default=None, help="explicit training scan ids")
    p.add_argument("--val-scans", nargs="+", default=None, help="scans whose loss picks best.pt")
    p.add_argument("--out", default="runs/mri", help="parent folder of the run folder")
    p.add_argument("--run-name", default=None)
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last.pt")
    _add_model_options(p)
    _add_train_options(p)
    p.set_defaults(func=_train)

    p = mri.add_parser("eval", help="evaluate a trained run or an untrained model on test scans")
    _add_common(p, data_required=False)
    p.add_argument("--run", default=None, help="run folder written by `mri train`")
    p.add_argument("--model", default=None, choices=MODELS, help="evaluate a fresh model (zf, cg-sense, l1-wavelet)")
    p.add_argument("--acceleration", type=float, default=None)
    p.add_argument("--scans", nargs="+", default=None, help="test scan ids (default: all)")
    p.add_argument("--n-test-scans", type=int, default=None, help="the last N scans")
    p.add_argument("--max-slices-per-scan", type=int, default=None)
    p.add_argument("--out", default=None, help="write the metrics JSON here")
    _add_model_options(p)
    p.set_defaults(func=_eval)

    p = mri.add_parser("compare", help="the whole table: models × accelerations × training scans")
    _add_common(p)
    p.add_argument("--models", nargs="+", default=None, choices=MODELS)
    p.add_argument("--accelerations", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    p.add_argument("--n-train-scans", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--n-test-scans", type=int, default=None, help="default: all scans after the largest training set")
    p.add_argument("--table5-models", nargs="+", default=None, choices=MODELS,
                   help="trained models run at every training-scan count (default all; paper: unet msense)")
    p.add_argument("--classical-iters", type=int, default=None, help="iterations of CG-SENSE / L1-wavelet (30)")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--stem", default="mri_recon_compare")
    _add_model_options(p)
    _add_train_options(p)
    p.set_defaults(func=_compare)

    p = bench.add_parser("mri", help="inference slices/s of every MRI reconstruction model")
    p.add_argument("--models", nargs="+", default=list(MODELS[:9]), choices=MODELS)
    p.add_argument("--sizes", nargs="+", default=["256x256", "512x160"])
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (both when CUDA is there)")
    p.add_argument("--scale", default="full", choices=["tiny", "small", "full"])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--coils", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-seconds", type=float, default=60.0, help="time slow models once only past this")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--stem", default="mri_recon_bench")
    p.set_defaults(func=_bench)
