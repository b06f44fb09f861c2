"""`python run.py report RUN_DIR [RUN_DIR ...]`: one report from the JSON of finished runs.

A result file is any JSON under a run directory with a top-level ``rows`` list (what `pde compare`
and `mri compare` write). Rows are recognised by their keys:

  PDE rows: dataset, transform, rel_l2_mean, rel_l2_se, params (+ optional fields)
  MRI rows: model, transform, acceleration, n_train_scans, psnr_mean, psnr_se, ssim_mean, ssim_se,
            nrmse_mean, params

Rows that describe the same experiment (same key fields) in several run directories — other seeds or
other machines — are merged: the report gives the mean over runs and its standard error across runs
(common.stats; with one run, the run's own standard error over test samples / volumes is kept, and a
value without one is shown as "(n=1)", never "± 0"). A run folder given twice (``A A A/``) is counted
once, saying so. Outputs are written atomically with normal permissions (common.files) and existing
report files are replaced only with ``overwrite=True`` (``--overwrite``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from common.errors import FormatError, RunExistsError
from common.files import save_figure, write_json_atomic, write_text_atomic
from common.stats import format_mean_se, mean_se

REPORT_FILES = ("report.md", "report.json", "report.png")

PDE_KEY = ("dataset", "transform")
MRI_KEY = ("model", "transform", "acceleration", "n_train_scans")
PDE_METRICS = ("rel_l2_mean",)
MRI_METRICS = ("psnr_mean", "ssim_mean", "nrmse_mean")


def unique_run_dirs(run_dirs) -> tuple[list[str], list[str]]:
    """The run folders with repeats removed (same folder however spelled: A, A/, ./A), in the order given,
    and one note per folder that was given more than once."""
    seen: dict[Path, list[str]] = {}
    for run_dir in run_dirs:
        seen.setdefault(Path(run_dir).resolve(), []).append(str(run_dir))
    notes = [f"run folder {spellings[0]} was given {len(spellings)} times; counted once"
             for spellings in seen.values() if len(spellings) > 1]
    return [spellings[0] for spellings in seen.values()], notes


def find_result_files(run_dir: Path) -> list[Path]:
    """JSON files under run_dir with a top-level `rows` list, in a stable order."""
    if not run_dir.exists():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    if not run_dir.is_dir():
        raise FormatError(f"{run_dir} is a file; expected a run folder (written by `run.py pde compare`, "
                          f"`run.py mri compare` or `run.py demo`)")
    found = []
    for path in sorted(run_dir.rglob("*.json")):
        try:
            payload = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        # an aggregate written by this module is skipped, so re-running a report never counts rows twice
        if isinstance(payload, dict) and isinstance(payload.get("rows"), list) and payload.get("kind") != "aggregate":
            found.append(path)
    return found


def classify(row: dict) -> str | None:
    if "rel_l2_mean" in row and "dataset" in row:
        return "pde"
    if "psnr_mean" in row and "model" in row:
        return "mri"
    return None


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def merge_rows(rows_by_run: list[tuple[str, dict]], key_fields, metrics) -> list[dict]:
    """Merge rows with equal key fields across runs: mean over runs and s.e. across runs."""
    groups: dict[tuple, list[tuple[str, dict]]] = {}
    for run, row in rows_by_run:
        groups.setdefault(tuple(row.get(k) for k in key_fields), []).append((run, row))
    merged = []
    for key, members in groups.items():
        first = members[0][1]
        out = {k: v for k, v in zip(key_fields, key) if v is not None}
        out["runs"] = len(members)
        out["sources"] = sorted({run for run, _ in members})
        for metric in metrics:
            values = [r[metric] for _, r in members if _finite_number(r.get(metric))]
            if not values:
                continue
            mean, se = mean_se(values)
            out[metric] = mean
            se_name = metric.replace("_mean", "_se")
            if len(values) == 1:  # one run: its own s.e. over samples, if it has a real one
                own = first.get(se_name)
                se = own if _finite_number(own) and own > 0 else math.nan
            out[se_name] = se
        for extra in ("params", "transform_params", "epochs", "train_seconds_per_epoch", "device"):
            if extra in first:
                out[extra] = first[extra]
        merged.append(out)
    return merged


def _fmt(mean, se, digits, unit=""):
    """"mean ± se" (common.stats.format_mean_se); "(n=1)" without a standard error; "—" without a value."""
    if not _finite_number(mean):
        return "—"
    return format_mean_se(mean, se if _finite_number(se) and se > 0 else math.nan, digits, unit)


def pde_table(rows: list[dict]) -> str:
    """Paper-style table: one row per transform, one column per dataset."""
    datasets = sorted({r["dataset"] for r in rows})
    transforms = list(dict.fromkeys(r["transform"] for r in rows))
    lookup = {(r["transform"], r["dataset"]): r for r in rows}
    baseline = {d: lookup.get(("fft", d), {}).get("rel_l2_mean") for d in datasets}
    header = ["transform", *[f"{d} rel. L2" for d in datasets], *[f"{d} / fft" for d in datasets], "params",
              "of which transforms"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for t in transforms:
        cells = [t]
        cells += [_fmt(lookup.get((t, d), {}).get("rel_l2_mean"), lookup.get((t, d), {}).get("rel_l2_se"), 4) for d in datasets]
        for d in datasets:
            value, base = lookup.get((t, d), {}).get("rel_l2_mean"), baseline[d]
            cells.append(f"{value / base:.3f}" if value is not None and base else "—")
        first = next((lookup[(t, d)] for d in datasets if (t, d) in lookup), {})
        for key in ("params", "transform_params"):
            cells.append(f"{first[key]:,}" if isinstance(first.get(key), int) else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def mri_table(rows: list[dict]) -> str:
    """One row per (model, transform), one column per (acceleration, training scans).

    Untrained models (n_train_scans 0: zero-filled, classical) are shown in every column of their
    acceleration, since the number of training scans does not apply to them."""
    trained_columns = {(r.get("acceleration"), r.get("n_train_scans")) for r in rows if r.get("n_train_scans")}
    columns = sorted(trained_columns or {(r.get("acceleration"), 0) for r in rows},
                     key=lambda c: (float(c[0] or 0), float(c[1] or 0)))
    models = []
    for r in rows:
        if (r["model"], r.get("transform")) not in models:
            models.append((r["model"], r.get("transform")))
    lookup = {(r["model"], r.get("transform"), r.get("acceleration"), r.get("n_train_scans")): r for r in rows}
    header = ["model", "transform"] + [f"{a:g}×, N={n}: PSNR, SSIM" for a, n in columns] + ["params"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, transform in models:
        cells = [model, str(transform or "—")]
        params = None
        for a, n in columns:
            r = lookup.get((model, transform, a, n)) or lookup.get((model, transform, a, 0))
            if r is None:
                cells.append("—")
                continue
            params = r.get("params", params)
            cells.append(f"{_fmt(r.get('psnr_mean'), r.get('psnr_se'), 2, 'dB')}, {_fmt(r.get('ssim_mean'), r.get('ssim_se'), 3)}")
        cells.append(f"{params:,}" if isinstance(params, int) else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_report(pde_rows: list[dict], mri_rows: list[dict], path: Path) -> Path | None:
    """Bar charts: relative L2 per dataset/transform (PDE) and PSNR per model/acceleration (MRI)."""
    if not pde_rows and not mri_rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # (rows, bar label, metric, y label, title, colour) per panel
    panels = [p for p in (
        (pde_rows, lambda r: f"{r['dataset']}\n{r['transform']}", "rel_l2",
         "relative L2 error (lower is better)", "PDE: FNO by spectral transform", "tab:blue"),
        (mri_rows, lambda r: f"{r['model']}\n{r.get('acceleration')}× N={r.get('n_train_scans')}", "psnr",
         "PSNR, dB (higher is better)", "MRI reconstruction", "tab:orange"),
    ) if p[0]]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for ax, (rows, label, metric, ylabel, title, colour) in zip(axes[0], panels):
        values = [r[f"{metric}_mean"] for r in rows]
        errors = [r[f"{metric}_se"] if _finite_number(r.get(f"{metric}_se")) else 0 for r in rows]
        ax.bar(range(len(rows)), values, yerr=errors, color=colour)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if metric == "psnr":  # dB differences are small against the absolute level
            ax.set_ylim(min(values) - 3, max(values) + 2)
        ax.set_xticks(range(len(rows)), [label(r) for r in rows], rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return path


def table_sections(pde: list[dict], mri: list[dict]) -> list[str]:
    """The markdown sections of the merged tables (headings included), PDE first."""
    sections = []
    if pde:
        sections += ["## PDE: relative L2 error (mean ± s.e.)\n", pde_table(pde)]
    if mri:
        sections += ["## MRI: PSNR and SSIM per volume (mean ± s.e.)\n", mri_table(mri)]
    return sections


def build_report(run_dirs: list[str], out_dir: str, overwrite: bool = True, notes: list[str] | None = None) -> dict:
    """Gather result rows from run_dirs, merge across runs, write report.{md,json,png} into out_dir.

    Repeated run folders are counted once (a note is appended to `notes`, when given, and to the
    payload's ``notes``); a result file reached from two overlapping folders is read once. With
    overwrite=False an existing report file in out_dir is refused with RunExistsError (the command
    line's default; the demo rewrites its own report). Raises FileNotFoundError for a missing folder or
    one without results.
    """
    run_dirs, repeat_notes = unique_run_dirs(run_dirs)
    if notes is not None:
        notes.extend(repeat_notes)
    out = Path(out_dir)
    existing = [name for name in REPORT_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise RunExistsError(f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them "
                             f"or --out to write elsewhere")
    pde_rows, mri_rows, files, read = [], [], [], set()
    for run_dir in map(Path, run_dirs):
        result_files = find_result_files(run_dir)
        if not result_files:
            raise FileNotFoundError(
                f"no result JSON (a file with a top-level 'rows' list, as written by `run.py pde compare` / "
                f"`run.py mri compare` / `run.py demo`) under {run_dir}"
            )
        for path in result_files:
            if path.resolve() in read:  # folders that overlap (A and A/pde): each file counts once
                continue
            read.add(path.resolve())
            files.append(str(path))
            for row in json.loads(path.read_text())["rows"]:
                kind = classify(row)
                if kind == "pde":
                    pde_rows.append((str(run_dir), row))
                elif kind == "mri":
                    mri_rows.append((str(run_dir), row))
    pde = merge_rows(pde_rows, PDE_KEY, PDE_METRICS)
    mri = merge_rows(mri_rows, MRI_KEY, MRI_METRICS)
    png = plot_report(pde, mri, out / "report.png")
    sections = [f"# Report over {len(run_dirs)} run director{'y' if len(run_dirs) == 1 else 'ies'}\n",
                "Sources: " + ", ".join(f"`{d}`" for d in run_dirs) + "\n", *table_sections(pde, mri)]
    if png:
        sections.append(f"![results]({png.name})\n")
    sections.append("With several runs of the same experiment, ± is the standard error across runs; "
                    "with one, the standard error over test samples (PDE) or volumes (MRI); \"(n=1)\" marks a "
                    "single value without one.\n")
    if repeat_notes:
        sections.append("Note: " + "; ".join(repeat_notes) + ".\n")
    payload = {"kind": "aggregate", "sources": files, "notes": repeat_notes, "rows": pde + mri, "pde_rows": pde,
               "mri_rows": mri}
    write_json_atomic(out / "report.json", _json_safe(payload))
    write_text_atomic(out / "report.md", "\n".join(sections))
    return payload


def _json_safe(value):
    """NaN (an undefined standard error) as null: strict JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
