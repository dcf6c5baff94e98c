"""Files that would run code when opened: every checkpoint a tool reads is refused unopened; each
one clear error (harness: tests/bad_input_harness.py)."""
from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.bad_input_harness import World, check_one_clear_error, ensemble_cli, resumable_copy, train_cli, written

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def evil_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint that, unpickled without weights_only, runs a shell command creating ``marker``."""
    return written(path, evil_bytes(marker))


def evil_bytes(marker: Path) -> bytes:
    import os
    import pickle

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    buffer = io.BytesIO()
    torch.save({"state_dict": {"model.w": torch.ones(1)}, "hyper_parameters": {"config": {}},
                "payload": Payload()}, buffer, pickle_module=pickle)
    return buffer.getvalue()


def case_init_from_code_execution(w: World, t: Path):
    return train_cli(w, t, "--init-from", str(evil_checkpoint(t / "evil.ckpt", t / "PWNED")))


def case_resume_code_execution(w: World, t: Path):
    evil_checkpoint(resumable_copy(w, t), t / "PWNED")
    return train_cli(w, t, "--resume")


def case_ensemble_checkpoints_code_execution(w: World, t: Path):
    return ensemble_cli(w, t, "--checkpoints", str(evil_checkpoint(t / "evil.ckpt", t / "PWNED")))


def case_ensemble_runs_code_execution(w: World, t: Path):
    shutil.copytree(w.runs, t / "runs")
    evil_checkpoint(t / "runs" / w.run_dir.name / "checkpoints" / "weights.ckpt", t / "PWNED")
    return ensemble_cli(w, t, "--runs", str(t / "runs"))


def case_encoder_weights_code_execution(w: World, t: Path):
    evil = evil_checkpoint(t / "encoder.pth", t / "PWNED")
    return train_cli(w, t, "--model.name", "unet-resnet18", "--model.encoder_weights", str(evil))


CASES: list[tuple[Callable, str]] = [
    (case_init_from_code_execution, "asks to import posix.system when unpickled"),
    (case_resume_code_execution, "asks to import posix.system when unpickled"),
    (case_ensemble_checkpoints_code_execution, "asks to import posix.system when unpickled"),
    (case_ensemble_runs_code_execution, "asks to import posix.system when unpickled"),
    (case_encoder_weights_code_execution, "encoder weights file"),
]


@pytest.mark.parametrize("make, message", CASES, ids=[c.__name__[len("case_"):] for c, _ in CASES])
def test_bad_input_is_one_clear_error(world, tmp_path, make, message) -> None:
    check_one_clear_error(world, tmp_path, make, message)
