"""Property test of the command line: every numeric option of every sub-command, drawn across its range
(negatives, zero, huge, NaN and ±inf for floats), ends in exit 0 or in exit 2 with one ``error:`` line —
never a traceback.

The sub-commands and their int / float options are read from run.py's own parser tree, so a new option is
drawn without touching this file, and a new sub-command fails `test_every_sub_command_is_covered` until
it is given a harness here (or an exclusion with its reason).

Each command runs in-process (`run.main(argv)`) on tiny inputs made once per module. The default suite
replaces the one step that does the long work (writing samples, the training loop, the MRI
simulation) by a stub that raises `Accepted`: everything before it — parsing, validation, data
reading, model building — runs for real, and reaching the stub counts as exit 0 (the options were
accepted before any file was written). The `slow` test runs `pde train` and `mri train` for real (one
epoch) on the same draws.

Counts and sizes (grid points, samples, channels, layers, …) are drawn small when positive: a huge valid
size is a legitimate long job, not a mistake to refuse; they are drawn hugely negative. Every other option
(seeds, learning rates, time steps, batch sizes, epochs behind the stub) is drawn over its whole range.

"One line": a refusal prints exactly one ``error:`` line (argparse's ``run.py …: error:`` for an
unparsable value); the only other lines allowed are the project's ``hint:`` and argparse's usage block.
"""
import argparse
import contextlib
import io
import os
import re
import traceback

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import run


class Accepted(BaseException):
    """Raised by the stubbed long step: every option was accepted. A BaseException, so run.main's
    `except Exception` lets it through instead of reporting it."""


def _accept(*args, **kwargs):
    raise Accepted


# Options whose huge positive values are long jobs (see the module docstring).
SIZE_OPTIONS = {"--n", "--res", "--gen-res", "--coils", "--shape", "--slices", "--n-scans", "--n-train-scans",
                "--n-val-scans", "--n-test-scans", "--echoes", "--echo", "--hidden-channels", "--n-layers", "--t-in",
                "--t-out", "--n-train", "--n-val", "--n-test", "--steps", "--resblocks", "--channels", "--cg-iters",
                "--unet-chans", "--unet-pools", "--mask-pool", "--max-slices-per-scan", "--workers", "--jobs",
                "--threads", "--classical-iters"}
HUGE = [2 ** 63, 2 ** 70, 10 ** 30]
WIDE_INT = st.one_of(st.integers(-3, 3), st.integers(-10 ** 6, 10 ** 6), st.sampled_from([-(2 ** 70)] + HUGE))
SIZE_INT = st.one_of(st.integers(-3, 12), st.sampled_from([-(2 ** 70), -(10 ** 6)]))
FLOAT = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-10, 10),
                  st.sampled_from([0.0, -0.0, -1.0, 1e-300, 1e300, 1.0, 2.0, 4.0]))

# Sub-commands not drawn here, and why.
EXCLUDED = {
    ("bench", "monarch"): "a benchmark: timings, not run on the shared CPU (its options only size the timing)",
    ("bench", "kernels"): "a benchmark (see bench monarch)",
    ("bench", "steps"): "a benchmark (see bench monarch)",
    ("bench", "gpu"): "a benchmark (see bench monarch)",
    ("bench", "data"): "a benchmark (see bench monarch)",
    ("bench", "mri-data"): "a benchmark (see bench monarch)",
    ("bench", "mri"): "a benchmark (see bench monarch)",
    ("data", "import-bart"): "needs BART .cfl inputs; its options are only read after they are found",
}


def leaf_commands(parser=None, path=()):
    """(path, parser) of every leaf sub-command of run.py's parser tree."""
    parser = parser or run.build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, sub in subs[0].choices.items():
        yield from leaf_commands(sub, path + (name,))


