"""Command-line options derived from config dataclasses, so each default is written once.

A config field declares its help text (and optionally choices, a metavar, a default description,
its option name) in `option(...)`; `add_options(parser, Config)` adds `--field-name` for each field
with the field's type and default, and `options_from_args(args, Config)` gives back the dict of
field values to build the config from.

    @dataclass
    class TrainConfig:
        epochs: int = option(500, "training epochs")
        n_modes: tuple | None = option(None, "kept modes per axis", default_text="the equation's")

Types: int, float, str; bool (a flag: --amp when the default is False, --no-progress when it is
True); tuple (comma list of ints: --n-modes 24,22); list (space-separated values); dict (JSON).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import typing


def option(default=None, help: str = "", *, choices=None, metavar: str | None = None, default_text: str | None = None,
           flag: str | None = None, cli: bool = True, factory=None, item_type=str):
    """A dataclass field with its command-line description.

    default: the default (or `factory` for a mutable one); help: what it means (no default in it:
    it is appended once); choices / metavar: as argparse's; default_text: how to describe the
    default when it is None or computed ("the file's split"); flag: the option name when it is not
    --field-name (e.g. "--no-progress"); cli=False keeps the field off the command line; item_type:
    the element type of a list field.
    """
    metadata = {"help": help, "choices": choices, "metavar": metavar, "default_text": default_text, "flag": flag,
                "cli": cli, "item_type": item_type}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def comma_ints(text: str) -> tuple | None:
    """"24,22" → (24, 22); "" → None."""
    try:
        return tuple(int(v) for v in text.split(",")) if text else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers such as 24,22, got {text!r}") from None


def json_dict(text: str) -> dict:
    """'{"a": 1}' → {"a": 1}."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({error.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"key\": 1}}', got {text!r}")
    return value


_METAVARS = {int: "N", float: "NUMBER", str: "NAME", list: "ITEM"}


def _base_type(annotation):
    """int for `int | None`, tuple for `tuple | None`, …"""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args:
        return _base_type(args[0])
    return typing.get_origin(annotation) or annotation


def _default_text(field, meta) -> str:
    if meta["default_text"] is not None:
        return meta["default_text"]
    default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
    if isinstance(default, tuple):
        return ",".join(map(str, default))
    if isinstance(default, list):
        return " ".join(map(str, default))
    if isinstance(default, dict):
        return json.dumps(default)
    return "unset" if default is None else str(default)


def cli_fields(cls, include=None, exclude=()) -> list:
    """The dataclass fields of `cls` that have command-line options (optionally only `include`)."""
    out = []
    for field in dataclasses.fields(cls):
        if not field.metadata.get("cli", False) or field.name in exclude:
            continue
        if include is not None and field.name not in include:
            continue
        out.append(field)
    return out


def option_flags(cls) -> dict:
    """{field name: its command-line flag} of a config dataclass ("--lr-gamma" where the field is `gamma`),
    so an error about a field names the option the user typed."""
    return {f.name: f.metadata.get("flag") or "--" + f.name.replace("_", "-") for f in cli_fields(cls)}


def add_options(parser: argparse.ArgumentParser, cls, include=None, exclude=(), defaults: dict | None = None) -> None:
    """Add one option per field of `cls` (see the module docstring); `defaults` replaces single
    fields' defaults for this parser (e.g. compare's epochs)."""
    hints = typing.get_type_hints(cls)
    defaults = defaults or {}
    for field in cli_fields(cls, include, exclude):
        meta = field.metadata
        kind = _base_type(hints[field.name])
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        default = defaults.get(field.name, default)
        name = meta["flag"] or "--" + field.name.replace("_", "-")
        shown = _default_text(field, meta) if field.name not in defaults else str(default)
        help_text = f"{meta['help']} (default: {shown})" if meta["help"] else f"(default: {shown})"
        if kind is bool:
            action = "store_false" if default else "store_true"
            parser.add_argument(name, dest=field.name, action=action, default=default,
                                help=meta["help"])
            continue
        kwargs = dict(dest=field.name, default=default, help=help_text, choices=meta["choices"])
        metavar = meta["metavar"] or _METAVARS.get(kind, "VALUE")
        if kind is tuple:
            kwargs.update(type=comma_ints, metavar=meta["metavar"] or "N,N")
        elif kind is list:
            kwargs.update(nargs="+", type=meta["item_type"], metavar=metavar)
        elif kind is dict:
            kwargs.update(type=json_dict, metavar=meta["metavar"] or "JSON")
        else:
            kwargs.update(type=kind, metavar=None if meta["choices"] else metavar)
        parser.add_argument(name, **kwargs)


def options_from_args(args: argparse.Namespace, cls, include=None, exclude=()) -> dict:
    """{field: value} of the options `add_options` added (those present on `args`)."""
    return {f.name: getattr(args, f.name) for f in cli_fields(cls, include, exclude) if hasattr(args, f.name)}


#: metavars for bare types (argparse's default would be the option name in capitals)
_TYPE_METAVARS = {int: "N", float: "NUMBER", str: "TEXT"}


def polish_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """House rules for every sub-command of a parser tree, applied once by run.py:

    - a sub-command without a description gets its one-line help as description;
    - an option whose help does not state its default gets "(default: …)" appended (flags and options
      without a default are left alone);
    - an option typed int/float/str without a metavar reads "N" / "NUMBER" / "TEXT".
    Returns the parser.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description and helps.get(name):
                    sub.description = helps[name]
                polish_parser(sub)
            continue
        if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        takes_value = action.nargs != 0
        if (takes_value and action.help and action.default not in (None, argparse.SUPPRESS, [], ())
                and "default" not in action.help):
            action.help = f"{action.help} (default: %(default)s)"
        if takes_value and action.metavar is None and not action.choices and action.type in _TYPE_METAVARS:
            action.metavar = _TYPE_METAVARS[action.type]
    return parser
