"""`python run.py bench gpu`: the one prepared GPU check (under 8 minutes on one H100/H200).

Sections, in this order, each guarded (a failing section records its error, the rest still runs) and
written to the results as soon as it ends (a run cut short still leaves what it measured):
  pytest_gpu     `pytest -m gpu` in a subprocess (output tail, exit status, summary line)
  ceilings       device-to-device copy bandwidth and bf16 matmul FLOP/s (benchmarks.kernels)
  kernels        dense (cuBLAS), PyTorch path, Triton two-pass, Triton one-pass (when
                 monarch_core.kernels.one_pass exists), torch.fft; fp32 and bf16; forward and
                 forward+backward; n = 256 … 16384 at batch·n = 2^25; achieved fraction of the copy
                 bandwidth counting x read once + y written once + the factors
  dft            the Monarch DFT through the kernels (complex64 ieee/tf32x3, bf16 and fp16 planes) against
                 torch.fft (cuFFT) complex64 at n = 256 and 1024, with the error against torch.fft
  fno_steps      FNO training step per transform kind at 64² (width 20, batch 20, AMP) — benchmarks.steps;
                 skipped with the reason when neuraloperator is missing
  ns_generation  Navier–Stokes solver throughput (pde.data.bench.ns_throughput)
  mri_steps      unrolled MRI training step per kind (AMP) — benchmarks.steps
A global budget (--budget-s) skips what is left once spent (the kernel sizes one by one).

--dry-run runs the same code at tiny sizes on the CPU (Triton only under TRITON_INTERPRET=1; GPU-only
parts skipped with a recorded reason) into --out (default runs/bench-gpu-dry). Results: gpu_check.json,
.md and .png (time vs n per variant) in --out (default benchmarks/results), never over existing ones
without --overwrite.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

from benchmarks import kernels
from benchmarks.cli import GPU_SECTIONS
from benchmarks.output import refuse_overwrite, write_results
from common.device import resolve_device
from common.environment import describe_environment
from common.tables import markdown_table

STEM = "gpu_check"
SECTIONS = GPU_SECTIONS
#: sizes of a real run and of the dry run
FULL = {"sizes": (256, 1024, 4096, 16384), "elements": 2 ** 25, "dtypes": ("float32", "bfloat16"), "rounds": 10,
        "dft_sizes": (256, 1024), "dft_elements": 2 ** 24, "copy_bytes": None, "matmul_size": None,
        "steps": {}, "step_rounds": 10, "ns": ((64, 200, 200), (256, 100, 100)), "pytest_timeout": 150}
DRY = {"sizes": (64, 256), "elements": 2 ** 12, "dtypes": ("float32", "bfloat16"), "rounds": 2,
       "dft_sizes": (64, 256), "dft_elements": 2 ** 12, "copy_bytes": 8 << 20, "matmul_size": 256,
       "steps": {"fno": {"batch": 2, "grid": 32, "n_modes": (8, 8), "n_layers": 1},
                 "mri": {"batch": 1, "grid": 32, "coils": 2, "scale": "tiny"}},
       "step_rounds": 2, "ns": ((32, 2, 5),), "pytest_timeout": 0}


class Budget:
    """Seconds left of the global budget."""

    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, time.perf_counter()

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)

    def spent(self) -> bool:
        return self.left() <= 0


class Skip(Exception):
    """A section that does not apply here; its message is the recorded reason."""


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def section_pytest_gpu(ctx) -> dict:
    if ctx["device"].type != "cuda":
        raise Skip("no CUDA device: every gpu-marked test would be skipped")
    timeout = max(30, min(ctx["cfg"]["pytest_timeout"], ctx["budget"].left() - 60))
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
               "--continue-on-collection-errors", "tests"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ctx["root"])
        output, status = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        status = f"timed out after {timeout:.0f} s"
    lines = [line for line in output.splitlines() if line.strip()]
    return {"command": " ".join(command[1:]), "exit_status": status, "summary": lines[-1] if lines else "",
            "output_tail": output[-6000:]}


def section_ceilings(ctx) -> dict:
    cfg = ctx["cfg"]
    ctx["ceilings"] = kernels.measure_ceilings(ctx["device"], cfg["rounds"], cfg["copy_bytes"], cfg["matmul_size"])
    return ctx["ceilings"]


def _ceilings(ctx) -> dict:
    if "ceilings" not in ctx:
        raise Skip("no ceilings measured (their section failed), so no bandwidth fractions")
    return ctx["ceilings"]


def section_kernels(ctx) -> dict:
    cfg, device, budget = ctx["cfg"], ctx["device"], ctx["budget"]
    ceilings, triton_ok = _ceilings(ctx), kernels.triton_usable(device)
    rows, skipped = [], []
    gen = torch.Generator().manual_seed(0)
    for n in cfg["sizes"]:
        batch = max(1, cfg["elements"] // n)
        for dtype in cfg["dtypes"]:
            for backward in (False, True):
                case = {"n": n, "batch": batch, "dtype": dtype, "pass": "fwd+bwd" if backward else "fwd"}
                if budget.spent():
                    skipped.append({**case, "reason": "global time budget spent"})
                    continue
                rows += kernels.time_case(device, n, batch, dtype, backward, ceilings, cfg["rounds"],
                                          triton_ok=triton_ok, include_fft=dtype == cfg["dtypes"][0], gen=gen)
    kernels.speedups(rows)
    notes = [] if triton_ok else ["Triton rows skipped: no CUDA device and TRITON_INTERPRET is not 1"]
    if kernels.one_pass_module() is None:
        notes.append("monarch_core.kernels.one_pass is not importable here: no one-pass rows")
    return {"rows": rows, "skipped": skipped, "notes": notes, "triton": triton_ok,
            "fp32_precision": os.environ.get("MONARCH_FP32_PRECISION", "ieee")}


def section_dft(ctx) -> dict:
    cfg, device, budget = ctx["cfg"], ctx["device"], ctx["budget"]
    ceilings, triton_ok = _ceilings(ctx), kernels.triton_usable(device)
    rows, skipped = [], []
    for n in cfg["dft_sizes"]:
        batch = max(1, cfg["dft_elements"] // n)
        if budget.spent():
            skipped.append({"n": n, "batch": batch, "reason": "global time budget spent"})
            continue
        rows += kernels.dft_rows(device, n, batch, ceilings, cfg["rounds"], triton_ok)
    kernels.speedups(rows)
    notes = [] if triton_ok else ["no Triton here: the complex64 Monarch DFT runs on the PyTorch path, "
                                  "the bf16/fp16 planar rows need the kernels"]
    return {"rows": rows, "skipped": skipped, "notes": notes}


def _steps(ctx, model: str) -> dict:
    from benchmarks import steps

    if model == "fno" and importlib.util.find_spec("neuralop") is None:
        raise Skip("neuraloperator is not installed: the FNO is neuralop's")
    device = ctx["device"]
    amp = device.type == "cuda"
    result = steps.measure_steps(device, (model,), None, amp, ctx["cfg"]["step_rounds"], 2, ctx["cfg"]["steps"])
    result["goals"] = [g for g in steps.goal_checks(result["rows"]) if g["model"] == model]
    return result


def section_fno_steps(ctx) -> dict:
    return _steps(ctx, "fno")


def section_mri_steps(ctx) -> dict:
    return _steps(ctx, "mri")


def section_ns_generation(ctx) -> dict:
    from pde.data.bench import ns_throughput

    rows = []
    for size, batch, n_steps in ctx["cfg"]["ns"]:
        if ctx["budget"].spent():
            rows.append({"size": size, "batch": batch, "skipped": "global time budget spent"})
            continue
        rows.append(ns_throughput(ctx["device"], size, batch, n_steps))
    return {"rows": rows}


RUNNERS = {name: globals()[f"section_{name}"] for name in SECTIONS}


def run_sections(ctx, sections=SECTIONS, on_section_end=None) -> dict:
    """{section: {"status": ok | error | skipped, "seconds", ...result or "error"/"reason"}}; a section
    left when the budget is spent is skipped with that reason."""
    results = {}
    for name in sections:
        tic = time.perf_counter()
        if ctx["budget"].spent():
            results[name] = {"status": "skipped", "reason": "global time budget spent before it started"}
        else:
            try:
                results[name] = {"status": "ok", **RUNNERS[name](ctx)}
            except Skip as reason:
                results[name] = {"status": "skipped", "reason": str(reason)}
            except Exception as error:  # a broken part must not cost the measurements of the others
                results[name] = {"status": "error", "error": _error_text(error),
                                 "traceback": traceback.format_exc()[-3000:]}
        results[name]["seconds"] = time.perf_counter() - tic
        print(f"[bench gpu] {name}: {results[name]['status']} ({results[name]['seconds']:.1f} s)"
              + (f" — {results[name].get('error') or results[name].get('reason')}"
                 if results[name]["status"] != "ok" else ""), flush=True)
        if on_section_end:
            on_section_end(results)
    return results


def _environment(device) -> dict:
    env = describe_environment(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu_memory_GiB=round(props.total_memory / 2 ** 30, 1), sm_count=props.multi_processor_count,
                   capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda)
    env["one_pass_available"] = kernels.one_pass_module() is not None
    return env


def markdown(result: dict) -> str:
    from benchmarks.steps import goals_table, steps_table

    env, sections = result["environment"], result["sections"]
    lines = [f"# GPU check ({env['device']}){' — DRY RUN (CPU, tiny sizes: times meaningless)' if result['dry_run'] else ''}",
             "", f"torch {env['torch']}, triton {env['triton']}, neuraloperator {env['neuralop']}, python "
             f"{env['python']}, CUDA {env.get('cuda')}; {env['threads']} CPU threads, 1-min load average "
             f"{env['load_average_1min']}. Budget {result['budget_s']} s, used {result['seconds']:.0f} s"
             f"{'' if result['complete'] else ' (INCOMPLETE: the run stopped before the end)'}.", "",
             f"Command: `{env['command']}`", "",
             markdown_table(["section", "status", "seconds", "note"],
                            [[name, s["status"], f"{s['seconds']:.1f}", s.get("error") or s.get("reason") or ""]
                             for name, s in sections.items()])]
    s = sections.get("pytest_gpu", {})
    if s.get("status") == "ok":
        lines += ["", "## pytest -m gpu", "", f"Exit status {s['exit_status']}: {s['summary']}"]
    s = sections.get("ceilings", {})
    if s.get("status") == "ok":
        lines += ["", "## Ceilings (same run)", "", f"Copy bandwidth {s['copy_GBps']:.0f} GB/s (read + write); "
                  f"{s['matmul_dtype']} {s['matmul_size']}³ matmul {s['matmul_TFLOPs']:.1f} TFLOP/s."]
    for name, title in (("kernels", "Monarch multiply kernels"), ("dft", "Monarch DFT vs torch.fft (complex64)")):
        s = sections.get(name, {})
        if s.get("status") == "ok":
            lines += ["", f"## {title}", "", *s["notes"], "", kernels.kernel_table(s["rows"])]
            if s["skipped"]:
                lines.append(f"Skipped (budget): {', '.join(str(c['n']) + (' ' + c.get('dtype', '') + ' ' + c.get('pass', '')).rstrip() for c in s['skipped'])}")
    for name, title in (("fno_steps", "FNO training step"), ("mri_steps", "Unrolled MRI training step")):
        s = sections.get(name, {})
        if s.get("status") == "ok":
            lines += ["", f"## {title} (AMP {s['amp']}, settings {s['settings'][name.split('_')[0]]})", "",
                      steps_table(s["rows"]), goals_table(s["goals"])]
    s = sections.get("ns_generation", {})
    if s.get("status") == "ok":
        lines += ["", "## Navier–Stokes generation", "", markdown_table(
            ["grid", "batch", "steps", "s", "samples·steps/s"],
            [[r["size"], r["batch"], r.get("steps", ""), f"{r['seconds']:.2f}" if "seconds" in r else r["skipped"],
              f"{r['sample_steps_per_s']:.0f}" if "seconds" in r else ""] for r in s["rows"]])]
    lines += ["", f"Figure: `{STEM}.png` (time vs n per variant, forward)."]
    return "\n".join(lines) + "\n"


def run(args) -> dict:
    dry = args.dry_run
    device = torch.device("cpu") if dry else resolve_device(args.device)
    if not dry and device.type != "cuda":
        from common.errors import DeviceError

        raise DeviceError(f"bench gpu needs a CUDA device, found {device}",
                          hint="use --dry-run to run the same code at tiny sizes on the CPU")
    out = Path(args.out or ("runs/bench-gpu-dry" if dry else "benchmarks/results"))
    refuse_overwrite(out, STEM, args.overwrite)
    sections = tuple(args.sections or SECTIONS)
    ctx = {"device": device, "cfg": DRY if dry else FULL, "budget": Budget(args.budget_s),
           "root": str(Path(__file__).resolve().parents[1])}
    result = {"dry_run": dry, "budget_s": args.budget_s, "complete": False, "seconds": 0.0,
              "environment": _environment(device), "sections": {}}

    def save(sections_done):
        result["sections"], result["seconds"] = sections_done, ctx["budget"].seconds - ctx["budget"].left()
        write_results(out, STEM, result, markdown(result))

    run_sections(ctx, sections, save)
    result["complete"] = True
    save(result["sections"])
    rows = [r for name in ("kernels", "dft") for r in result["sections"].get(name, {}).get("rows", [])]
    kernels.plot_times(rows, out / f"{STEM}.png", result["environment"]["device"] + (" (dry run)" if dry else ""))
    print("wrote", out / f"{STEM}.json", out / f"{STEM}.md", out / f"{STEM}.png")
    return result


def main(args) -> int:
    run(args)
    return 0
