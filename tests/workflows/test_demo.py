"""The README's first command, `python run.py demo`, at its smallest setting (sizes "smoke")."""
import json
import re

import pytest

from monarch_core import TRANSFORM_KINDS
from workflows.demo import run_demo


@pytest.mark.slow
def test_demo_smoke_writes_a_complete_report(tmp_path):
    out, data = tmp_path / "demo", tmp_path / "datasets"
    report = run_demo(out_dir=str(out), data_dir=str(data), device="cpu", sizes="smoke")
    text = report.read_text()
    assert report == out / "report.md"
    assert "This is a demo, not a benchmark" in text and "python run.py pde compare" in text
    # both tables, one row per transform / model
    pde_section = text[text.index("## PDE"):text.index("## MRI")]
    for transform in TRANSFORM_KINDS:
        assert re.search(rf"^\| {transform} \| [0-9.]+ ± [0-9.]+ \|", pde_section, re.M), transform
    mri_section = text[text.index("## MRI"):text.index("## Plots")]
    for model in ("zf", "msense", "unrolled-fft", "unrolled-monarch"):
        assert re.search(rf"^\| {model} \| \w+ \| [0-9.]+ ± [0-9.]+ dB", mri_section, re.M), model
    # the JSON behind the tables and the plots it links
    merged = json.loads((out / "report.json").read_text())
    assert len(merged["pde_rows"]) == len(TRANSFORM_KINDS) and len(merged["mri_rows"]) == 4
    assert {r["transform"] for r in merged["pde_rows"]} == set(TRANSFORM_KINDS)
    links = re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", text)
    assert any("error_vs_step" in link for link in links) and any("fields" in link for link in links)
    assert any("examples" in link for link in links)
    for link in links:
        assert (out / link).stat().st_size > 5000, link
    # data were generated into the data folder and are reused by a second run
    ns_file = next(data.glob("ns-tiny*.h5"))
    mtime = ns_file.stat().st_mtime
    run_demo(out_dir=str(out), data_dir=str(data), device="cpu", sizes="smoke")
    assert ns_file.stat().st_mtime == mtime
