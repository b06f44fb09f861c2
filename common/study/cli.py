"""`run.py <application> study …`: one sub-command for every application's studies (`register_study`).

    python run.py pde study burgers-cpu --out runs/pde/study-burgers --dry-run   # the plan, with measured s/epoch
    python run.py pde study burgers-cpu --out runs/pde/study-burgers             # run or resume it
    python run.py pde study my_study.toml --out runs/x --jobs 2                  # a spec file
    python run.py pde study burgers-cpu --out runs/pde/study-burgers --report-only
    python run.py pde study burgers-cpu --out runs/pde/study-burgers --snapshot benchmarks/state/burgers-cpu
    python run.py pde study burgers-cpu --out runs/pde/study-burgers --from-snapshot benchmarks/state/burgers-cpu
    python run.py pde study burgers-cpu --out runs/pde/study-burgers --snapshot benchmarks/state/burgers-cpu \
        --snapshot-every 30              # run it, snapshotting every 30 minutes and at the end

The application passes its `StudyApplication` factory and its presets ({name: () -> StudySpec}); the
handler resolves the spec (preset or file, then the command-line overrides), and runs `run_study` and
`write_report`. Reports go to OUT/report.{md,json,png} and, with --results-stem, also to
benchmarks/results/<stem>.{md,json,png} (never over a finished report without --overwrite).
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from common.errors import ConfigError, RunExistsError


def seeds_from_text(text: str) -> tuple:
    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise ConfigError(f"--seeds {text!r}; expected a comma list of integers (e.g. 0,1,2,3,4)") from None
    if any(not 0 <= s < 2 ** 31 for s in seeds):
        raise ConfigError(f"--seeds {text!r}; expected integers in [0, 2**31)")
    return seeds


def resolve_spec(name_or_file: str, presets: dict, application: str, args=None):
    """The StudySpec of a preset name or a .toml/.json file, with the command-line overrides applied."""
    from .spec import StudySpec

    if name_or_file in presets:
        spec = presets[name_or_file]()
    elif Path(name_or_file).suffix in (".toml", ".json"):
        spec = StudySpec.from_file(name_or_file)
    else:
        raise ConfigError(f"{name_or_file!r} is neither a {application} study preset nor a .toml/.json spec file",
                          hint=f"presets: {', '.join(sorted(presets))}")
    if spec.application != application:
        raise ConfigError(f"study {spec.name} is a {spec.application} study, not a {application} one",
                          hint=f"run it with run.py {spec.application} study")
    if args is not None:
        changes = {"seeds": seeds_from_text(args.seeds) if args.seeds else None, "device": args.device,
                   "jobs": args.jobs, "threads": args.threads}
        spec = spec.replace(**changes)
    return spec


def _handler(app_factory, presets: dict, application: str):
    def handle(args):
        from .report import write_report
        from .runner import measure, plan, run_study

        spec = resolve_spec(args.spec, presets, application, args)
        out = Path(args.out or f"runs/{application}/study-{spec.name}")
        command = "python run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if args.report_only:  # the report says how the results were made, then how it was rewritten
            command = f"{_study_command(sys.argv[1:])}   # the study\n{command}   # this report"
        if args.partial and not args.report_only:
            raise ConfigError("--partial only qualifies --report-only",
                              hint="add --report-only to report what the study folder holds so far")
        if args.snapshot_every is not None and (not args.snapshot or not args.snapshot_every > 0):
            raise ConfigError(f"--snapshot-every {args.snapshot_every}: expected minutes > 0 with --snapshot FOLDER",
                              hint="e.g. --snapshot benchmarks/state/NAME --snapshot-every 30")
        if args.snapshot and args.snapshot_every is None:
            from .snapshot import snapshot

            stats = snapshot(out, args.snapshot)
            print(f"wrote {args.snapshot}: {stats['files']} files, {stats['bytes'] / 1e6:.1f} MB "
                  f"({stats['checkpoints']} checkpoints of final runs in flight kept, {stats['dropped_checkpoints']} "
                  "of finished runs and tuning trials left out)")
            return
        if args.from_snapshot:
            from .snapshot import restore

            if (out / "spec.json").exists():
                print(f"{out} already holds the study: resuming it (its state is at least as new as "
                      f"{args.from_snapshot})")
            else:
                restore(args.from_snapshot, out)
                print(f"restored {args.from_snapshot} into {out}")
        app = app_factory()
        if args.dry_run:
            seconds = {}
            if args.measure:
                from .runner import open_folder

                open_folder(spec, out, args.overwrite)
                for cell in spec.cells:
                    app.prepare(spec, cell, spec.device)
                seconds = measure(app, spec, out, device=spec.device)
            print(f"study {spec.name}: {len(spec.methods)} methods × {len(spec.cells)} cell(s), "
                  f"seeds {list(spec.seeds)}")
            print(plan(spec, seconds).text())
            return
        if args.report_only:
            import json

            path = out / "results.json"
            if args.partial:  # what the folder holds now, while the study runs or between sessions
                from .results import collect

                if not (out / "spec.json").exists():
                    raise ConfigError(f"{out} holds no study", hint="pass the study folder with --out")
                results = collect(spec, out, app.val_metric, storage=args.storage)
            elif not path.exists():
                raise ConfigError(f"{out} holds no results.json: the study has not finished",
                                  hint="run the study first (without --report-only), or pass --partial to report "
                                       "what it holds so far")
            else:
                results = json.loads(path.read_text())
        else:
            from contextlib import nullcontext

            from .snapshot import periodic_snapshots

            snapshots = (periodic_snapshots(out, args.snapshot, args.snapshot_every * 60) if args.snapshot_every
                         else nullcontext())
            with snapshots:
                results = run_study(spec, app, out, storage=args.storage, overwrite=args.overwrite,
                                    phases=("tune",) if args.tune_only else ("tune", "final"))
            if args.tune_only:
                print(f"tuning of {spec.name} finished: {out / 'tuning'}")
                return
        paths = write_report(results, out, "report", command)
        print(f"wrote {paths['md']}, {paths['json']}, {paths['png']}")
        if args.results_stem:
            target = Path("benchmarks/results")
            if (target / f"{args.results_stem}.md").exists() and not args.overwrite:
                raise RunExistsError(f"benchmarks/results/{args.results_stem}.md exists; not overwriting it",
                                     hint="pass --overwrite to replace it")
            paths = write_report(results, target, args.results_stem, command)
            print(f"wrote {paths['md']}")
    return handle


def _study_command(argv: list) -> str:
    """The command that runs (or resumes) the study of a --report-only command line: its arguments less the
    report's own (--report-only, --results-stem STEM, --overwrite)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--results-stem":
            skip = True
        elif arg not in ("--report-only", "--partial", "--overwrite") and not arg.startswith("--results-stem="):
            kept.append(arg)
    return "python run.py " + " ".join(shlex.quote(a) for a in kept)


