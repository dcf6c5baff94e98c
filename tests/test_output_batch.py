"""Outputs that appear together or not at all, in fact: a failure or a kill half-way through the renames leaves
the old files, a discard leaves no folder behind, and files staged by other processes commit with rank 0's."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import atomic
from runtime.atomic import OutputBatch, journal_path, recover, write_text_atomic

REPO = Path(__file__).resolve().parents[1]


def _old_outputs(root: Path) -> tuple[Path, Path]:
    return write_text_atomic(root / "pictures" / "a.png", "old a"), write_text_atomic(root / "sub.csv", "old csv")


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob(".*") if p.is_file())


def test_a_failure_between_renames_restores_the_old_files(tmp_path, monkeypatch) -> None:
    picture, csv = _old_outputs(tmp_path)
    real_replace, calls = os.replace, []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # the first two renames are done when the disk gives out
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    with pytest.raises(OSError, match="No space"):
        with OutputBatch() as batch:
            write_text_atomic(picture, "new a", batch=batch)
            write_text_atomic(tmp_path / "overlay" / "Picks" / "p.json", "new picks", batch=batch)
            write_text_atomic(csv, "new csv", batch=batch)
            monkeypatch.setattr(atomic.os, "replace", failing_replace)
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert picture.read_text() == "old a" and csv.read_text() == "old csv"
    assert not (tmp_path / "overlay").exists()  # nor the folders made for it
    assert _leftovers(tmp_path) == []  # no temporaries, backups or journal


KILLED_COMMIT = """
import os, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from runtime import atomic
from runtime.atomic import OutputBatch, write_text_atomic
root = Path({root!r})
real, count = os.replace, []
def dying(src, dst):
    if Path(dst).parent == root and Path(dst).name == "sub.csv":
        os._exit(9)  # killed after the picture's rename, before the CSV's
    real(src, dst)
with OutputBatch() as batch:
    write_text_atomic(root / "pictures" / "a.png", "new a", batch=batch)
    write_text_atomic(root / "sub.csv", "new csv", batch=batch)
    atomic.os.replace = dying
"""


def test_a_commit_killed_half_way_is_undone_by_the_next(tmp_path, capsys) -> None:
    picture, csv = _old_outputs(tmp_path)
    killed = subprocess.run([sys.executable, "-c", KILLED_COMMIT.format(repo=str(REPO), root=str(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    assert killed.returncode == 9, killed.stderr
    assert picture.read_text() == "new a" and csv.read_text() == "old csv"  # half a commit on disk
    assert journal_path(csv).is_file()
    with OutputBatch() as batch:  # the next run committing there first puts the old files back
        write_text_atomic(csv, "newer csv", batch=batch)
    assert "undid an interrupted commit" in capsys.readouterr().out
    assert picture.read_text() == "old a" and csv.read_text() == "newer csv"
    assert _leftovers(tmp_path) == []
    assert not recover(journal_path(csv))


def test_a_discard_leaves_no_folder_it_made(tmp_path) -> None:
    (tmp_path / "overlay" / "ExperimentRuns").mkdir(parents=True)
    with pytest.raises(RuntimeError):
        with OutputBatch() as batch:
            write_text_atomic(tmp_path / "overlay" / "ExperimentRuns" / "TS_1" / "Picks" / "p.json", "x", batch=batch)
            raise RuntimeError("prediction failed")
    assert [p.name for p in (tmp_path / "overlay").rglob("*")] == ["ExperimentRuns"]


def test_files_staged_by_another_process_commit_with_the_batch_that_adopts_them(tmp_path) -> None:
    other = OutputBatch()  # rank 1's pictures
    write_text_atomic(tmp_path / "pictures" / "TS_2.png", "rank 1", batch=other)
    staged = other.staged()
    other.hand_over()
    other.discard()  # handed over: nothing of it is removed
    with OutputBatch() as batch:  # rank 0
        for target, tmp in staged:
            batch.adopt(target, tmp)
        write_text_atomic(tmp_path / "sub.csv", "rank 0", batch=batch)
    assert (tmp_path / "pictures" / "TS_2.png").read_text() == "rank 1"
    failed = OutputBatch()
    write_text_atomic(tmp_path / "pictures" / "TS_3.png", "rank 1", batch=failed)
    staged = failed.staged()
    failed.hand_over()
    with pytest.raises(RuntimeError):
        with OutputBatch() as batch:
            for target, tmp in staged:
                batch.adopt(target, tmp)
            raise RuntimeError("rank 0 failed")
    assert not (tmp_path / "pictures" / "TS_3.png").exists() and _leftovers(tmp_path) == []
    with pytest.raises(OSError, match="not visible here"):
        OutputBatch().adopt(tmp_path / "x.png", tmp_path / ".x.png.gone.tmp")
