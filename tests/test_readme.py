"""The README cannot rot: every `run.py` command in it is parsed by the real CLI, its Python example
runs, and the commands that fit a CPU test are executed at tiny sizes (the demo itself is run by
tests/workflows/test_demo.py; CI runs the test command)."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def code_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def run_py_commands():
    """argv (after run.py) of every `python run.py ...` / `torchrun ... run.py ...` in the README: shell
    blocks and inline code spans."""
    commands = []
    inline = re.findall(r"(?<!`)`((?:python|torchrun) [^`]*run\.py[^`]*)`", README)
    for block in code_blocks("bash") + inline:
        for line in block.splitlines():
            line = line.split("#", 1)[0]
            for part in line.split("&&"):
                words = shlex.split(part)
                if "run.py" in words:
                    commands.append(words[words.index("run.py") + 1:])
    return commands


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_command():
    setup = code_blocks("bash")[0]
    assert "pip install torch==2.13.0" in setup and "python run.py demo" in setup
    assert "python -m pytest -q" in setup
    assert "python -m pytest -q" in (ROOT / ".ci" / "run").read_text()


def test_every_readme_command_parses():
    sys.path.insert(0, str(ROOT))
    from run import build_parser

    commands = run_py_commands()
    assert len(commands) >= 15
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)  # exits (SystemExit) on an unknown option or sub-command
        assert callable(args.func), argv


def test_python_example_runs():
    (example,) = code_blocks("python")
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["x_back"].shape == namespace["x"].shape


def _run(argv):
    result = subprocess.run([sys.executable, "run.py", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, f"run.py {' '.join(argv)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_readme_commands_at_tiny_sizes(tmp_path):
    """The README's data / train / eval / report commands, with tiny-size options appended (argparse keeps
    the last value of a repeated option), so the same code paths run on a CPU in seconds."""
    commands = run_py_commands()
    assert ["data", "darcy"] in commands and ["data", "mri-sim", "--preset", "default"] in commands
    _run(["data", "darcy", "--n", "3", "--res", "15", "--out", str(tmp_path / "darcy.h5")])
    _run(["data", "mri-sim", "--preset", "default", "--n-scans", "1", "--slices", "1", "--shape", "48", "48",
          "--coils", "2", "--accelerations", "2", "--quiet", "--out", str(tmp_path / "mri")])
    ns_cmd = next(c for c in commands if c[:2] == ["data", "ns-v1e-3"])
    ns_file = tmp_path / "ns.h5"
    _run(ns_cmd + ["--device", "cpu", "--n", "6", "--res", "16", "--gen-res", "16", "--dt", "0.05",
                   "--out", str(ns_file)])
    train = next(c for c in commands if c[:2] == ["pde", "train"])
    run_dir = tmp_path / "run"
    train = [str(ns_file) if a.endswith(".h5") else a for a in train]
    _run(train + ["--device", "cpu", "--epochs", "1", "--n-train", "4", "--n-test", "2", "--t-out", "2",
                  "--n-modes", "4,4", "--hidden-channels", "4", "--batch-size", "2", "--no-progress",
                  "--out", str(run_dir)])
    evaluate = next(c for c in commands if c[:2] == ["pde", "eval"])
    evaluate = [str(run_dir / "best.pt") if a.endswith(".pt") else str(ns_file) if a.endswith(".h5") else a
                for a in evaluate]
    _run(evaluate + ["--device", "cpu"])
    assert (run_dir / "eval.json").exists()
