"""The one-line answer every tool gives to an environment fault, and outputs that appear together or not at
all (pure units: the command-line cases are in tests/test_bad_inputs_*.py and tests/test_trust.py)."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from runtime.atomic import OutputBatch, check_writable, write_text_atomic
from runtime.cli_errors import describe, run_tool


@pytest.mark.parametrize("code, advice", [(errno.ENOSPC, "the disk is full: free space or write elsewhere"),
                                          (errno.EROFS, "the file system is read-only: write elsewhere"),
                                          (errno.EACCES,
                                           "permission denied: write elsewhere or change the folder's permissions")])
def test_an_environment_fault_is_one_line_naming_the_file(code, advice, capsys) -> None:
    def fails() -> int:
        raise OSError(code, os.strerror(code), "/data/out/submission.csv")

    assert run_tool("ensemble.py", fails) == 2
    assert capsys.readouterr().err == f"ensemble.py: error: /data/out/submission.csv: {advice}\n"


def test_the_projects_own_messages_pass_unchanged() -> None:
    assert describe(ValueError("config key 'optim.lr' must be > 0,\n  got -1")) == \
        "config key 'optim.lr' must be > 0, got -1"
    assert describe(FileNotFoundError("data path not found: /x")) == "data path not found: /x"


def test_the_unexpected_is_one_line_with_its_traceback_saved(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None  # re-read TMPDIR
    try:
        assert run_tool("train.py", lambda: {}["missing"]) == 2
    finally:
        tempfile.tempdir = None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.py: error: internal error (KeyError: 'missing'); please report" in err
    (report,) = tmp_path.glob("czii-picker-train-internal-error-*.txt")
    assert "Traceback" in report.read_text() and "KeyError" in report.read_text() and str(report) in err
    assert run_tool("x", lambda: np.empty(2**62, dtype=np.uint8)) == 2  # numpy refuses the allocation at once
    assert "out of memory" in capsys.readouterr().err


def test_passthrough_and_ctrl_c_propagate() -> None:
    class Stop(Exception):
        pass

    def interrupted() -> int:
        raise KeyboardInterrupt

    def stopped() -> int:
        raise Stop

    with pytest.raises(KeyboardInterrupt):
        run_tool("train.py", interrupted)
    with pytest.raises(Stop):
        run_tool("train.py", stopped, passthrough=(Stop,))


def test_a_batch_appears_together_or_not_at_all(tmp_path) -> None:
    old = write_text_atomic(tmp_path / "a.txt", "old a")
    with pytest.raises(RuntimeError):
        with OutputBatch() as batch:
            write_text_atomic(tmp_path / "a.txt", "new a", batch=batch)
            write_text_atomic(tmp_path / "sub" / "b.txt", "new b", batch=batch)
            assert old.read_text() == "old a" and not (tmp_path / "sub" / "b.txt").exists()
            raise RuntimeError("killed while writing the third file")
    assert old.read_text() == "old a" and not (tmp_path / "sub" / "b.txt").exists()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.txt"]  # no temporaries left
    with OutputBatch() as batch:
        write_text_atomic(tmp_path / "a.txt", "new a", batch=batch)
        write_text_atomic(tmp_path / "sub" / "b.txt", "new b", batch=batch)
    assert (tmp_path / "a.txt").read_text() == "new a" and (tmp_path / "sub" / "b.txt").read_text() == "new b"


def test_unwritable_targets_are_named_before_any_work(tmp_path) -> None:
    (tmp_path / "blocker").write_text("a file")
    with pytest.raises(ValueError, match="--out .*blocker is a file, not a folder"):
        check_writable(tmp_path / "blocker" / "deeper" / "sub.csv", "--out")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="is a folder; give a file path"):
        check_writable(tmp_path / "folder", "--out")
    assert check_writable(tmp_path / "new" / "sub.csv", "--out") == tmp_path / "new" / "sub.csv"
    assert not (tmp_path / "new").exists()  # the probe leaves nothing behind
    if os.geteuid() != 0:  # root passes permission bits; a read-only folder refuses everyone else
        (tmp_path / "locked").mkdir(mode=0o555)
        with pytest.raises(ValueError, match="cannot write in"):
            check_writable(Path(tmp_path / "locked" / "x.csv"), "--out")
