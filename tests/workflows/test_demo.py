"""The README's first command, `python run.py demo`, at its smallest setting (sizes "smoke"): both
studies run through the engine and the report holds both, with every method's row and its figures."""
import json
import re

import pytest

from workflows.demo import STUDIES, demo_spec, run_demo


@pytest.mark.slow
def test_demo_smoke_writes_a_complete_report(tmp_path):
    out, data = tmp_path / "demo", tmp_path / "datasets"
    report = run_demo(out_dir=str(out), data_dir=str(data), device="cpu", sizes="smoke")
    text = report.read_text()
    assert report == out / "report.md"
    assert "This is a demo, not a benchmark" in text and "python run.py pde study burgers-cpu" in text
    for application, preset in STUDIES:
        spec = demo_spec(application, preset, "smoke", data, "cpu")
        section = text[text.index(f"## {application.upper()}: study"):]
        results = json.loads((out / application / "results.json").read_text())
        assert results["status"]["complete"], results["status"]["missing"]
        for method in spec.methods:  # one table row per method, with a value
            assert re.search(rf"^\| {re.escape(method.label or method.name)} \| [0-9.]+", section, re.M), method.name
        assert (out / application / "report.png").stat().st_size > 5000
        assert f"({application}/report.png)" in text
    # data were generated into the data folder and are reused (and the studies resumed) by a second run
    files = {p: p.stat().st_mtime for p in data.rglob("*.h5")}
    assert files
    run_demo(out_dir=str(out), data_dir=str(data), device="cpu", sizes="smoke")
    assert {p: p.stat().st_mtime for p in data.rglob("*.h5")} == files
