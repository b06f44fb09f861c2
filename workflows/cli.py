"""Top-level sub-command `demo` for run.py."""


def _demo(args):
    import time

    from workflows.demo import run_demo

    started = time.perf_counter()
    report = run_demo(out_dir=args.out, data_dir=args.data_dir, device=args.device, sizes=args.sizes)
    text = report.read_text()
    print("\n" + text[text.index("## PDE"):text.index("## Files")] if "## Files" in text else text)
    print(f"Report: {report}  (elapsed {time.perf_counter() - started:.0f} s)")
    return 0


def register(groups):
    """Add the `demo` parser to run.py's top-level sub-command group."""
    p = groups.add_parser("demo", help="the main job: the PDE and MRI studies at their smoke size end to end, with a report")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when available)")
    p.add_argument("--sizes", default="auto", choices=["auto", "cpu", "gpu", "smoke"],
                   help="demo sizes (default: gpu sizes on CUDA, cpu sizes otherwise; smoke: the smallest, "
                        "for tests)")
    p.add_argument("--out", default="runs/demo", help="results folder (default runs/demo)")
    p.add_argument("--data-dir", default="datasets", help="where the demo datasets are generated / reused")
    p.set_defaults(func=_demo)
