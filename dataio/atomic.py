"""Write-to-temporary-then-rename, so a crash never leaves a half-written output behind; and batches of such
files that appear together or not at all."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputBatch:
    """Files that appear together or not at all: each is written to a temporary file beside its target, and
    only once every one of them is complete are they renamed onto their targets, in the order given (so the
    last one, e.g. a submission CSV, can serve as the mark that the batch is complete).

    Use as a context manager: a clean exit commits, an exception (or a kill) leaves every target as it was
    and removes the temporaries (a kill leaves them as hidden ``.<name>.*.tmp`` files, never a target).
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def stage(self, target: str | os.PathLike, suffix: str = "") -> Path:
        """A new temporary path beside ``target`` that ``commit`` will rename onto it."""
        target = Path(target)
        if any(t == target for t, _ in self._staged):
            raise ValueError(f"{target} is written twice in one batch of outputs")
        tmp = _temporary_beside(target, suffix)
        self._staged.append((target, tmp))
        return tmp

    def commit(self) -> list[Path]:
        """Flush every staged file to disk, then rename them all onto their targets."""
        for _, tmp in self._staged:
            _flush_to_disk(tmp)
        for target, tmp in self._staged:
            os.replace(tmp, target)
        targets = [t for t, _ in self._staged]
        self._staged = []
        return targets

    def discard(self) -> None:
        for _, tmp in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged = []

    def __enter__(self) -> OutputBatch:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def _temporary_beside(target: Path, suffix: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=target.parent)
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "", batch: OutputBatch | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target`` (or, with ``batch``,
    leave it to the batch to rename together with the others).

    On an exception the temporary file is removed and ``target`` is left untouched.
    ``suffix`` keeps writers that insist on a file extension (``np.save``, matplotlib) happy.
    """
    if batch is not None:
        yield batch.stage(target, suffix)
        return
    target = Path(target)
    tmp_path = _temporary_beside(target, suffix)
    try:
        yield tmp_path
        _flush_to_disk(tmp_path)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _flush_to_disk(path: Path) -> None:
    """Give the finished temporary file the mode a plain ``open`` would (mkstemp makes it 0600, which a
    shared lab folder cannot read) and fsync it, so the rename never exposes a file still in the page cache."""
    if path.is_dir():
        return
    os.chmod(path, 0o666 & ~_current_umask())
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def write_text_atomic(target: str | os.PathLike, text: str, batch: OutputBatch | None = None) -> Path:
    """Write ``text`` to ``target`` atomically (or as part of ``batch``) and return the path."""
    with atomic_path(target, batch=batch) as tmp:
        tmp.write_text(text)
    return Path(target)


def check_writable(target: str | os.PathLike, what: str) -> Path:
    """Refuse, before any long work, a file target that cannot be written: a folder in its place, a file in
    the way of its folder, or a folder that refuses a new file (permissions, a read-only or full disk).
    The probe creates and removes a temporary file in the nearest existing folder (root passes permission
    bits, so only a real write tells)."""
    target = Path(target)
    if target.is_dir():
        raise ValueError(f"{what} {target} is a folder; give a file path")
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{what} {target}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"{what} {target}: cannot write in {folder} ({err.strerror})") from None
    return target
