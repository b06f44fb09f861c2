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
  fno_steps      FNO training step per transform kind at 64² (width 20, batch 20, AMP), and its 40-frame NS rollout — benchmarks.steps;
                 skipped with the reason when neuraloperator is missing
  ns_generation  Navier–Stokes solver throughput (pde.data.bench.ns_throughput)
  mri_steps      unrolled and MoDL MRI training steps per kind (AMP) — benchmarks.steps
A global budget (--budget-s) skips what is left once spent (the kernel sizes one by one).

--dry-run runs the same code at tiny sizes on the CPU (Triton only under TRITON_INTERPRET=1; GPU-only
parts skipped with a recorded reason) into --out (default runs/bench-gpu-dry). Results: gpu_check.json,
.md and .png (time vs n per variant) in --out (default benchmarks/results), never over existing ones
without --overwrite.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

from benchmarks import kernels
from benchmarks.cli import GPU_SECTIONS
from common.bench_results import refuse_overwrite, write_results
from common.files import write_json_atomic
from common.device import resolve_device
from common.environment import describe_environment
from common.tables import markdown_table

STEM = "gpu_check"
SECTIONS = GPU_SECTIONS
#: sizes of a real run and of the dry run
FULL = {"sizes": (256, 1024, 4096, 16384), "elements": 2 ** 25, "dtypes": ("float32", "bfloat16"), "rounds": 10,
        "dft_sizes": (256, 1024), "dft_elements": 2 ** 24, "copy_bytes": None, "matmul_size": None,
        "steps": {}, "step_rounds": 10, "ns": ((64, 200, 200), (256, 100, 100)), "pytest_timeout": 150,
        "sanitizer_timeout": 90, "tuned_sizes": (1024, 4096), "tuned_budget_s": 60.0}
DRY = {"sizes": (64, 256), "elements": 2 ** 12, "dtypes": ("float32", "bfloat16"), "rounds": 2,
       "dft_sizes": (64, 256), "dft_elements": 2 ** 12, "copy_bytes": 8 << 20, "matmul_size": 256,
       "steps": {"fno": {"batch": 2, "grid": 32, "n_modes": (8, 8), "n_layers": 1, "t_out": 3},
                 "mri": {"batch": 1, "grid": 32, "coils": 2, "scale": "tiny"}},
       "step_rounds": 2, "ns": ((32, 2, 5),), "pytest_timeout": 0, "sanitizer_timeout": 300,
       "tuned_sizes": (64,), "tuned_budget_s": 30.0}
#: environment variable of the two-pass kernels' autotuning (block_gemm.AUTOTUNE_ENV; read at call time)
AUTOTUNE_ENV = "MONARCH_TRITON_AUTOTUNE"


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


class SectionFailed(Exception):
    """A section that ran but whose checks failed: recorded as an error with what it measured."""

    def __init__(self, message: str, data: dict):
        super().__init__(message)
        self.data = data


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _emit(ctx, partial: dict) -> None:
    """Hand the rows finished so far to the parent (written at once, so a kill keeps them)."""
    if ctx.get("emit"):
        ctx["emit"](partial)


