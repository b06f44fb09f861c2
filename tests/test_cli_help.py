"""Every sub-command of run.py has a description, every option a help text that states its default once,
and argparse's messages name types in words (no `_ints` or `<lambda>` in "invalid … value")."""
import argparse

import pytest

import run


def _walk(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield "command", path + (name,), sub
                yield from _walk(sub, path + (name,))
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            yield "option", path, action


ITEMS = list(_walk(run.build_parser()))


def test_every_sub_command_has_a_description():
    missing = [" ".join(path) for kind, path, sub in ITEMS if kind == "command" and not sub.description]
    assert not missing, f"sub-commands without a description: {missing}"


def test_every_option_has_help_stating_its_default_once():
    problems = []
    for kind, path, action in ITEMS:
        if kind != "option":
            continue
        where = f"{' '.join(path)} {action.option_strings[0]}"
        text = (action.help or "").replace("%(default)s", repr(action.default)).replace("%%", "%")
        if not text:
            problems.append(f"{where}: no help")
        elif text.count("(default") > 1:
            problems.append(f"{where}: default stated twice")
        elif action.nargs != 0 and action.default not in (None, [], ()) and "default" not in text:
            problems.append(f"{where}: default {action.default!r} not stated")
    assert not problems, "\n".join(problems)


def test_type_names_read_as_words():
    bad = []
    for kind, path, action in ITEMS:
        name = getattr(action.type, "__name__", "") if kind == "option" and action.type else ""
        if name.startswith("_") or name == "<lambda>":
            bad.append(f"{' '.join(path)} {action.option_strings[0]}: type {name}")
    assert not bad, "argparse would say 'invalid <name> value': " + "; ".join(bad)


@pytest.mark.parametrize("argv", [["pde", "train", "x.h5", "--epochs", "many"], ["data", "ns-tiny", "--res", "big"]])
def test_a_badly_typed_value_is_one_readable_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        run.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid int value" in err and "Traceback" not in err


def test_building_the_parser_imports_no_numerical_library():
    """`run.py --help` stays instant: every handler imports its heavy modules when it runs."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, run; run.build_parser(); "
            "print(sorted(m for m in ('torch', 'numpy', 'scipy', 'h5py', 'neuralop') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(run.__file__).parent, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"building the parser imported {done.stdout.strip()}"