def register_study(group, app_factory, presets: dict, application: str) -> None:
    """Add `study` to an application's run.py group (`app_factory()` -> its StudyApplication)."""
    text = (f"study ({application}): equal-budget Optuna tuning that brackets its optimum, final runs over seeds "
            "to convergence, two-level intervals, one report")
    p = group.add_parser("study", help=text, description=text)
    p.add_argument("spec", metavar="PRESET|FILE", help=f"a preset ({', '.join(sorted(presets))}) or a .toml/.json spec")
    p.add_argument("--out", metavar="FOLDER", help=f"study folder (default: runs/{application}/study-<name>); "
                   "rerunning into it resumes")
    p.add_argument("--dry-run", action="store_true", help="print the plan (trials, runs, epochs, hours) and stop")
    p.add_argument("--measure", action="store_true",
                   help="with --dry-run: measure seconds per epoch (2 epochs per method) for the time estimate")
    p.add_argument("--seeds", metavar="LIST", help="final seeds, comma list (default: the spec's)")
    p.add_argument("--device", metavar="DEVICE", help="auto, cpu, cuda or cuda:N (default: the spec's)")
    p.add_argument("--jobs", type=int, metavar="N", help="final runs in parallel processes (default: the spec's)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads per run (default: the spec's)")
    p.add_argument("--storage", metavar="URL", help="Optuna storage shared by several workers (an RDB URL; "
                   "default: SQLite in the study folder)")
    p.add_argument("--tune-only", action="store_true", help="stop after tuning (workers sharing --storage)")
    p.add_argument("--report-only", action="store_true", help="rewrite the report from OUT/results.json")
    p.add_argument("--partial", action="store_true", help="with --report-only: report what the study folder "
                   "holds now (finished runs, tuning so far), the study may keep running; marked partial")
    p.add_argument("--results-stem", metavar="STEM", help="also write benchmarks/results/STEM.{md,json,png}")
    p.add_argument("--snapshot", metavar="FOLDER", help="write OUT's portable state (no checkpoints of finished "
                   "runs; small enough to commit) to FOLDER and stop; the study may keep running meanwhile")
    p.add_argument("--snapshot-every", type=float, metavar="MINUTES", help="with --snapshot: run the study and "
                   "write the snapshot every MINUTES and once more when it ends or stops")
    p.add_argument("--from-snapshot", metavar="FOLDER", help="start OUT from a snapshot (on a new machine), then "
                   "run or resume as usual; ignored with a note when OUT already holds the study")
    p.add_argument("--overwrite", action="store_true", help="replace a study folder holding another spec, "
                   "or an existing benchmarks/results report")
    p.set_defaults(func=_handler(app_factory, presets, application))


__all__ = ["register_study", "resolve_spec", "seeds_from_text"]