def numeric_options(parser) -> list[tuple[str, type, object]]:
    """(flag, int or float, nargs) of a sub-command's typed options."""
    return [(a.option_strings[0], a.type, a.nargs) for a in parser._actions
            if a.option_strings and a.type in (int, float)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny NS dataset (12 samples, 16²) and a tiny simulated MRI folder (3 scans of 2 slices, 32²)."""
    root = tmp_path_factory.mktemp("cli-property")
    assert run.main(["data", "ns-tiny", "--n", "12", "--res", "16", "--gen-res", "16", "--dt", "0.25", "--quiet",
                     "--out", str(root / "ns.h5")]) == 0
    from mri.data.presets import PRESETS
    from mri.data.simulate import simulate_dataset

    simulate_dataset(PRESETS["tiny"].replace(shape=(32, 32), slices=2), root / "mri", progress=False)
    return root


def _harnesses():
    """path → (fixed argv after the command, taking the inputs folder; stubs (module, attribute); options
    fixed by the harness and so not drawn)."""
    from pde.data.presets import PRESETS

    pde_fixed = ["--device", "cpu", "--no-progress", "--overwrite"]
    mri_fixed = ["--data", "{r}/mri", "--device", "cpu", "--quiet", "--scale", "tiny"]
    harness = {
        # small defaults first: a drawn option given after them wins (argparse keeps the last)
        ("data", name): (["--n=4", "--gen-res=16", "--res=16", "--quiet", "--overwrite", "--out", "{r}/out/data.h5"],
                         [("pde.data.writer", "write_resumable")], ())
        for name in PRESETS
    }
    harness.update({
        ("data", "mri-sim"): (["--preset", "tiny", "--quiet", "--out", "{r}/out/mri-sim"],
                              [("mri.data.simulate", "simulate_dataset")], ()),
        ("pde", "train"): (["{r}/ns.h5", *pde_fixed, "--out", "{r}/out/pde-train"],
                           [("common.training", "train_loop")], ()),
        # compare: the study engine plans, prepares and validates for real; the training loop is stubbed
        ("pde", "compare"): (["{r}/ns.h5", "--transforms", "fft", "--device", "cpu", "--overwrite",
                              "--out", "{r}/out/pde-compare"], [("common.training", "train_loop")], ()),
        ("pde", "study"): (["pde-smoke", "--dry-run", "--out", "{r}/out/pde-study"], [], ()),
        ("mri", "train"): (["--model", "msense", *mri_fixed, "--overwrite", "--run-name", "r", "--out", "{r}/out/mri"],
                           [("common.training", "train_loop")], ()),
        ("mri", "eval"): (["--model", "zf", "--data", "{r}/mri", "--device", "cpu"], [], ()),
        ("mri", "compare"): (["--data", "{r}/mri", "--models", "zf", "msense", "--accelerations", "2", "--n-train-scans",
                              "1", "--n-test-scans", "1", "--device", "cpu", "--overwrite",
                              "--out", "{r}/out/mri-compare"], [("common.training", "train_loop")], ()),
        ("mri", "study"): (["mri-smoke", "--dry-run", "--out", "{r}/out/mri-study"], [], ()),
    })
    return harness


HARNESSES = _harnesses()
COMMANDS = {path: parser for path, parser in leaf_commands()}


def test_every_sub_command_is_covered():
    """A new sub-command with numeric options needs a harness here (or a reason to be left out)."""
    for path, parser in COMMANDS.items():
        if numeric_options(parser):
            assert path in HARNESSES or path in EXCLUDED, f"{' '.join(path)}: no harness in tests/test_cli_property.py"
    for path in list(HARNESSES) + list(EXCLUDED):
        assert path in COMMANDS, f"{' '.join(path)} is no longer a sub-command"


def _value_text(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


@st.composite
def drawn_options(draw, path):
    """argv of randomly present numeric options of the command at `path`, each value from its range."""
    fixed = HARNESSES[path][2]
    argv = []
    for flag, kind, nargs in numeric_options(COMMANDS[path]):
        if flag in fixed or not draw(st.booleans()):
            continue
        values = SIZE_INT if kind is int and flag in SIZE_OPTIONS else WIDE_INT if kind is int else FLOAT
        count = nargs if isinstance(nargs, int) else 1 if nargs in (None, "?") else draw(st.integers(1, 2))
        argv += [f"{flag}=" + _value_text(draw(values))] if count == 1 else [flag] + [
            _value_text(draw(values)) for _ in range(count)]
    return argv


def run_command(argv, stubs=()) -> tuple[int, str]:
    """(exit status, stderr) of run.main(argv) in-process; the stubbed steps raise `Accepted` (status 0)."""
    err, out = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        import importlib

        for module, attribute in stubs:
            patch.setattr(importlib.import_module(module), attribute, _accept)
        try:
            code = run.main(argv)
        except SystemExit as exit_:  # argparse
            code = exit_.code
        except Accepted:
            code = 0
        except Exception:  # a traceback the user would see: report it with the command line
            pytest.fail(f"run.py {' '.join(argv)} raised:\n{traceback.format_exc()}")
    return code, err.getvalue()


ERROR_LINE = re.compile(r"^(run\.py[^:]*: )?error: ")


def check_outcome(argv, code, err):
    assert code in (0, 2), f"run.py {' '.join(argv)} exited {code}:\n{err}"
    assert "Traceback" not in err, f"run.py {' '.join(argv)}:\n{err}"
    if code == 2:
        lines = err.rstrip("\n").splitlines()
        errors = [line for line in lines if ERROR_LINE.match(line)]
        assert len(errors) == 1, f"run.py {' '.join(argv)}: expected one error line:\n{err}"
        start = lines.index(errors[0])
        before, after = lines[:start], lines[start + 1:]
        # argparse: a usage block (first line "usage: …", then indented continuations) before its error line
        assert not before or (before[0].startswith("usage: ") and all(l.startswith(" ") for l in before[1:])), err
        assert all(line.startswith("hint: ") for line in after), f"run.py {' '.join(argv)}:\n{err}"


def _argv(path, options, root):
    fixed = [a.format(r=root) for a in HARNESSES[path][0]]
    return [*path, *fixed, *options]


FAST = sorted(HARNESSES)
# Draws per sub-command; raise it (and unset CLI_PROPERTY_DERANDOMIZE) for a longer exploration.
EXAMPLES = int(os.environ.get("CLI_PROPERTY_EXAMPLES", "8"))
DERANDOMIZE = os.environ.get("CLI_PROPERTY_DERANDOMIZE", "1") == "1"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", FAST, ids=[" ".join(p) for p in FAST])
def test_numeric_options_exit_0_or_2_with_one_line(inputs, path):
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(options=drawn_options(path))
    def check(options):
        argv = _argv(path, options, inputs)
        check_outcome(argv, *run_command(argv, HARNESSES[path][1]))

    check()


def test_the_harness_sees_refusals_and_acceptances(inputs):
    """The checks can fail: a good command reaches the stub (0), a bad one is refused in one line (2)."""
    path = ("pde", "train")
    code, err = run_command(_argv(path, ["--epochs=1"], inputs), HARNESSES[path][1])
    assert code == 0, err
    code, err = run_command(_argv(path, ["--epochs=-1"], inputs), HARNESSES[path][1])
    assert code == 2 and "--epochs" in err or "epochs" in err
    with pytest.raises(AssertionError):
        check_outcome(["x"], 2, "error: one\nerror: two\n")
    with pytest.raises(AssertionError):
        check_outcome(["x"], 1, "Traceback (most recent call last):\n")


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", [("pde", "train"), ("mri", "train")], ids=["pde train", "mri train"])
def test_training_for_real_exits_0_or_2_with_one_line(inputs, path):
    """The same draws with the training loop running (one epoch, tiny models): nothing the options let
    through may fail later."""
    tiny = {("pde", "train"): ["--epochs=1", "--hidden-channels=4", "--n-modes", "4,4", "--batch-size=4"],
            ("mri", "train"): ["--epochs=1", "--batch-size=2", "--max-slices-per-scan=1"]}[path]
    fixed_flags = {a.split("=")[0] for a in tiny if a.startswith("--")}

    @settings(max_examples=max(2, EXAMPLES // 2), deadline=None, database=None, derandomize=DERANDOMIZE,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(options=drawn_options(path))
    def check(options):
        kept, skip = [], False
        for a in options:  # the fixed tiny settings win over drawn ones
            if skip:
                skip = False
                continue
            if a.split("=")[0] in fixed_flags:
                skip = "=" not in a
                continue
            kept.append(a)
        argv = _argv(path, kept, inputs) + tiny
        check_outcome(argv, *run_command(argv))

    check()
