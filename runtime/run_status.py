"""A run folder's ``run.json``: proof that train.py created the folder (so ``--overwrite`` may delete it) and
whether its training finished (so an ensemble never takes an interrupted run's weights for final ones)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from runtime.bounded_reads import read_json
from runtime.atomic import write_text_atomic

RUN_STATUS_NAME = "run.json"
CREATED_BY = "czii-picker train.py"
STATUSES: tuple[str, ...] = ("running", "finished", "interrupted", "failed")


def write_run_status(run_dir: Path, status: str, **details: Any) -> Path:
    """Record ``status`` (one of STATUSES) with a time stamp and ``details`` (epoch, step, reason)."""
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {STATUSES}")
    doc = {"created_by": CREATED_BY, "status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **details}
    return write_text_atomic(Path(run_dir) / RUN_STATUS_NAME, json.dumps(doc, indent=2) + "\n")


def read_run_status(run_dir: Path) -> dict[str, Any] | None:
    """The run's status record, or None when the folder has none (not made by train.py, or by a version
    before run.json existed) or it is unreadable."""
    path = Path(run_dir) / RUN_STATUS_NAME
    if not path.is_file() or path.is_symlink():
        return None
    try:
        doc = read_json(path, "run record")
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("created_by") == CREATED_BY else None


def is_run_folder(run_dir: Path) -> bool:
    """Whether train.py created this folder (only such a folder is ever deleted by ``--overwrite``)."""
    return not Path(run_dir).is_symlink() and read_run_status(run_dir) is not None


def run_state(run_dir: Path) -> str:
    """``finished``, ``running``, ``interrupted``, ``failed`` or ``unknown`` (no record)."""
    status = read_run_status(run_dir)
    return str(status.get("status")) if status else "unknown"
