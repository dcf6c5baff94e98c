"""One job per run folder: a lock file beside it (``<runs>/.<run>.lock``, so ``--overwrite`` cannot delete
it) names the job that holds the folder. A second job is refused by name; a lock whose process is gone (on
this host) is stale and taken over; all processes of one multi-process launch share it."""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from dataio.bounded_reads import read_json


def lock_path(run_dir: Path) -> Path:
    return run_dir.parent / f".{run_dir.name}.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def read_lock(run_dir: Path) -> dict | None:
    """The holder recorded in the run folder's lock, or None when there is no (readable) lock."""
    try:
        doc = read_json(lock_path(run_dir), "run lock")
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _describe(holder: dict) -> str:
    return (f"host {holder.get('host')}, pid {holder.get('pid')}, launch {holder.get('launch')}, since "
            f"{holder.get('since')}")


def acquire_run_lock(run_dir: Path, launch: str) -> Path:
    """Take the run folder for the launch ``launch`` (re-entrant for the same launch). Refuses, naming the
    holder, a folder another live job holds; takes over a lock whose process has died on this host."""
    path = lock_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    doc = json.dumps({"host": host, "pid": os.getpid(), "launch": launch,
                      "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_lock(run_dir) or {}
            if holder.get("launch") == launch:
                return path
            if holder.get("host") == host and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
                print(f"note: {path} was left by a job that is gone ({_describe(holder)}): taking it over")
                path.unlink(missing_ok=True)
                continue
            raise FileExistsError(f"run folder {run_dir} is in use by another job ({_describe(holder)}); wait for "
                                  f"it, or, if that job is gone (on another host its process cannot be checked "
                                  f"from here), delete {path}") from None
        with os.fdopen(fd, "w") as handle:
            handle.write(doc)
        return path
    raise FileExistsError(f"could not take the lock {path}")


def release_run_lock(run_dir: Path, launch: str) -> None:
    """Remove the lock if this launch holds it (never another job's)."""
    holder = read_lock(run_dir)
    if holder is not None and holder.get("launch") == launch:
        lock_path(run_dir).unlink(missing_ok=True)
