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

Errors the user can fix (`common.errors.UserError`, a missing or unreadable file) print as
``error: …`` (and ``hint: …``) and exit with status 2; Ctrl-C exits with 130; anything else is a bug
and keeps its traceback. ``--debug`` (anywhere on the line) always shows the traceback.
"""
import argparse
import sys

USAGE_ERROR, INTERRUPTED = 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")
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
    from common.config_cli import polish_parser
    from mri.cli import register as register_mri
    from pde.cli import register as register_pde
    from workflows.cli import register as register_workflows

    register_benchmarks(bench=sub["bench"])
    register_pde(data=sub["data"], pde=sub["pde"], bench=sub["bench"])
    register_mri(data=sub["data"], mri=sub["mri"], bench=sub["bench"])
    register_workflows(groups)
    return polish_parser(parser)  # descriptions, "(default: …)" and readable metavars everywhere


def user_error_lines(error: BaseException) -> list[str] | None:
    """The `error:` (and `hint:`) lines for an error the user can fix; None for a bug."""
    from common.errors import UserError

    if isinstance(error, UserError):
        message, hint = str(error), error.hint
    elif isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        message = f"{error.filename}: {error.strerror}" if error.filename and error.strerror else str(error)
        hint = None
    else:
        return None
    lines = ["error: " + " ".join(message.split())]  # one line, whatever the message holds
    if hint:
        lines.append("hint: " + " ".join(str(hint).split()))
    return lines


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]  # accepted anywhere, not only before the command
    try:
        args = build_parser().parse_args(argv)
        result = args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as error:
        lines = None if debug else user_error_lines(error)
        if lines is None:
            raise
        print("\n".join(lines), file=sys.stderr)
        return USAGE_ERROR
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
