"""Top-level sub-commands `demo` and `report` for run.py."""


def _report(args):
    from pathlib import Path

    from workflows.report import build_report

    out = args.out or args.run_dirs[0]
    notes = []
    payload = build_report(args.run_dirs, out, overwrite=args.overwrite, notes=notes)
    for note in notes:
        print(f"note: {note}")
    print(Path(out, "report.md").read_text())
    print(f"report: {out}/report.md ({len(payload['pde_rows'])} PDE rows, {len(payload['mri_rows'])} MRI rows)")
    return 0


def _demo(args):
    import time

    from workflows.demo import run_demo

    started = time.perf_counter()
    report = run_demo(out_dir=args.out, data_dir=args.data_dir, device=args.device, sizes=args.sizes)
    text = report.read_text()
    tables = text[text.index("## PDE"):text.index("## Plots")] if "## Plots" in text else text
    print("\n" + tables)
    print(f"Report: {report}  (elapsed {time.perf_counter() - started:.0f} s)")
    return 0


def register(groups):
    """Add the `demo` and `report` parsers to run.py's top-level sub-command group."""
    p = groups.add_parser("demo", help="the main job: tiny PDE + MRI comparisons end to end, with a report")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when available)")
    p.add_argument("--sizes", default="auto", choices=["auto", "cpu", "gpu", "smoke"],
                   help="demo sizes (default: gpu sizes on CUDA, cpu sizes otherwise; smoke: the smallest, "
                        "for tests)")
    p.add_argument("--out", default="runs/demo", help="results folder (default runs/demo)")
    p.add_argument("--data-dir", default="datasets", help="where the demo datasets are generated / reused")
    p.set_defaults(func=_demo)

    p = groups.add_parser("report", help="gather finished runs into one markdown + JSON + PNG report")
    p.add_argument("run_dirs", nargs="+", help="run directories (each searched for result JSON files)")
    p.add_argument("--out", default=None, help="output folder (default: the first run directory)")
    p.add_argument("--overwrite", action="store_true", help="replace report.{md,json,png} already in --out")
    p.set_defaults(func=_report)
