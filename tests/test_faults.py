"""Fault injection: train.py killed with SIGKILL at random moments and in the middle of checkpoint saves, with
$TMPDIR on another file system, then resumed: never a truncated checkpoint, nothing left in $TMPDIR, and the
resumed run ends bit-identical to one never interrupted."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.checkpoint_reader import read_checkpoint
from tests.training_fixtures import cli_args, tiny_overrides

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 6
pytestmark = pytest.mark.slow


@pytest.fixture()
def other_tmpdir(tmp_path: Path):
    """A $TMPDIR on another file system than the runs when the machine has one (tmpfs), else beside them."""
    base = Path("/dev/shm")
    if base.is_dir() and os.access(base, os.W_OK) and base.stat().st_dev != tmp_path.stat().st_dev:
        with tempfile.TemporaryDirectory(dir=base) as folder:
            yield Path(folder)
    else:
        folder = tmp_path / "elsewhere"
        folder.mkdir()
        yield folder


def _argv(twin: tuple[Path, Path], out: Path) -> list[str]:
    root, folds = twin
    overrides = tiny_overrides(root, folds, steps=4, trainer={"max_epochs": EPOCHS}, ema={"decay": 0.5},
                               mixup={"prob": 0.5}, data={"batch_size": 2})
    return ["--out", str(out), *cli_args(overrides)]


def _start(argv: list[str], tmpdir: Path, die_at_save: int = 0) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmpdir), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    return subprocess.Popen([sys.executable, "-m", "tests.fault_driver", str(die_at_save), "--", *argv], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    return output


def _last(out: Path) -> Path:
    (path,) = out.glob("*/checkpoints/last.ckpt")
    return path


def _checkpoint_files(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*/checkpoints/*"))


def _assert_same_run(a: Path, b: Path) -> None:
    first, second = (torch.load(p, map_location="cpu", weights_only=False) for p in (a, b))
    assert first["global_step"] == second["global_step"] == 2 * EPOCHS
    for key in ("state_dict", "current_model_state"):
        assert all(torch.equal(first[key][k], second[key][k]) for k in first[key]), key


def _wait_for_a_new_checkpoint(out: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    def stamp() -> float:
        found = list(out.glob("*/checkpoints/last.ckpt"))
        return found[0].stat().st_mtime_ns if found else 0.0
    before, deadline = stamp(), time.monotonic() + timeout
    while stamp() == before and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(twin, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run's last.ckpt, trained by the same driver (one thread, same environment)."""
    out = tmp_path_factory.mktemp("reference")
    _finish(_start(_argv(twin, out), out))
    return _last(out)


def test_kill_during_a_checkpoint_save_then_resume(twin, reference, tmp_path, other_tmpdir) -> None:
    """SIGKILL half way through the 5th checkpoint write (each epoch writes last.ckpt and weights.ckpt, so
    one of epoch 2's): the files on disk are complete, last.ckpt epoch 1's at least; the half-written file
    is a temporary beside them, removed by --resume."""
    out = tmp_path / "runs"
    argv = _argv(twin, out)
    killed = _start(argv, other_tmpdir, die_at_save=5)
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    state = read_checkpoint(_last(out), "--resume", for_resume=True)
    assert state["epoch"] in (1, 2)
    read_checkpoint(_last(out).with_name("weights.ckpt"), "weights")
    stale = [name for name in _checkpoint_files(out) if name.endswith(".tmp")]
    assert len(stale) == 1 and stale[0].startswith((".last.ckpt.", ".weights.ckpt."))
    assert not any(other_tmpdir.iterdir())
    output = _finish(_start([*argv, "--resume"], other_tmpdir))
    assert "a checkpoint save that was interrupted" in output
    assert _checkpoint_files(out) == ["last.ckpt", "weights.ckpt"]
    assert not any(other_tmpdir.iterdir())
    _assert_same_run(reference, _last(out))


def test_kill_at_random_moments_then_resume(twin, reference, tmp_path, other_tmpdir) -> None:
    """Three SIGKILLs at random moments once training is under way (the checkpoint on disk must load every
    time), each followed by --resume; the last resume runs to the end."""
    out = tmp_path / "runs"
    argv = _argv(twin, out)
    rng = np.random.default_rng(2026)
    process, kills = _start(argv, other_tmpdir), 0
    for _ in range(3):
        _wait_for_a_new_checkpoint(out, process)  # training is under way (imports take seconds)
        time.sleep(float(rng.uniform(0.0, 1.0)))
        if process.poll() is not None:  # finished before the kill: nothing left to interrupt
            break
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        kills += 1
        read_checkpoint(_last(out), "--resume", for_resume=True)
        process = _start([*argv, "--resume"], other_tmpdir)
    _finish(process)
    assert kills >= 2, "the run ended before it could be interrupted twice: give it more epochs"
    assert not any(other_tmpdir.iterdir())
    assert [n for n in _checkpoint_files(out) if n.endswith(".tmp")] == []
    _assert_same_run(reference, _last(out))