def _sanitizer_executable() -> str | None:
    found = shutil.which("compute-sanitizer")
    for candidate in (found, "/usr/local/cuda/bin/compute-sanitizer"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _run_tail(command, timeout, cwd, env=None) -> dict:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
        output, status = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        status = f"timed out after {timeout:.0f} s"
    lines = [line for line in output.splitlines() if line.strip()]
    return {"command": " ".join(command), "exit_status": status, "summary": lines[-1] if lines else "",
            "output_tail": output[-4000:]}


def section_sanitizer(ctx) -> dict:
    """compute-sanitizer synccheck and memcheck over a small case of every kernel
    (benchmarks.sanitize_cases, which also compares each against the PyTorch path)."""
    device, cfg, budget = ctx["device"], ctx["cfg"], ctx["budget"]
    cases = [sys.executable, "-m", "benchmarks.sanitize_cases", "--device", str(device)]
    if device.type != "cuda":
        if not kernels.triton_usable(device):
            raise Skip("no CUDA device and TRITON_INTERPRET is not 1: no kernel to check")
        return _sanitizer_verdict({"interpreter (no sanitizer on the CPU)": _run_tail(
            cases, cfg["sanitizer_timeout"], ctx["root"])})
    sanitizer = _sanitizer_executable()
    if sanitizer is None:
        return _sanitizer_verdict({"none (compute-sanitizer not found)": _run_tail(
            cases, cfg["sanitizer_timeout"], ctx["root"])})
    tools = {}
    for tool in ("synccheck", "memcheck"):
        timeout = max(20, min(cfg["sanitizer_timeout"], budget.left() - 30))
        tools[tool] = _run_tail([sanitizer, "--tool", tool, "--error-exitcode", "99", *cases], timeout, ctx["root"])
        _emit(ctx, {"tools": tools})
    return _sanitizer_verdict(tools)


def _sanitizer_verdict(tools: dict) -> dict:
    failed = [tool for tool, t in tools.items() if t["exit_status"] != 0]
    if failed:
        raise SectionFailed(f"{', '.join(failed)}: nonzero exit (a sanitizer finding or a kernel that "
                            "disagrees with the PyTorch path; see tools)", {"tools": tools})
    return {"tools": tools}


def section_kernels_tuned(ctx) -> dict:
    """A few sizes with the two-pass kernels autotuned (fp32 forward), in a budget of its own."""
    cfg = ctx["cfg"]
    before = os.environ.get(AUTOTUNE_ENV)
    os.environ[AUTOTUNE_ENV] = "1"
    ctx = {**ctx, "budget": Budget(min(cfg["tuned_budget_s"], ctx["budget"].left())),
           "cfg": {**cfg, "sizes": cfg["tuned_sizes"], "dtypes": ("float32",)}}
    try:
        result = section_kernels(ctx, passes=(False,))
    finally:
        if before is None:
            os.environ.pop(AUTOTUNE_ENV)
        else:
            os.environ[AUTOTUNE_ENV] = before
    result["notes"].append(f"two-pass kernels autotuned ({AUTOTUNE_ENV}=1); budget {cfg['tuned_budget_s']} s")
    from monarch_core.kernels import block_gemm

    result["autotuned_configs"] = block_gemm.tuned_configs()  # what the heuristic tiles could learn from
    return result


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


def section_kernels(ctx, passes=(False, True)) -> dict:
    cfg, device, budget = ctx["cfg"], ctx["device"], ctx["budget"]
    ceilings, triton_ok = _ceilings(ctx), kernels.triton_usable(device)
    rows, skipped = [], []
    gen = torch.Generator().manual_seed(0)
    for n in cfg["sizes"]:
        batch = max(1, cfg["elements"] // n)
        for dtype in cfg["dtypes"]:
            for backward in passes:
                case = {"n": n, "batch": batch, "dtype": dtype, "pass": "fwd+bwd" if backward else "fwd"}
                if budget.spent():
                    skipped.append({**case, "reason": "global time budget spent"})
                    continue
                rows += kernels.time_case(device, n, batch, dtype, backward, ceilings, cfg["rounds"],
                                          triton_ok=triton_ok, include_fft=dtype == cfg["dtypes"][0], gen=gen)
                _emit(ctx, {"rows": rows, "skipped": skipped})
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
        _emit(ctx, {"rows": rows, "skipped": skipped})
    kernels.speedups(rows)
    notes = [] if triton_ok else ["no Triton here: the complex64 Monarch DFT runs on the PyTorch path, "
                                  "the bf16/fp16 planar rows need the kernels"]
    return {"rows": rows, "skipped": skipped, "notes": notes}


def _steps(ctx, models: tuple) -> dict:
    from benchmarks import steps

    if {"fno", "ns"} & set(models) and importlib.util.find_spec("neuralop") is None:
        raise Skip("neuraloperator is not installed: the FNO is neuralop's")
    device = ctx["device"]
    amp = device.type == "cuda"
    result = steps.measure_steps(device, models, None, amp, ctx["cfg"]["step_rounds"], 2, ctx["cfg"]["steps"])
    result["goals"] = [g for g in steps.goal_checks(result["rows"]) if g["model"] in models]
    return result


def section_fno_steps(ctx) -> dict:
    return _steps(ctx, ("fno", "ns"))  # one FNO step, and ns-gpu's 40-frame rollout step (its epoch: 50 of them)


def section_mri_steps(ctx) -> dict:
    return _steps(ctx, ("mri", "modl"))  # unrolled, and MoDL (the MRI studies' network: A in every CG step)


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


def _finish_section(results: dict, name: str, tic: float, on_section_end) -> None:
    """Record a section's seconds, print its one status line and hand the rows so far to the callback."""
    results[name]["seconds"] = time.perf_counter() - tic
    print(f"[bench gpu] {name}: {results[name]['status']} ({results[name]['seconds']:.1f} s)"
          + (f" — {results[name].get('error') or results[name].get('reason')}"
             if results[name]["status"] != "ok" else ""), flush=True)
    if on_section_end:
        on_section_end(results)


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
            except SectionFailed as failure:
                results[name] = {"status": "error", "error": str(failure), **failure.data}
            except Exception as error:  # a broken part must not cost the measurements of the others
                results[name] = {"status": "error", "error": _error_text(error),
                                 "traceback": traceback.format_exc()[-3000:]}
        _finish_section(results, name, tic, on_section_end)
    return results


#: test hook: the section named here aborts its process right after writing its first rows
ABORT_ENV = "BENCH_GPU_ABORT_IN_SECTION"
#: seconds a section process may run past the global budget (its last case finishing) before it is killed
GRACE_S = 60.0


def run_section_isolated(name: str, ctx, work: Path) -> dict:
    """Run one section in its own Python process (`python -m benchmarks.gpu --child ...`), so a CUDA fault
    or a hang costs that section only. Its rows arrive through work/<name>.json, rewritten as each
    finishes: a section killed at the budget or crashed keeps them (status "error", with the log's tail)."""
    work.mkdir(parents=True, exist_ok=True)
    spec_path, result_path, log_path = (work / f"{name}{suffix}" for suffix in (".spec.json", ".json", ".log"))
    spec = {"name": name, "device": str(ctx["device"]), "dry": ctx["cfg"] is DRY, "budget_left": ctx["budget"].left(),
            "root": ctx["root"], "ceilings": ctx.get("ceilings"), "result": str(result_path)}
    write_json_atomic(spec_path, spec)
    result_path.unlink(missing_ok=True)
    timeout = ctx["budget"].left() + GRACE_S
    with open(log_path, "w") as log:
        try:
            status = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--child", str(spec_path)],
                                    stdout=log, stderr=subprocess.STDOUT, cwd=ctx["root"], timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            status = f"killed after {timeout:.0f} s (budget spent)"
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    if status != 0 or result.get("status") in (None, "partial"):
        tail = log_path.read_text(errors="replace")[-3000:]
        result = {**result, "status": "error", "error": f"section process ended with {status}"
                  + (" before finishing (rows so far kept)" if result else ""), "traceback": tail}
    return result


def _child_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    ctx = {"device": torch.device(spec["device"]), "cfg": DRY if spec["dry"] else FULL,
           "budget": Budget(spec["budget_left"]), "root": spec["root"]}
    if spec["ceilings"] is not None:
        ctx["ceilings"] = spec["ceilings"]
    def emit(partial):
        write_json_atomic(Path(spec["result"]), {"status": "partial", **partial})
        if os.environ.get(ABORT_ENV) == spec["name"]:
            os.abort()  # the tests' stand-in for a CUDA fault that kills the process mid-section

    ctx["emit"] = emit
    results = run_sections(ctx, (spec["name"],))
    write_json_atomic(Path(spec["result"]), results[spec["name"]])
    return 0


def run_sections_isolated(ctx, sections, work: Path, on_section_end=None) -> dict:
    """run_sections with one process per section (the ceilings measured by one handed to the next)."""
    results = {}
    for name in sections:
        tic = time.perf_counter()
        if ctx["budget"].spent():
            results[name] = {"status": "skipped", "reason": "global time budget spent before it started"}
        else:
            results[name] = run_section_isolated(name, ctx, work)
            if name == "ceilings" and results[name]["status"] == "ok":
                ctx["ceilings"] = {k: v for k, v in results[name].items() if k not in ("status", "seconds")}
        _finish_section(results, name, tic, on_section_end)
    return results


def default_out(dry: bool) -> Path:
    """$OUT/bench-gpu[-dry] when OUT is set (the folder that comes back from a lent machine), else
    benchmarks/results (runs/bench-gpu-dry for the dry run)."""
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"]) / ("bench-gpu-dry" if dry else "bench-gpu")
    return Path("runs/bench-gpu-dry" if dry else "benchmarks/results")


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
    s = sections.get("sanitizer", {})
    if s.get("tools"):
        lines += ["", "## compute-sanitizer (small case of every kernel)", "", markdown_table(
            ["tool", "exit status", "last line"], [[tool, t["exit_status"], t["summary"]] for tool, t in s["tools"].items()])]
    s = sections.get("pytest_gpu", {})
    if s.get("status") == "ok":
        lines += ["", "## pytest -m gpu", "", f"Exit status {s['exit_status']}: {s['summary']}"]
    s = sections.get("ceilings", {})
    if s.get("status") == "ok":
        lines += ["", "## Ceilings (same run)", "", f"Copy bandwidth {s['copy_GBps']:.0f} GB/s (read + write); "
                  f"{s['matmul_dtype']} {s['matmul_size']}³ matmul {s['matmul_TFLOPs']:.1f} TFLOP/s."]
    for name, title in (("kernels", "Monarch multiply kernels"), ("kernels_tuned", "Autotuned two-pass (fp32 fwd)"), ("dft", "Monarch DFT vs torch.fft (complex64)")):
        s = sections.get(name, {})
        if s.get("rows"):
            lines += ["", f"## {title}{'' if s['status'] == 'ok' else ' (' + s['status'] + ': rows so far)'}", "",
                      *s.get("notes", []), "", kernels.kernel_table(s["rows"])]
            if s.get("skipped"):
                lines.append(f"Skipped (budget): {', '.join(str(c['n']) + (' ' + c.get('dtype', '') + ' ' + c.get('pass', '')).rstrip() for c in s['skipped'])}")
    for name, title in (("fno_steps", "FNO training step and its NS rollout step"), ("mri_steps", "Unrolled and MoDL MRI training steps")):
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
    out = Path(args.out) if args.out else default_out(dry)
    refuse_overwrite(out, STEM, args.overwrite)
    sections = tuple(args.sections or SECTIONS)
    ctx = {"device": device, "cfg": DRY if dry else FULL, "budget": Budget(args.budget_s),
           "root": str(Path(__file__).resolve().parents[1])}
    result = {"dry_run": dry, "budget_s": args.budget_s, "complete": False, "seconds": 0.0,
              "environment": _environment(device), "sections": {}}

    def save(sections_done):
        result["sections"], result["seconds"] = sections_done, ctx["budget"].seconds - ctx["budget"].left()
        write_results(out, STEM, result, markdown(result))

    if not getattr(args, "autotune", False):
        os.environ.setdefault(AUTOTUNE_ENV, "0")  # a fixed heuristic tile per shape: few, fast compiles
    result["autotune"] = os.environ.get(AUTOTUNE_ENV, "1") != "0"
    if getattr(args, "in_process", False):
        run_sections(ctx, sections, save)
    else:
        run_sections_isolated(ctx, sections, out / f"{STEM}_sections", save)
    result["complete"] = True
    save(result["sections"])
    rows = [r for name in ("kernels", "dft") for r in result["sections"].get(name, {}).get("rows", [])]
    kernels.plot_times(rows, out / f"{STEM}.png", result["environment"]["device"] + (" (dry run)" if dry else ""))
    print("wrote", out / f"{STEM}.json", out / f"{STEM}.md", out / f"{STEM}.png")
    return result


def main(args) -> int:
    run(args)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child_main(sys.argv[2]))
    sys.exit("usage: python run.py bench gpu ... (this module's --child form is internal)")
