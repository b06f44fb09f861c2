"""The architecture's layering, enforced by reading every import with `ast`.

    monarch_core   math only: imports nothing of ours
    common         the shared layer: imports nothing of ours
    pde, mri       import monarch_core and common only (never each other, benchmarks or workflows)
    run.py         holds no logic: argparse wiring of each package's `register` and the error printer

Imports inside functions count too (lazy imports are still dependencies).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"monarch_core", "common", "pde", "mri", "benchmarks", "workflows", "run", "tests"}
ALLOWED = {
    "monarch_core": set(),
    "common": set(),
    "pde": {"monarch_core", "common"},
    "mri": {"monarch_core", "common"},
}


def imported_packages(source: str, package: str, module_parts: tuple[str, ...]) -> set[str]:
    """Top-level names of every package imported by `source` (relative imports resolved against the
    module's own dotted path `module_parts`, e.g. ("pde", "experiments", "models"))."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb from the module's package
                base = module_parts[:-node.level] if node.level <= len(module_parts) - 1 else ()
                names.add(base[0] if base else package)
            elif node.module:
                names.add(node.module.split(".")[0])
    return names


def violations(package: str, source: str, module_parts: tuple[str, ...] | None = None) -> set[str]:
    """Packages of ours that `source` (a module of `package`) imports but may not."""
    module_parts = module_parts or (package, "module")
    ours = imported_packages(source, package, module_parts) & OURS
    return ours - ALLOWED[package] - {package}


def _modules(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        yield path, tuple(path.relative_to(ROOT).with_suffix("").parts)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_layers_below(package):
    found = {}
    for path, parts in _modules(package):
        bad = violations(package, path.read_text(), parts)
        if bad:
            found[str(path.relative_to(ROOT))] = sorted(bad)
    allowed = sorted(ALLOWED[package]) or "nothing of ours"
    assert not found, f"{package} may import {allowed}; these modules import more: {found}"


def test_planted_violations_are_caught():
    """The checker itself can fail: synthetic modules that break each rule."""
    assert violations("pde", "from mri.data import SkmTeaSlices") == {"mri"}
    assert violations("mri", "def f():\n    import pde.experiments\n") == {"pde"}
    assert violations("mri", "from benchmarks.timing import median_time") == {"benchmarks"}
    assert violations("common", "import monarch_core") == {"monarch_core"}
    assert violations("monarch_core", "from common.files import write_text_atomic") == {"common"}
    assert violations("pde", "from ..workflows import demo", ("pde", "experiments", "x")) == set()  # stays in pde
    assert violations("pde", "from monarch_core import LearnableDFT\nfrom common import stats\nimport torch") == set()


def test_run_py_holds_no_logic():
    """run.py: imports, a parser built from each package's `register`, and main(); no classes, no loops,
    no imports of numerical libraries."""
    tree = ast.parse((ROOT / "run.py").read_text())
    heavy = {"torch", "numpy", "h5py", "scipy", "neuralop", "sigpy"}
    imported = imported_packages((ROOT / "run.py").read_text(), "run", ("run",))
    assert not imported & heavy, f"run.py imports {sorted(imported & heavy)}: move that code into a package"
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)], "run.py defines a class"
    loops = [n for n in ast.walk(tree) if isinstance(n, (ast.For, ast.While))
             and not (isinstance(n, ast.For) and isinstance(n.iter, (ast.List, ast.Tuple)))]
    assert not loops, "run.py contains loops: logic belongs in a package"
    assert len((ROOT / "run.py").read_text().splitlines()) < 120, "run.py grew: keep it a thin entry point"
