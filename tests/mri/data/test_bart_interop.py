"""BART interoperability against the real `bart` binary: .cfl round trips both ways, and a BART-made
dataset (phantom k-space, ecalib maps, poisson mask) imported, trained briefly and evaluated via run.py."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.errors import FormatError
from mri.data.bart_files import read_cfl, write_cfl, write_slices_cfl

ROOT = Path(__file__).resolve().parents[3]
needs_bart = pytest.mark.skipif(shutil.which("bart") is None, reason="BART (`bart` executable) is not installed")


def bart(cwd, *args):
    return subprocess.run(["bart", *map(str, args)], check=True, capture_output=True, text=True, cwd=cwd).stdout


def test_cfl_roundtrip_ours_and_header_layout(tmp_path):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 5, 1, 2)) + 1j * rng.standard_normal((3, 5, 1, 2))).astype(np.complex64)
    write_cfl(tmp_path / "x", x)
    assert (tmp_path / "x.hdr").read_text().split("\n")[1].split() == ["3", "5", "1", "2"] + ["1"] * 12
    assert np.array_equal(read_cfl(tmp_path / "x.cfl"), x)
    # column-major on disk: the first dim is fastest
    assert np.array_equal(np.fromfile(tmp_path / "x.cfl", np.complex64)[:3], x[:, 0, 0, 0])
    (tmp_path / "x.hdr").write_text("# Dimensions\n3 5 1 3\n")
    with pytest.raises(FormatError, match="30 complex values"):
        read_cfl(tmp_path / "x")


@needs_bart
def test_cfl_roundtrip_with_bart(tmp_path):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((6, 4, 1, 3)) + 1j * rng.standard_normal((6, 4, 1, 3))).astype(np.complex64)
    write_cfl(tmp_path / "ours", x)
    bart(tmp_path, "fft", "-u", 3, "ours", "k")       # BART reads ours; its unitary centred FFT over dims 0, 1
    import sigpy as sp

    k = read_cfl(tmp_path / "k")
    assert k.shape == x.shape
    np.testing.assert_allclose(k, sp.fft(x, axes=(0, 1)), atol=1e-5)   # sigpy's fft is centred orthonormal too
    bart(tmp_path, "phantom", "-x", 16, "-s", 2, "ph")
    ph = read_cfl(tmp_path / "ph")
    assert ph.shape == (16, 16, 1, 2)
    write_cfl(tmp_path / "again", ph)
    assert bart(tmp_path, "nrmse", "ph", "again").strip().startswith("0.0")
    write_slices_cfl(tmp_path / "rec", np.stack([ph[:, :, 0, 0], ph[:, :, 0, 1]]))
    rec = read_cfl(tmp_path / "rec", squeeze_trailing=False)
    assert rec.shape == (16, 16) + (1,) * 11 + (2, 1, 1)
    bart(tmp_path, "slice", 13, 1, "rec", "one")      # BART reads our multi-slice layout: slice 1 = coil image 1
    np.testing.assert_array_equal(read_cfl(tmp_path / "one")[:, :, 0] if read_cfl(tmp_path / "one").ndim > 2
                                  else read_cfl(tmp_path / "one"), ph[:, :, 0, 1])


@needs_bart
@pytest.mark.slow
def test_bart_made_dataset_trains_and_evaluates_through_run_py(tmp_path):
    d = tmp_path / "bart"
    d.mkdir()
    for i in range(3):   # three "scans": the phantom with 4 coils, k-space noise of its own seed
        bart(d, "phantom", "-x", 32, "-s", 4, "-k", f"clean{i}")
        bart(d, "noise", "-s", i + 1, "-n", 0.5, f"clean{i}", f"ksp{i}")
        bart(d, "ecalib", "-m1", "-r", 12, f"ksp{i}", f"sens{i}")
    bart(d, "poisson", "-Y", 32, "-Z", 32, "-y", 1.6, "-z", 1.6, "-C", 10, "-v", "-e", "pat")
    data = tmp_path / "ds"
    py = lambda *a: subprocess.run([sys.executable, str(ROOT / "run.py"), *map(str, a)], capture_output=True,  # noqa: E731
                                   text=True, cwd=tmp_path, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    r = py("data", "import-bart", "--kspace", *[d / f"ksp{i}" for i in range(3)], "--maps",
           *[d / f"sens{i}" for i in range(3)], "--mask", d / "pat", "--splits", 1, 1, 1, "--out", data)
    assert r.returncode == 0, r.stderr
    meta = json.loads((data / "meta.json").read_text())
    acc = meta["accelerations"][0]
    assert meta["splits"] == {"train": ["BART_000"], "val": ["BART_001"], "test": ["BART_002"]} and acc > 1.5
    r = py("mri", "train", "--model", "unrolled-fft", "--scale", "tiny", "--data", data, "--acceleration", acc,
           "--epochs", 1, "--out", tmp_path / "runs", "--run-name", "u", "--quiet")
    assert r.returncode == 0, r.stderr
    for args in (["--run", tmp_path / "runs" / "u"], ["--model", "bart-l1"], ["--model", "zf"]):
        out = tmp_path / f"m{len(list(tmp_path.glob('m*.json')))}.json"
        r = py("mri", "eval", *args, "--data", data, "--acceleration", acc, "--out", out)
        assert r.returncode == 0, r.stderr
    learned, bl1, zf = (json.loads((tmp_path / f"m{i}.json").read_text()) for i in (0, 1, 2))
    assert zf["scans"] == bl1["scans"] == learned["scans"] == ["BART_002"] and np.isfinite(learned["psnr_mean"])
    assert bl1["psnr_mean"] > zf["psnr_mean"] + 3, (bl1["psnr_mean"], zf["psnr_mean"])   # BART's own ℓ1 works on it
    assert py("data", "import-bart", "--kspace", d / "ksp0", "--maps", d / "sens0", "--mask", d / "pat",
              "--out", data).returncode == 2   # existing dataset: refused without --overwrite
