"""Top-level sub-commands `demo` and `report` for run.py."""


def _report(args):
    from workflows.report import build_report

    out = args.out or args.run_dirs[0]
    payload = build_report(args.run_dirs, out)
    print(open(f"{out}/report.md").read())
    print(f"report: {out}/report.md ({len(payload['pde_rows'])} PDE rows, {len(payload['mri_rows'])} MRI rows)")
    return 0


def register(groups):
    """Add the `demo` and `report` parsers to run.py's top-level sub-command group."""
    p = groups.add_parser("report", help="gather finished runs into one markdown + JSON + PNG report")
    p.add_argument("run_dirs", nargs="+", help="run directories (each searched for result JSON files)")
    p.add_argument("--out", default=None, help="output folder (default: the first run directory)")
    p.set_defaults(func=_report)
