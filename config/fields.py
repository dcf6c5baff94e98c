"""``option``: a dataclass field that carries its own help text, which ``--help`` prints."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

HELP = "help"


def option(default: Any = dataclasses.MISSING, help: str = "", *,
           factory: Callable[[], Any] | None = None) -> Any:
    """A field with a default (or a ``factory`` for mutable ones) and a one-line description."""
    if not help:
        raise ValueError("every config field needs a description")
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={HELP: help})
    return dataclasses.field(default=default, metadata={HELP: help})


def description(field: dataclasses.Field) -> str:
    return str(field.metadata.get(HELP, ""))
