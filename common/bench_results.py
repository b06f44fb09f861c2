"""Where benchmark results go: <stem>.json + <stem>.md (+ figures), written atomically (common.files),
never over existing results unless asked (--overwrite), and the options every timing benchmark takes."""
from __future__ import annotations

from pathlib import Path

from common.errors import RunExistsError
from common.files import write_json_atomic, write_text_atomic


def write_results(out_dir, stem: str, payload: dict, markdown: str) -> tuple[Path, Path]:
    """Write <stem>.json and <stem>.md under out_dir atomically; return their paths."""
    out = Path(out_dir)
    return write_json_atomic(out / f"{stem}.json", payload), write_text_atomic(out / f"{stem}.md", markdown)


def refuse_overwrite(out_dir, stem: str, overwrite: bool) -> None:
    """RunExistsError when <stem>.json or .md already exists in out_dir and overwrite is False (checked
    before any measurement, so a long run never ends in a refusal)."""
    existing = [p for p in (Path(out_dir) / f"{stem}.json", Path(out_dir) / f"{stem}.md") if p.exists()]
    if existing and not overwrite:
        raise RunExistsError(f"{existing[0]} already exists; expected a folder without {stem}.* results",
                             hint="pass --overwrite to replace them, or --out another folder")


def add_result_options(parser, what: str = "results") -> None:
    """--overwrite and --allow-loaded, the options of every benchmark that writes timings (see
    common.machine_load for the load rule)."""
    parser.add_argument("--overwrite", action="store_true", help=f"replace existing {what} in --out")
    parser.add_argument("--allow-loaded", action="store_true", help="on the CPU, write the result even when the "
                        "1-minute load average exceeds the core count (labelled LOADED; default: refuse)")
