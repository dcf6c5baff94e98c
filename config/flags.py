"""Command-line flags made from config dataclasses: one flag per field, its help the field's description, so
``train.py`` and ``ensemble.py`` can never offer a setting the config lacks or describe it differently."""
from __future__ import annotations

import argparse
import types
import typing
from typing import Any

from config.yaml_cli import leaf_descriptions, leaf_fields, parse_cli_value


def metavar(hint: object) -> str:
    """A short value name for --help: INT, FLOAT, Z_Y_X, a choice list, ... rather than ``V [V ...]``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "{" + ",".join(map(str, args)) + "}"
    if origin in (tuple, list) and args:
        inner = args[0]
        return "NAME" if typing.get_origin(inner) is typing.Literal else metavar(inner)
    if origin in (typing.Union, types.UnionType):
        return metavar(next(a for a in args if a is not type(None)))
    return {int: "INT", float: "FLOAT", bool: "BOOL", str: "STR"}.get(hint, "VALUE")  # type: ignore[call-overload]


def word_count(hint: object) -> int | str | None:
    """How many words a flag takes: three for a (z, y, x) size (``--window 64 128 128``), one or more for
    other tuples and lists, one otherwise."""
    if typing.get_args(hint) == (int, int, int):
        return 3
    return "+" if typing.get_origin(hint) in (tuple, list) else None


def flag_name(dotted: str, dashed: bool) -> str:
    """``optim.lr`` -> ``--optim.lr``; with ``dashed`` (flat settings) ``batch_size`` -> ``--batch-size``."""
    return "--" + (dotted.replace("_", "-") if dashed else dotted)


def add_config_flags(group: argparse._ActionsContainer, cls: type, dashed: bool = False,
                     skip: tuple[str, ...] = (), default_note: str = "default") -> None:
    """One flag per leaf field of ``cls`` (values parsed as YAML later, so lists and null work)."""
    descriptions = leaf_descriptions(cls)
    for dotted, hint, default in leaf_fields(cls):
        if dotted in skip:
            continue
        words = word_count(hint)
        group.add_argument(flag_name(dotted, dashed), dest=dotted, nargs=words, default=None,
                           metavar=("Z", "Y", "X") if words == 3 else metavar(hint),
                           help=f"{descriptions[dotted]} ({default_note}: {default!r})")


def given_config_values(args: argparse.Namespace, cls: type, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The leaf flags of ``cls`` that were given, ``{dotted name: parsed value}``."""
    given = {}
    for dotted, hint, _ in leaf_fields(cls):
        value = getattr(args, dotted, None)
        if value is not None and dotted not in skip:
            parsed = parse_cli_value(value)
            if word_count(hint) == "+" and parsed is not None and not isinstance(parsed, list):
                parsed = [parsed]  # one word for a list field (--tta identity) is a list of one
            given[dotted] = parsed
    return given
