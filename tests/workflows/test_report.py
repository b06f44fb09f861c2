import json
import math

import pytest

from workflows.report import build_report


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": rows}))


def _pde(transform, err, se=0.001):
    return {"dataset": "ns-v1e-3", "transform": transform, "rel_l2_mean": err, "rel_l2_se": se, "params": 1000}


def _mri(model, psnr):
    return {"model": model, "transform": "monarch", "acceleration": 2.0, "n_train_scans": 1, "psnr_mean": psnr,
            "psnr_se": 0.1, "ssim_mean": 0.9, "ssim_se": 0.01, "nrmse_mean": 0.1, "params": 10}


def test_merges_seeds_with_standard_error_across_runs(tmp_path):
    _write(tmp_path / "seed0" / "pde" / "compare.json", [_pde("fft", 0.02), _pde("monarch", 0.010)])
    _write(tmp_path / "seed1" / "pde" / "compare.json", [_pde("fft", 0.04), _pde("monarch", 0.014)])
    _write(tmp_path / "seed1" / "mri" / "compare.json", [_mri("msense", 30.0)])
    (tmp_path / "seed1" / "notes.json").write_text("[1, 2]")  # not a result file: ignored
    out = tmp_path / "report"
    payload = build_report([str(tmp_path / "seed0"), str(tmp_path / "seed1")], str(out))
    fft = next(r for r in payload["pde_rows"] if r["transform"] == "fft")
    assert fft["runs"] == 2 and fft["rel_l2_mean"] == pytest.approx(0.03)
    assert fft["rel_l2_se"] == pytest.approx(math.sqrt(((0.01 ** 2) * 2) / 1) / math.sqrt(2))
    mri = payload["mri_rows"][0]
    assert mri["runs"] == 1 and mri["psnr_se"] == 0.1  # one run: its own s.e. over volumes is kept
    text = (out / "report.md").read_text()
    assert "0.0300 ± 0.0100" in text and "0.400" in text  # monarch/fft ratio = 0.012 / 0.03
    assert "30.00 ± 0.10 dB" in text
    assert (out / "report.png").stat().st_size > 1000


def test_rerunning_into_a_run_dir_does_not_double_count(tmp_path):
    _write(tmp_path / "run" / "compare.json", [_pde("fft", 0.02)])
    build_report([str(tmp_path / "run")], str(tmp_path / "run"))
    payload = build_report([str(tmp_path / "run")], str(tmp_path / "run"))
    assert payload["pde_rows"][0]["runs"] == 1


def test_missing_results_are_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no result JSON"):
        build_report([str(tmp_path / "empty")], str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report([str(tmp_path / "nope")], str(tmp_path / "out"))


def test_repeated_run_folders_count_once_and_say_so(tmp_path, capsys):
    import run

    _write(tmp_path / "A" / "compare.json", [_pde("fft", 0.02)])
    _write(tmp_path / "B" / "compare.json", [_pde("fft", 0.04)])
    a = str(tmp_path / "A")
    assert run.main(["report", a, a, a + "/", str(tmp_path / "B"), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert f"note: run folder {a} was given 3 times; counted once" in printed
    payload = json.loads((tmp_path / "out" / "report.json").read_text())
    fft = payload["pde_rows"][0]
    assert fft["runs"] == 2 and fft["rel_l2_mean"] == pytest.approx(0.03)  # not (3·0.02 + 0.04) / 4
    assert fft["rel_l2_se"] == pytest.approx(0.01)
    # overlapping folders (A and a folder inside it) read each result file once
    payload = build_report([str(tmp_path), a], str(tmp_path / "out2"))
    assert payload["pde_rows"][0]["runs"] == 2 and len(payload["sources"]) == 2


def test_single_values_show_n1_never_plus_minus_zero(tmp_path):
    _write(tmp_path / "run" / "compare.json", [_pde("fft", 0.02, se=None), _pde("dense", 0.03, se=0.0),
                                               _pde("monarch", 0.025, se=float("nan"))])
    payload = build_report([str(tmp_path / "run")], str(tmp_path / "out"))
    text = (tmp_path / "out" / "report.md").read_text()
    assert "0.0200 (n=1)" in text and "0.0300 (n=1)" in text and "0.0250 (n=1)" in text
    assert "± 0.0000" not in text and "± nan" not in text
    assert all(math.isnan(r["rel_l2_se"]) for r in payload["pde_rows"])
    stored = json.loads((tmp_path / "out" / "report.json").read_text())  # strict JSON: null, not NaN
    assert all(r["rel_l2_se"] is None for r in stored["pde_rows"])


def test_report_files_have_normal_permissions_and_are_not_overwritten(tmp_path, capsys):
    import os

    import run

    _write(tmp_path / "run" / "compare.json", [_pde("fft", 0.02)])
    old = os.umask(0o022)
    try:
        assert run.main(["report", str(tmp_path / "run")]) == 0
    finally:
        os.umask(old)
    for name in ("report.md", "report.json", "report.png"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o644, name
    before = (tmp_path / "run" / "report.md").read_text()
    capsys.readouterr()
    assert run.main(["report", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "already holds report.md" in err and "--overwrite" in err
    assert (tmp_path / "run" / "report.md").read_text() == before
    assert run.main(["report", str(tmp_path / "run"), "--overwrite"]) == 0
