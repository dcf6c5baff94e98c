"""Write-to-temporary-then-rename, so a crash never leaves a half-written output behind; and batches of such
files that appear together or not at all."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputBatch:
    """Files that appear together or not at all: each is written to a temporary file beside its target, and
    only once every one of them is complete are they renamed onto their targets, in the order given (so the
    last one, e.g. a submission CSV, can serve as the mark that the batch is complete).

    The commit is journalled: before the first rename a journal beside the last target lists every rename and a
    hard-linked backup of every target it replaces; a failure half-way restores the old files, and a journal
    left by a kill is rolled back by the next batch that commits there (``recover``). Folders are fsynced, so
    the renames survive a power cut. A discard removes the temporaries and the folders staging created.

    Use as a context manager: a clean exit commits, an exception (or a kill) leaves every target as it was.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []
        self._created: list[Path] = []  # folders made to hold a staged file: removed again on a discard

    def stage(self, target: str | os.PathLike, suffix: str = "") -> Path:
        """A new temporary path beside ``target`` that ``commit`` will rename onto it."""
        target = Path(target)
        if any(t == target for t, _ in self._staged):
            raise ValueError(f"{target} is written twice in one batch of outputs")
        self._created += _make_folders(target.parent)
        tmp = _temporary_beside(target, suffix)
        self._staged.append((target, tmp))
        return tmp

    def staged(self) -> list[tuple[Path, Path]]:
        """(target, temporary) of every staged file, to hand to the process that commits them."""
        return list(self._staged)

    def adopt(self, target: str | os.PathLike, tmp: str | os.PathLike) -> None:
        """Take over a file another process staged (its temporary must be visible here: a shared folder)."""
        target, tmp = Path(target), Path(tmp)
        if not tmp.is_file():
            raise OSError(f"{tmp}, staged by another process for {target}, is not visible here: outputs of a "
                          "multi-process launch must be on a file system every process shares")
        if any(t == target for t, _ in self._staged):
            raise ValueError(f"{target} is written twice in one batch of outputs")
        self._staged.append((target, tmp))

    def hand_over(self) -> None:
        """Forget the staged files without removing them: another process adopted them and commits them."""
        self._staged, self._created = [], []

    def commit(self) -> list[Path]:
        """Flush every staged file to disk, then rename them all onto their targets (journalled)."""
        if not self._staged:
            return []
        for _, tmp in self._staged:
            _flush_to_disk(tmp)
        for folder in {tmp.parent for _, tmp in self._staged}:
            _fsync_folder(folder)
        journal = journal_path(self._staged[-1][0])
        recover(journal)  # a commit killed half-way here before: its old files back first
        entries: list[dict] = []
        done = 0
        try:
            for target, tmp in self._staged:
                entries.append(_journal_entry(target, tmp))
            write_text_atomic(journal, json.dumps({"entries": entries}, indent=1) + "\n")
            for target, tmp in self._staged:
                os.replace(tmp, target)
                done += 1
            for folder in {target.parent for target, _ in self._staged}:
                _fsync_folder(folder)
        except BaseException:
            _roll_back(entries[:done])
            for entry in entries[done:]:
                if entry["backup"]:
                    Path(entry["backup"]).unlink(missing_ok=True)
            for _, tmp in self._staged[done:]:
                tmp.unlink(missing_ok=True)
            journal.unlink(missing_ok=True)
            self._staged = []
            self._remove_created()
            raise
        for entry in entries:
            if entry["backup"]:
                Path(entry["backup"]).unlink(missing_ok=True)
        journal.unlink(missing_ok=True)
        _fsync_folder(journal.parent)
        targets = [t for t, _ in self._staged]
        self._staged, self._created = [], []
        return targets

    def discard(self) -> None:
        for _, tmp in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged = []
        self._remove_created()

    def _remove_created(self) -> None:
        for folder in reversed(self._created):  # deepest first; only folders staging made, and only if empty
            try:
                folder.rmdir()
            except OSError:
                pass
        self._created = []

    def __enter__(self) -> OutputBatch:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def journal_path(last_target: Path) -> Path:
    """Where the journal of a batch whose last target is ``last_target`` lives (hidden, beside it)."""
    return last_target.with_name(f".{last_target.name}.commit-journal.json")


def _journal_entry(target: Path, tmp: Path) -> dict:
    """One rename of a commit: the new file's inode (to recognise it later) and a backup of the old target."""
    backup = None
    if target.is_file():
        backup = target.with_name(f".{target.name}.{os.getpid()}.{tmp.stat().st_ino}.bak")
        try:
            os.link(target, backup)
        except OSError:  # no hard links on this file system: a copy
            shutil.copy2(target, backup)
    return {"target": str(target), "tmp": str(tmp), "inode": tmp.stat().st_ino,
            "backup": None if backup is None else str(backup)}


def _roll_back(entries: list[dict]) -> None:
    """Undo renames: each target that is still the file this commit put there gets its backup back (or is
    removed when there was none); a target someone has replaced since is left alone."""
    for entry in reversed(entries):
        target, backup = Path(entry["target"]), entry["backup"]
        ours = target.is_file() and target.stat().st_ino == entry["inode"]
        if backup and Path(backup).is_file():
            if ours or not target.exists():
                os.replace(backup, target)
            else:
                Path(backup).unlink()
        elif ours:
            target.unlink()
        Path(entry["tmp"]).unlink(missing_ok=True)


def recover(journal: Path) -> bool:
    """Roll back the commit a journal left behind (its process was killed while renaming): every target as it
    was before that commit. True when there was one."""
    if not journal.is_file():
        return False
    try:
        doc = json.loads(journal.read_text())
        entries = [e for e in doc["entries"] if isinstance(e, dict)]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{journal}: an interrupted commit's journal that cannot be read; remove it by hand "
                         "after checking the files beside it") from None
    _roll_back(entries)
    journal.unlink()
    print(f"note: undid an interrupted commit of outputs ({len(entries)} files) recorded in {journal}")
    return True


def _make_folders(folder: Path) -> list[Path]:
    """``mkdir -p folder``, returning the folders it created, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        made.mkdir(exist_ok=True)
    return list(reversed(missing))


def _fsync_folder(folder: Path) -> None:
    """Make a folder's entries (new names, renames) durable."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


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
        _fsync_folder(target.parent)
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
