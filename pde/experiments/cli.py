"""run.py sub-commands: `pde train`, `pde eval`, `pde compare` (handlers import torch lazily).

Every TrainConfig field is overridable from the command line; tuples are comma lists
(--n-modes 24,22) and --fno-kwargs takes JSON ('{"domain_padding": 0.1}').
Multi-GPU: `torchrun --nproc_per_node 4 run.py pde train ...`.
"""
import argparse
import json
import shlex
import sys


def _ints(text):
    return tuple(int(v) for v in text.split(",")) if text else None


def _add_training_options(parser):
    parser.add_argument("--n-train", type=int, help="training samples (default: the file's split, else 1000)")
    parser.add_argument("--n-test", type=int, help="test samples (default: the file's split, else 200)")
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--transform-lr", type=float, help="learning rate of the transform parameters (default --lr)")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--step-size", type=int, default=100, help="StepLR step (epochs)")
    parser.add_argument("--gamma", type=float, default=0.5, help="StepLR factor")
    parser.add_argument("--n-modes", type=_ints, help="kept modes per axis, neuralop convention (NS default 24,22)")
    parser.add_argument("--hidden-channels", type=int, help="width (NS default 20)")
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--t-in", type=int, default=10, help="Navier–Stokes input frames")
    parser.add_argument("--t-out", type=int, help="Navier–Stokes predicted frames (default: all remaining)")
    parser.add_argument("--monarch-sizes", type=_ints, help="b1,b2 of the Monarch factorisation")
    parser.add_argument("--monarch-channels", action="store_true", help="MonarchLinear channel mixing")
    parser.add_argument("--fno-kwargs", type=json.loads, default={}, help="JSON dict of extra FNO arguments")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--amp", action="store_true", help="float16 autocast on CUDA")
    parser.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    parser.add_argument("--no-progress", dest="progress", action="store_false")


_CONFIG_KEYS = ("n_train", "n_test", "epochs", "batch_size", "lr", "transform_lr", "weight_decay", "step_size", "gamma",
                "n_modes", "hidden_channels", "n_layers", "t_in", "t_out", "monarch_sizes", "monarch_channels",
                "fno_kwargs", "seed", "device", "amp", "resume", "progress")


def _train(args):
    from pde.experiments.evaluation import evaluate
    from pde.experiments.training import TrainConfig, distributed_context, train

    values = {k: getattr(args, k) for k in _CONFIG_KEYS}
    run_dir = train(TrainConfig(dataset=args.dataset, run_dir=args.out, transform=args.transform, **values))
    if distributed_context()[1] == 0:
        report = evaluate(run_dir / "last.pt", out_dir=run_dir, device=args.device)
        print(f"{run_dir}: relative L2 {report['rel_l2_mean']:.4f} ± {report['rel_l2_se']:.4f}")


def _eval(args):
    from pde.experiments.evaluation import evaluate, markdown

    print(markdown(evaluate(args.checkpoint, args.dataset, args.out, device=args.device)))


def _compare(args):
    from pde.experiments.compare import markdown, run_compare

    values = {k: getattr(args, k) for k in _CONFIG_KEYS if k not in ("epochs", "device")}
    transforms = tuple(t.strip() for t in args.transforms.split(","))
    command = "python run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = run_compare(args.datasets, transforms, epochs=args.epochs, out_dir=args.out, device=args.device,
                         checkpoint=args.checkpoint, command=command, **values)
    print(markdown(result))


def register(pde=None, bench=None, **_):
    """Add `train`, `eval` and `compare` to run.py's `pde` group."""
    if pde is None:
        return
    p = pde.add_parser("train", help="train one FNO (fft | dense | monarch) on a dataset",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("dataset", help="dataset file (e.g. datasets/ns-v1e-3.h5)")
    p.add_argument("--out", default="runs/pde/train", help="run folder (checkpoints, metrics, report)")
    p.add_argument("--transform", default="fft", choices=["fft", "dense", "monarch"])
    _add_training_options(p)
    p.set_defaults(func=_train)

    p = pde.add_parser("eval", help="evaluate a checkpoint: relative L2 ± s.e., per-step error, params, plots")
    p.add_argument("checkpoint", help="a run's last.pt or best.pt")
    p.add_argument("--dataset", help="dataset file (default: the one it was trained on)")
    p.add_argument("--out", help="report folder (default: the checkpoint's folder)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_eval)

    p = pde.add_parser("compare", help="train fft, dense and monarch on the same data; one report",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("datasets", nargs="+", help="dataset files (one table column each)")
    p.add_argument("--transforms", default="fft,dense,monarch",
                   help="comma list of fft, dense, monarch, monarch+channels")
    p.add_argument("--out", default="runs/pde/compare")
    p.add_argument("--checkpoint", default="last.pt", choices=["last.pt", "best.pt"])
    _add_training_options(p)
    p.set_defaults(func=_compare)
