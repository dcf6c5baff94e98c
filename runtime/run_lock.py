"""One job per run folder: a lock file beside it (``<runs>/.<run>.lock``, so ``--overwrite`` cannot delete
it) names the job that holds the folder. A second job is refused by name; a lock whose process is gone (on
this host) is stale and taken over; all processes of one multi-process launch share it (their launch token).

Made to hold on a shared (network) file system: the lock appears complete in one step (a temporary file with
the holder's record is hard-linked into place, which fails if a lock exists), and a stale lock is taken over
by one process at a time (it holds a ``.break`` file while it re-reads and removes the lock), so two starters
never both win."""
from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path

from runtime.bounded_reads import read_json

UNREADABLE_GRACE_S = 60.0
"""A lock that cannot be read (left by a version that wrote it in two steps) is taken over after this long."""
BREAKER_STALE_S = 30.0
"""A ``.break`` file older than this was left by a process killed while breaking a stale lock."""


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


def _read(path: Path) -> dict | None:
    try:
        doc = read_json(path, "run lock")
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def read_lock(run_dir: Path) -> dict | None:
    """The holder recorded in the run folder's lock, or None when there is no (readable) lock."""
    return _read(lock_path(run_dir))


def _describe(holder: dict) -> str:
    return (f"host {holder.get('host')}, pid {holder.get('pid')}, launch {holder.get('launch')}, since "
            f"{holder.get('since')}")


def _is_stale(path: Path, holder: dict | None, host: str) -> bool:
    """A lock whose process is gone on this host, or one left unreadable for longer than the grace period."""
    if holder is None:
        try:
            return time.time() - path.stat().st_mtime > UNREADABLE_GRACE_S
        except FileNotFoundError:
            return False
    pid = holder.get("pid")
    return holder.get("host") == host and isinstance(pid, int) and not _alive(pid)


def _complete_record(folder: Path, record: str) -> Path:
    """A temporary file beside the lock holding the whole record, flushed to disk."""
    fd, tmp = tempfile.mkstemp(prefix=".lock.", suffix=".tmp", dir=folder)
    with os.fdopen(fd, "w") as handle:
        handle.write(record)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    return Path(tmp)


def _place(tmp: Path, path: Path, record: str) -> None:
    """Put the complete record at ``path`` unless a lock is there (FileExistsError): a hard link, atomic on
    local and network file systems; where links are not supported, an exclusive create and write."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some FUSE / SMB mounts)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(record)


def _take_over(path: Path, stale: dict | None, host: str) -> bool:
    """Remove the stale lock ``path`` if it still holds the record ``stale``; True when this process removed it.
    Only one process at a time may break a lock: it must first create ``<lock>.break`` (a hard link, so on a
    network file system too), and while it holds that, nobody else removes the lock and nobody can create a
    new one in its place (the old one is still there), so what it re-reads is what it removes."""
    breaker = path.with_name(f"{path.name}.break")
    tmp = _complete_record(path.parent, json.dumps({"host": host, "pid": os.getpid()}))
    try:
        try:
            _place(tmp, breaker, "")
        except FileExistsError:
            try:  # a breaker left by a process killed while breaking (which takes milliseconds)
                if time.time() - breaker.stat().st_mtime > BREAKER_STALE_S:
                    breaker.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            return False
        try:
            if _read(path) != stale or not _is_stale(path, stale, host):
                return False  # taken over and renewed meanwhile, or no longer stale
            path.unlink()
            return True
        except FileNotFoundError:
            return False
        finally:
            breaker.unlink(missing_ok=True)
    finally:
        tmp.unlink(missing_ok=True)


def acquire_run_lock(run_dir: Path, launch: str) -> Path:
    """Take the run folder for the launch ``launch`` (re-entrant for the same launch). Refuses, naming the lock
    file and its holder, a folder another live job holds; takes over a lock whose process has died on this
    host."""
    path = lock_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    record = json.dumps({"host": host, "pid": os.getpid(), "launch": launch,
                         "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    tmp = _complete_record(path.parent, record)
    try:
        for _ in range(20):
            try:
                _place(tmp, path, record)
                return path
            except FileExistsError:
                pass
            holder = _read(path)
            if holder is not None and holder.get("launch") == launch:
                return path
            if _is_stale(path, holder, host):
                what = _describe(holder) if holder else "an unreadable record"
                if _take_over(path, holder, host):
                    print(f"note: {path} was left by a job that is gone ({what}): taking it over")
                else:
                    time.sleep(0.05)  # another starter is breaking it: look again in a moment
                continue
            if not path.exists():
                continue  # released meanwhile
            holder = _read(path) or holder or {}
            raise FileExistsError(f"run folder {run_dir} is in use by another job ({_describe(holder)}; "
                                  f"lock file {path}); wait for it, or, if that job is gone (on another host its "
                                  f"process cannot be checked from here), delete {path}") from None
        raise FileExistsError(f"could not take the lock {path}: other jobs keep taking and releasing it")
    finally:
        tmp.unlink(missing_ok=True)


def release_run_lock(run_dir: Path, launch: str) -> None:
    """Remove the lock if this launch holds it (never another job's)."""
    holder = read_lock(run_dir)
    if holder is not None and holder.get("launch") == launch:
        lock_path(run_dir).unlink(missing_ok=True)
