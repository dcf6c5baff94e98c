"""Reading small files a stranger may have written (configs, pick files, run records, zarr metadata): regular
files only, their size and nesting bounded, YAML without aliases. A FIFO, ``/dev/zero``, an alias bomb or a
document nested 100,000 deep is one clear error naming the file, never a hang, a memory blow-up or a
RecursionError."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

MAX_CONFIG_BYTES = 4 * 2**20
"""Configs, split and folds files, run records, copick configs, zarr metadata: kilobytes in practice."""
MAX_PICKS_BYTES = 256 * 2**20
"""A pick file: about 250 bytes a point, so a million points."""
MAX_DEPTH = 64
"""Nesting of a JSON or YAML document (a pick file needs 4, a config 3)."""


def check_regular_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` (symlinks followed) must be a regular file: a folder, FIFO, device or socket is refused by name
    before it is opened (opening a FIFO blocks; reading ``/dev/zero`` never ends)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except OSError as err:
        raise ValueError(f"{what} {path} cannot be read ({err.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a FIFO, device or socket)"
        raise ValueError(f"{what} {path} is {kind}: refusing to read it")
    return path


def read_bytes(path: str | os.PathLike, what: str, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (checked before and while reading)."""
    path = check_regular_file(path, what)
    size = path.stat().st_size
    if size > limit:
        raise ValueError(f"{what} {path} is {size:,} bytes, more than the {limit:,} such a file may hold")
    with open(path, "rb") as handle:
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"{what} {path} grew past {limit:,} bytes while it was read")
    return raw


def check_depth(value: Any, where: str, limit: int = MAX_DEPTH) -> Any:
    """Refuse a parsed document nested deeper than ``limit`` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                raise ValueError(f"{where}: nested deeper than {limit} levels")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return value


def parse_json(raw: bytes | str, where: str) -> Any:
    """A JSON document; malformed, truncated or absurdly nested text is a ValueError naming ``where``."""
    try:
        return check_depth(json.loads(raw), where)
    except RecursionError:
        raise ValueError(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{where}: malformed or truncated JSON ({err})") from None


def read_json(path: str | os.PathLike, what: str, limit: int = MAX_CONFIG_BYTES) -> Any:
    """A bounded JSON file: see ``read_bytes`` and ``parse_json``."""
    return parse_json(read_bytes(path, what, limit), f"{what} {path}" if what else str(path))


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases: ``*name`` (and ``<<: *name``) is what builds a "billion laughs"
    bomb, and no config of this project needs one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"alias *{event.anchor} is not allowed here (write the "
                                              "value out; aliases can expand a small file into gigabytes)",
                                              event.start_mark)
        return super().compose_node(parent, index)


def parse_yaml(text: str | bytes, where: str) -> Any:
    """A YAML document (JSON is YAML) without aliases; malformed or absurdly nested text is a ValueError
    naming ``where``."""
    try:
        return check_depth(yaml.load(text, Loader=_NoAliasLoader), where)  # noqa: S506 (a safe loader)
    except RecursionError:
        raise ValueError(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f"{where} is not valid YAML: {' '.join(str(err).split())}") from None


def read_yaml(path: str | os.PathLike, what: str, limit: int = MAX_CONFIG_BYTES) -> Any:
    """A bounded YAML file: see ``read_bytes`` and ``parse_yaml``."""
    return parse_yaml(read_bytes(path, what, limit), f"{what} {path}" if what else str(path))
