"""run.py sub-commands: `pde train`, `pde eval`, `pde compare`, `pde study`
(handlers import torch lazily).

Every option of `pde train` and `pde compare` comes from a `TrainConfig` field (its default, type and
help are written there once): tuples are comma lists (--n-modes 24,22), --fno-kwargs takes JSON
('{"domain_padding": 0.1}'). Multi-GPU: `torchrun --nproc_per_node 4 run.py pde train ...`.
"""
import shlex
import sys

from common.config_cli import add_options, options_from_args
from pde.experiments.training import TrainConfig

COMPARE_EXCLUDE = ("run_dir", "epochs", "device")  # compare's own options


def _train(args):
    from common.distributed import distributed_context
    from pde.experiments.evaluation import evaluate
    from pde.experiments.training import train

    config = TrainConfig(dataset=args.dataset, transform=args.transform, **options_from_args(args, TrainConfig))
    run_dir = train(config)
    if distributed_context(config.device).is_main:  # the test split, once, by the validation-selected model
        report = evaluate(run_dir / "best.pt", out_dir=run_dir, device=config.device, trust=config.trust_checkpoint)
        from common.stats import format_mean_se

        # one test sample has no standard error: format_mean_se says "(n=1)" instead of "± nan"
        print(f"{run_dir}: test relative L2 {format_mean_se(report['rel_l2_mean'], report['rel_l2_se'])} "
              f"(best.pt, epoch {report['epoch']})")


def _eval(args):
    from pathlib import Path

    from pde.experiments.evaluation import evaluate, markdown
    from pde.experiments.transfer import parse_grid

    report = evaluate(args.checkpoint, args.dataset, args.out, device=args.device, trust=args.trust_checkpoint,
                      grid=parse_grid(args.grid))
    print(markdown(report))
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    print(f"Wrote {out / 'eval.json'}, {out / 'eval.md'} and the plots {out / 'error_vs_step.png'}, {out / 'fields.png'}")


def _compare(args):
    from common.study.cli import seeds_from_text
    from common.study.report import markdown
    from pde.experiments.compare import run_compare

    values = options_from_args(args, TrainConfig, exclude=COMPARE_EXCLUDE)
    transforms = tuple(t.strip() for t in args.transforms.split(","))
    if transforms == ("all",):
        from monarch_core import TRANSFORM_KINDS

        transforms = TRANSFORM_KINDS
    command = "python run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    seeds = seeds_from_text(args.seeds) if args.seeds else (values.pop("seed"),)
    values.pop("seed", None)
    results = run_compare(args.datasets, transforms, epochs=args.epochs, out_dir=args.out, seeds=seeds,
                          device=args.device, command=command, overwrite=values.pop("overwrite", False), **values)
    print(markdown(results, command))


def _study_app():
    from pde.experiments.study import PdeStudyApp

    return PdeStudyApp()


def register(pde=None, bench=None, **_):
    """Add `train`, `eval`, `compare` and `study` to run.py's `pde` group (zero-shot super-resolution is a
    study's evaluation at other grids: `eval_datasets`, see pde.experiments.study)."""
    if pde is None:
        return
    text = "train one FNO (or UNO: --model uno) on a dataset; then evaluate best.pt on the test split"
    p = pde.add_parser("train", help=text, description=text)
    p.add_argument("dataset", metavar="DATASET", help="dataset file (e.g. datasets/ns-v1e-3.h5)")
    p.add_argument("--transform", default="fft", metavar="KIND",  # checked against monarch_core.TRANSFORM_KINDS
                   help="Fourier transform of the spectral layers: fft, dense, monarch, diag, … (default: fft)")
    add_options(p, TrainConfig)
    p.set_defaults(func=_train)

    text = "evaluate a checkpoint on the test split: relative L2 ± s.e., per-step error, params, plots"
    p = pde.add_parser("eval", help=text, description=text)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a run's best.pt or last.pt")
    p.add_argument("--dataset", metavar="FILE", help="dataset file (default: the one it was trained on)")
    p.add_argument("--out", metavar="FOLDER", help="report folder (default: the checkpoint's folder)")
    p.add_argument("--grid", metavar="SIZES", help="evaluate at this grid (comma list, e.g. 64,64): zero-shot "
                   "super-resolution of a model trained at another grid (its learned transforms carried to the "
                   "grid from the grids the checkpoint records); must be the dataset's grid (default: the "
                   "dataset's grid, which must then be the training grid)")
    add_options(p, TrainConfig, include=("device", "trust_checkpoint"))
    p.set_defaults(func=_eval)

    from common.study.cli import register_study
    from pde.experiments.study_presets import PRESETS

    register_study(pde, _study_app, PRESETS, "pde")

    text = ("train FNOs with several transforms at one fixed setting on the same data, split and seeds; one report "
            "(untuned: for a tuned, equal-budget comparison use `pde study`)")
    p = pde.add_parser("compare", help=text, description=text)
    p.add_argument("datasets", nargs="+", metavar="DATASET", help="dataset files (one table column each)")
    p.add_argument("--transforms", default="all", metavar="LIST",
                   help="comma list of transform kinds (fft, dense, monarch, diag, …; KIND+channels adds Monarch "
                   "channel mixing), or all (default: all registered kinds)")
    p.add_argument("--out", default="runs/pde/compare", metavar="FOLDER",
                   help="study folder: report.md/json/png and the runs (default: runs/pde/compare); rerunning resumes")
    p.add_argument("--seeds", metavar="LIST", help="comma list of seeds, one run per transform and seed (default: --seed)")
    add_options(p, TrainConfig, include=("epochs", "device"))
    add_options(p, TrainConfig, exclude=COMPARE_EXCLUDE)
    p.set_defaults(func=_compare)
