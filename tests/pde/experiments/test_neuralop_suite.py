"""neuraloperator's own test_fno.py, test_uno.py and test_spectral_convolution.py, read from the INSTALLED
neuralop package at test time, with only the conv substituted: SpectralConv → TransformSpectralConv
(kinds dense and monarch, no grid argument), FNO(conv_module=...),
UNO(operator_block=FNOBlocks(conv_module=...)). The substituted copies are written to a temporary folder and run by pytest in a subprocess; nothing of
their code is committed here. Slow, so it is opt-in to keep the default suite near 10 minutes:
    RUN_NEURALOP_SUITE=1 python -m pytest -q tests/pde/experiments/test_neuralop_suite.py
`test_a_fast_subset_...` runs a few cases of the FNO and SpectralConv files in the default suite
(15–25 s, mostly the subprocess's start-up), so that CI exercises the drop-in. test_uno.py is not
among them: its smallest case (batch 32, 64 channels) alone takes ≈ 20 s per kind; UNO with the
learnable conv is checked against neuraloperator's UNO in test_models.py instead.
Last full runs (neuraloperator 2.0.0, OMP_NUM_THREADS=1, a shared 2-core CPU), with the substitution
below: dense 426/426 passed (341 s), monarch 426/426 passed (320 s); test_uno.py's 3 cases take about
half of that. (Earlier runs substituted UNO(integral_operator=...), which neuraloperator 2.0.0's UNO
ignores, so their UNO cases ran SpectralConv; test_the_substitution_reaches_the_convs guards that.)"""
import contextlib
import io
import os
import pathlib
import subprocess
import sys

import pytest

neuralop = pytest.importorskip("neuralop")
ROOT = pathlib.Path(neuralop.__file__).parent
SOURCES = {  # installed file → (import line it holds, substitute)
    "layers/tests/test_spectral_convolution.py": (
        "from ..spectral_convolution import SpectralConv",
        "SpectralConv = _partial(_TSC, transform={kind!r})"),
    "models/tests/test_fno.py": (
        "from neuralop.models import FNO",
        "from neuralop.models import FNO as _FNO\nFNO = _partial(_FNO, conv_module=_partial(_TSC, transform={kind!r}))"),
    "models/tests/test_uno.py": (
        "from ..uno import UNO",
        # neuralop 2.0.0's UNO stores integral_operator= but builds its FNOBlocks without it (always
        # SpectralConv): the conv reaches UNO only through operator_block=FNOBlocks(conv_module=...)
        "from neuralop.models.uno import UNO as _UNO\nfrom neuralop.layers.fno_block import FNOBlocks as _FNOBlocks\n"
        "UNO = _partial(_UNO, operator_block=_partial(_FNOBlocks, conv_module=_partial(_TSC, transform={kind!r})))"),
}
HEADER = "from functools import partial as _partial\nfrom pde.experiments.transform_conv import TransformSpectralConv as _TSC\n"


# a few cases per file, covering 1-D to 4-D, complex data, separable weights, CP / Tucker / TT / dense
# factorisations, resolution scaling, domain padding and the channel-MLP / skip / norm options
FAST_CASES = {
    "test_spectral_convolution.py": [
        "test_SpectralConv[False-2-False-factorized-Tucker]", "test_SpectralConv[True-3-True-reconstructed-CP]",
        "test_SpectralConv[False-1-True-factorized-TT]", "test_SpectralConv[True-4-False-reconstructed-Dense]",
        "test_SpectralConv_resolution_scaling_factor"],
    "test_fno.py": [
        "test_fno[False-False-1-None-full-2]", "test_fno[True-True-2-tanh-full-3]",
        "test_fno_superresolution[resolution_scaling_factor2]", "test_fno_embedding_and_padding[domain_padding2-grid]",
        "test_fno_advanced_params[True-soft-gating-identity-True-group_norm]"],
}


def write_substituted(folder: pathlib.Path, kind: str) -> list[pathlib.Path]:
    """Copies of the installed tests with the conv substituted; skips when the wheel ships no tests."""
    paths = []
    for relative, (line, substitute) in SOURCES.items():
        source = ROOT / relative
        if not source.exists():
            pytest.skip(f"the installed neuralop ({neuralop.__version__}) ships no {relative}")
        text = source.read_text()
        assert line in text, f"{relative} no longer holds {line!r}: update the substitution"
        target = folder / f"{kind}_{source.name}"
        target.write_text(HEADER + text.replace(line, substitute.format(kind=kind)))
        paths.append(target)
    return paths


def run_copies(folder: pathlib.Path, targets: list[str]) -> subprocess.CompletedProcess:
    """pytest on the substituted copies (paths or node ids) in a subprocess, with this repository importable."""
    repo = pathlib.Path(__file__).resolve().parents[3]
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder),
                           *targets], cwd=folder, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(repo)})


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dense", "monarch"])
def test_neuralop_tests_pass_with_the_learnable_conv(kind, tmp_path):
    if not os.environ.get("RUN_NEURALOP_SUITE"):
        pytest.skip("opt-in (hundreds of neuraloperator cases): set RUN_NEURALOP_SUITE=1")
    result = run_copies(tmp_path, [str(path) for path in write_substituted(tmp_path, kind)])
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.mark.slow  # ≈ 3.5 s of cases; the rest is the subprocess's start-up (torch, neuralop, tltorch)
def test_the_substitution_reaches_the_convs(tmp_path):
    """The substituted FNO and UNO hold TransformSpectralConv layers and no plain SpectralConv."""
    from neuralop.layers.spectral_convolution import SpectralConv

    from pde.experiments.transform_conv import TransformSpectralConv

    namespace = {}
    exec(HEADER + "\n".join(substitute.format(kind="dense") for _, substitute in list(SOURCES.values())[1:]), namespace)
    fno = namespace["FNO"](n_modes=(4, 4), in_channels=1, out_channels=1, hidden_channels=4, n_layers=2)
    with contextlib.redirect_stdout(io.StringIO()):  # neuralop 2.0.0's UNO prints two lines per layer
        uno = namespace["UNO"](1, 1, 4, uno_out_channels=[4, 4], uno_n_modes=[[4, 4]] * 2,
                               uno_scalings=[[1, 1]] * 2, n_layers=2, channel_mlp_skip="linear")
    for model in (fno, uno):
        convs = [m for m in model.modules() if isinstance(m, SpectralConv)]
        assert len(convs) == 2 and all(isinstance(m, TransformSpectralConv) for m in convs)


def test_a_fast_subset_of_neuraloperator_tests_passes(tmp_path):
    """Both kinds in one subprocess (one start-up and collection); every chosen case must exist and pass."""
    targets = []
    for kind in ("dense", "monarch"):
        for path in write_substituted(tmp_path, kind):
            targets += [f"{path.name}::{case}" for case in FAST_CASES.get(path.name.split("_", 1)[1], [])]
    result = run_copies(tmp_path, targets)
    expected = sum(map(len, FAST_CASES.values())) * 2
    assert result.returncode == 0 and f"{expected} passed" in result.stdout, result.stdout[-4000:]
