#!/usr/bin/env python3
"""Command-line entry point of the Monarch scientific-ML suite.

This file holds no logic: each package registers its own sub-commands (``register`` in its
``cli.py``) and every handler imports its heavy dependencies only when it runs, so
``python run.py --help`` stays fast.

    python run.py demo                       # the main job on a small embedded default
    python run.py bench monarch|kernels|data|mri
    python run.py data <preset> [...]        # generate PDE / MRI datasets into datasets/
    python run.py pde train|eval|compare [...]
    python run.py mri train|eval|compare [...]
    python run.py report RUN_DIR [RUN_DIR ...]
"""
import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.split("\n\n")[0])
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    sub = {}
    for name, help_text in [
        ("bench", "speed and memory benchmarks (tables + JSON under benchmarks/results/)"),
        ("data", "generate datasets (PDE presets, simulated MRI)"),
        ("pde", "train / evaluate / compare Fourier neural operators"),
        ("mri", "train / evaluate / compare MRI reconstruction models"),
    ]:
        group = groups.add_parser(name, help=help_text)
        sub[name] = group.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    from benchmarks.cli import register as register_benchmarks
    from mri.cli import register as register_mri
    from pde.cli import register as register_pde
    from workflows.cli import register as register_workflows

    register_benchmarks(bench=sub["bench"])
    register_pde(data=sub["data"], pde=sub["pde"], bench=sub["bench"])
    register_mri(data=sub["data"], mri=sub["mri"], bench=sub["bench"])
    register_workflows(groups)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    result = args.func(args)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
