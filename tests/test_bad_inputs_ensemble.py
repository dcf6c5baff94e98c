"""ensemble.py's bad inputs: runs, checkpoints, outputs, thresholds, devices, export; each
one clear error (harness: tests/bad_input_harness.py)."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from particles import PARTICLE_NAMES
from tests.bad_input_harness import World, check_one_clear_error, ensemble_cli, last_checkpoint, train_cli, written

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def case_ensemble_empty_runs_folder(w: World, t: Path):
    (t / "empty").mkdir()
    return ensemble_cli(w, t, "--runs", str(t / "empty"))


def case_ensemble_truncated_checkpoint(w: World, t: Path):
    path = written(t / "fold0.ckpt", last_checkpoint(w).read_bytes()[:4096])
    return ensemble_cli(w, t, "--checkpoints", str(path))


def case_ensemble_soup_of_different_models(w: World, t: Path):
    other_runs = t / "other"
    fn, argv = train_cli(w, t, "--model.widths", "4", "8", "16", "--out", str(other_runs))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert fn(argv) == 0
    (other,) = other_runs.glob("*/checkpoints/last.ckpt")
    return ensemble_cli(w, t, "--checkpoints", str(last_checkpoint(w)), str(other), "--soup")


def case_ensemble_curation_user_id(w: World, t: Path):
    return ensemble_cli(w, t, "--runs", str(w.runs), "--user-id", "curation")


def case_ensemble_binned_mrc(w: World, t: Path):
    import mrcfile
    path = t / "binned.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.random.default_rng(0).normal(size=(48, 96, 96)).astype(np.float32))
        mrc.voxel_size = 20.0
    return ensemble_cli(w, t, "--runs", str(w.runs), "--data", str(path))


def case_ensemble_over_foreign_picks(w: World, t: Path):
    """A picks file of the same copick name that the project did not write (hand-made, or another tool's)."""
    overlay = t / "overlay"
    session = w.run_dir.name.rsplit("_fold", 1)[0].replace("_", "-")
    target = overlay / "ExperimentRuns" / "TS_sim_test_0" / "Picks" / f"czii-picker_{session}_apo-ferritin.json"
    written(target, json.dumps({"pickable_object_name": "apo-ferritin", "user_id": "czii-picker",
                                 "session_id": session, "run_name": "TS_sim_test_0", "points": []}))
    return ensemble_cli(w, t, "--runs", str(w.runs), "--data", str(w.data), "--overlay", str(overlay))


def case_ensemble_same_checkpoint_twice(w: World, t: Path):
    return ensemble_cli(w, t, "--checkpoints", str(last_checkpoint(w)), str(last_checkpoint(w)))


def case_ensemble_copy_of_a_checkpoint(w: World, t: Path):
    copy = t / "copy.ckpt"
    shutil.copy(last_checkpoint(w), copy)
    return ensemble_cli(w, t, "--checkpoints", str(last_checkpoint(w)), str(copy))


def case_ensemble_component_level_of_one(w: World, t: Path):
    return ensemble_cli(w, t, "--runs", str(w.runs), "--picker", "cc3d", "--component-levels", "0.2", "1")


def case_ensemble_negative_threshold(w: World, t: Path):
    limits = {name: 0.3 for name in PARTICLE_NAMES} | {"ribosome": -0.1}
    path = written(t / "thresholds.json", json.dumps(limits))
    return ensemble_cli(w, t, "--runs", str(w.runs), "--thresholds", str(path))


def case_ensemble_unfinished_run(w: World, t: Path):
    shutil.copytree(w.runs, t / "runs")
    status = t / "runs" / w.run_dir.name / "run.json"
    status.write_text(status.read_text().replace('"finished"', '"interrupted"'))
    return ensemble_cli(w, t, "--runs", str(t / "runs"))


def case_ensemble_cuda_without_gpu(w: World, t: Path):
    return ensemble_cli(w, t, "--runs", str(w.runs), "--device", "cuda")


def case_ensemble_export_of_unknown_format(w: World, t: Path):
    return ensemble_cli(w, t, "--runs", str(w.runs), "--export", str(t / "ensemble.pt"))


def case_ensemble_out_is_a_folder(w: World, t: Path):
    (t / "sub.csv").mkdir()
    fn, argv = ensemble_cli(w, t, "--runs", str(w.runs))
    return fn, argv


def case_ensemble_overlay_under_a_file(w: World, t: Path):
    """An overlay that cannot be written (as root, permission bits do not stop writes; a file in the way does)."""
    written(t / "blocker", "a file\n")
    return ensemble_cli(w, t, "--runs", str(w.runs), "--overlay", str(t / "blocker" / "overlay"))


def case_ensemble_pictures_under_a_file(w: World, t: Path):
    written(t / "blocker", "a file\n")
    return ensemble_cli(w, t, "--runs", str(w.runs), "--pictures", str(t / "blocker" / "pictures"))


def case_ensemble_symlink_inside_overlay(w: World, t: Path):
    elsewhere = t / "elsewhere"
    elsewhere.mkdir()
    (t / "overlay" / "ExperimentRuns").mkdir(parents=True)
    (t / "overlay" / "ExperimentRuns" / "TS_sim_test_0").symlink_to(elsewhere, target_is_directory=True)
    return ensemble_cli(w, t, "--runs", str(w.runs), "--overlay", str(t / "overlay"))


CASES: list[tuple[Callable, str]] = [
    (case_ensemble_empty_runs_folder, "no trained runs"),
    (case_ensemble_truncated_checkpoint, "--checkpoints checkpoint"),
    (case_ensemble_soup_of_different_models, "--soup averages weights, so every checkpoint must be the same network"),
    (case_ensemble_curation_user_id, "is the curated truth's user id"),
    (case_ensemble_binned_mrc, "Å/voxel but the models were trained at"),
    (case_ensemble_over_foreign_picks, "was not written by"),
    (case_ensemble_same_checkpoint_twice, "(the same weights): each model would be averaged in twice"),
    (case_ensemble_copy_of_a_checkpoint, "(the same weights): each model would be averaged in twice"),
    (case_ensemble_negative_threshold, "threshold of ribosome must be a number in [0, 1]"),
    (case_ensemble_unfinished_run, "that did not finish"),
    (case_ensemble_component_level_of_one, "'inference.component_levels' must be in (0, 1) each"),
    (case_ensemble_cuda_without_gpu, "--device cuda: no such CUDA GPU is visible here"),
    (case_ensemble_export_of_unknown_format, "the file name must end in .onnx or .pt2"),
    (case_ensemble_out_is_a_folder, "is a folder; give a file path"),
    (case_ensemble_overlay_under_a_file, "blocker is a file, not a folder"),
    (case_ensemble_pictures_under_a_file, "--pictures"),
    (case_ensemble_symlink_inside_overlay, "is a symbolic link inside the overlay"),
]


@pytest.mark.parametrize("make, message", CASES, ids=[c.__name__[len("case_"):] for c, _ in CASES])
def test_bad_input_is_one_clear_error(world, tmp_path, make, message) -> None:
    check_one_clear_error(world, tmp_path, make, message)
