"""Nested dataclass configs <-> plain dicts / YAML / dotted command-line overrides, strictly typed.

Why hand-rolled: the config must be a visible tree of dataclasses whose every leaf is settable from the
command line (``--optim.lr 1e-3``) and which round-trips through the ``config.yaml`` saved beside each
run, with unknown keys and wrong types rejected rather than ignored.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar


from config.fields import description
from runtime.bounded_reads import parse_yaml, read_yaml

T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass tree as plain YAML-able dicts/lists (tuples become lists)."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value
    return plain(cfg)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check/convert ``value`` to the annotated type ``hint``; raise naming ``where`` when impossible."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ValueError(f"config key {where!r} must be a mapping, got {value!r}")
        return from_dict(hint, value, prefix=f"{where}.")
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(f"config key {where!r}: {value!r} fits none of {hint}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"config key {where!r} must be one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"config key {where!r} must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ValueError(f"config key {where!r} needs {len(args)} values, got {list(value)}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args))
        inner = args[0] if args else Any
        items = [_coerce(v, inner, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"config key {where!r} must be a mapping, got {value!r}")
        key_t, val_t = args if args else (Any, Any)
        return {_coerce(k, key_t, where): _coerce(v, val_t, where) for k, v in value.items()}
    if hint is float and not isinstance(value, bool):
        number = value
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if isinstance(number, (int, float)):
            if not math.isfinite(number):  # 1e400 parses as inf
                raise ValueError(f"config key {where!r} must be a finite number, got {value!r}")
            return float(number)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"config key {where!r} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a dict; unknown keys and wrong types are errors naming the key."""
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown config key(s) {[prefix + k for k in unknown]}; "
                         f"known under {prefix or 'top level'}: {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def merge(cfg: T, data: dict[str, Any]) -> T:
    """A copy of ``cfg`` with the (possibly partial, nested) dict ``data`` laid over it."""
    base = to_dict(cfg)

    def deep(into: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                deep(into[key], value)
            else:
                into[key] = value
        return into
    return from_dict(type(cfg), deep(base, data))


def leaf_fields(cls: type, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Every settable leaf as (dotted name, type hint, default), for building command-line flags."""
    leaves = []
    hints = _field_types(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            leaves += leaf_fields(hint, f"{prefix}{f.name}.")
        else:
            leaves.append((prefix + f.name, hint, getattr(defaults, f.name)))
    return leaves


def leaf_descriptions(cls: type, prefix: str = "") -> dict[str, str]:
    """Dotted leaf name -> its description, the help text every field carries as metadata (``option``)."""
    hints = _field_types(cls)
    out: dict[str, str] = {}
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out.update(leaf_descriptions(hints[f.name], f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = description(f)
    return out


def dotted_to_nested(pairs: dict[str, Any]) -> dict[str, Any]:
    """``{"optim.lr": 1e-3}`` -> ``{"optim": {"lr": 1e-3}}``."""
    nested: dict[str, Any] = {}
    for dotted, value in pairs.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def parse_cli_value(text: str | list[str]) -> Any:
    """Parse a command-line value as YAML (``1e-3`` -> float, ``[96,96,96]`` or ``96 96 96`` -> list)."""
    if isinstance(text, list):
        return [parse_cli_value(t) for t in text] if len(text) != 1 else parse_cli_value(text[0])
    value = parse_yaml(text, f"value {text!r}")
    if isinstance(value, str) and value.lower() in ("none", "null"):
        return None
    if isinstance(value, str):
        try:
            return float(value)  # "1e-3": YAML 1.1 has no exponent-only floats
        except ValueError:
            return value
    return value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with an error naming the file when it is missing or malformed."""
    path = Path(path)
    data = read_yaml(path, "config file")
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping at the top level")
    return data
