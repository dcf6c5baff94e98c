"""Every bad input of the table in ERRORS.md, through the command line a user types: a one-line error naming what
is wrong (exit code 2 or a message), never a traceback, and nothing written that blocks the corrected run.

ERRORS.md's table is checked against this list: each case's expected message appears in its row."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import ensemble
import simulate
import train
from dataio.layout import tomogram_path, train_overlay_root
from particles import PARTICLE_NAMES
from postprocess import metric
from tests.training_fixtures import cli_args, tiny_overrides

REPO = Path(__file__).resolve().parents[1]
RUN = "TS_5_4"  # fold 0's held-out run of the tiny dataset


@dataclass
class World:
    """A private copy of the tiny dataset, the argv that trains its fold 0, and one finished run of it."""

    data: Path
    runs: Path
    argv: list[str]
    run_dir: Path


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("bad_inputs")
    data = base / "data"
    shutil.copytree(tiny_dataset, data)
    runs = base / "runs"
    argv = ["--out", str(runs), *cli_args(tiny_overrides(data, steps=2))]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert train.main(argv) == 0
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return World(data, runs, argv, run_dir)


def _damaged_copy(world: World, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(world.data, data)
    return data


def _with_data(world: World, data: Path) -> list[str]:
    """The training argv aimed at another copy of the dataset (``--data`` and the folds file inside it)."""
    return [a.replace(str(world.data), str(data)) for a in world.argv]


def _chunk(data: Path, run: str = "TS_6_4") -> Path:
    store = tomogram_path(data, "train", run) / "0"
    return next(p for p in sorted(store.rglob("*")) if p.is_file() and not p.name.startswith("."))


def _pick_file(data: Path, run: str = "TS_6_4", particle: str = "apo-ferritin") -> Path:
    return next((train_overlay_root(data) / "ExperimentRuns" / run / "Picks").glob(f"*_{particle}.json"))


def _train(world: World, tmp_path: Path, *extra: str, data: Path | None = None) -> tuple[Callable, list[str]]:
    base = _with_data(world, data) if data is not None else world.argv
    out = ["--out", str(tmp_path / "runs")]
    return train.main, [*base, *out, *extra]


def _ensemble(world: World, tmp_path: Path, *extra: str) -> tuple[Callable, list[str]]:
    return ensemble.main, ["--data", str(world.data), "--out", str(tmp_path / "sub.csv"), *extra]


def _checkpoint(world: World) -> Path:
    return world.run_dir / "checkpoints" / "last.ckpt"


def _written(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# --- the cases: (id, how to make it, a fragment of the message the user sees) --------------------------------

def case_unknown_flag(w: World, t: Path):
    return _train(w, t, "--optim.lrr", "1e-3")


def case_unknown_config_key(w: World, t: Path):
    return _train(w, t, "--config", str(_written(t / "bad.yaml", "optim:\n  lrr: 0.001\n")))


def case_malformed_config_yaml(w: World, t: Path):
    return _train(w, t, "--config", str(_written(t / "bad.yaml", "optim: [unclosed\n")))


def case_wrong_value_type(w: World, t: Path):
    return _train(w, t, "--optim.lr", "fast")


def case_no_fold(w: World, t: Path):
    fn, argv = _train(w, t)
    i = argv.index("--fold")
    return fn, argv[:i] + argv[i + 2:]


def case_unknown_fold(w: World, t: Path):
    return _train(w, t, "--fold", "7")


def case_missing_data_root(w: World, t: Path):
    return _train(w, t, "--data", str(t / "nowhere"))


def case_patch_larger_than_tomogram(w: World, t: Path):
    return _train(w, t, "--data.patch_size", "64", "64", "64")


def case_unknown_model(w: World, t: Path):
    return _train(w, t, "--model.name", "unet-resnet9000")


def case_missing_encoder_weights(w: World, t: Path):
    return _train(w, t, "--model.name", "unet-resnet18", "--model.encoder_weights", "/no/such/encoder.pth")


def case_epochs_not_multiple_of_validation(w: World, t: Path):
    return _train(w, t, "--trainer.max_epochs", "5", "--trainer.check_val_every_n_epoch", "2")


def case_folds_file_names_unknown_run(w: World, t: Path):
    folds = _written(t / "folds.yaml", yaml_folds({0: [RUN], 1: ["TS_NOPE"]}))
    return _train(w, t, "--data.folds_file", str(folds))


def yaml_folds(folds: dict[int, list[str]]) -> str:
    """A folds.yaml text (JSON is YAML)."""
    return json.dumps({"folds": folds})


def case_run_folder_exists(w: World, t: Path):
    return train.main, w.argv


def case_resume_without_checkpoint(w: World, t: Path):
    return _train(w, t, "--resume")


def _resumable_copy(w: World, t: Path) -> Path:
    shutil.copytree(w.runs, t / "runs")
    return t / "runs" / w.run_dir.name / "checkpoints" / "last.ckpt"


def case_resume_truncated_checkpoint(w: World, t: Path):
    last = _resumable_copy(w, t)
    last.write_bytes(last.read_bytes()[:4096])
    return _train(w, t, "--resume")


def case_resume_inference_only_checkpoint(w: World, t: Path):
    last = _resumable_copy(w, t)
    state = torch.load(last, map_location="cpu", weights_only=False)
    torch.save({k: state[k] for k in ("state_dict", "hyper_parameters")}, last)
    return _train(w, t, "--resume")


def case_init_from_missing(w: World, t: Path):
    return _train(w, t, "--init-from", str(t / "missing.ckpt"))


def case_init_from_not_a_checkpoint(w: World, t: Path):
    return _train(w, t, "--init-from", str(_written(t / "notes.ckpt", "just some text\n")))


def case_init_from_plain_state_dict(w: World, t: Path):
    path = t / "weights.pth"
    torch.save({"conv.weight": torch.ones(2)}, path)
    return _train(w, t, "--init-from", str(path))


def case_init_from_another_model(w: World, t: Path):
    return _train(w, t, "--init-from", str(_checkpoint(w)), "--model.widths", "4", "8", "16")


def case_truncated_zarr_chunk(w: World, t: Path):
    data = _damaged_copy(w, t)
    chunk = _chunk(data)
    chunk.write_bytes(chunk.read_bytes()[:20])
    return _train(w, t, data=data)


def case_missing_zarr_chunk(w: World, t: Path):
    data = _damaged_copy(w, t)
    _chunk(data).unlink()
    return _train(w, t, data=data)


def case_malformed_picks_json(w: World, t: Path):
    data = _damaged_copy(w, t)
    path = _pick_file(data)
    path.write_text(path.read_text()[:50])
    return _train(w, t, data=data)


def case_picks_outside_the_volume(w: World, t: Path):
    data = _damaged_copy(w, t)
    path = _pick_file(data)
    doc = json.loads(path.read_text())
    doc["points"][0]["location"]["x"] = 1e6
    path.write_text(json.dumps(doc))
    return _train(w, t, data=data)


def case_ensemble_empty_runs_folder(w: World, t: Path):
    (t / "empty").mkdir()
    return _ensemble(w, t, "--runs", str(t / "empty"))


def case_ensemble_truncated_checkpoint(w: World, t: Path):
    path = _written(t / "fold0.ckpt", _checkpoint(w).read_bytes()[:4096])
    return _ensemble(w, t, "--checkpoints", str(path))


def case_ensemble_soup_of_different_models(w: World, t: Path):
    other_runs = t / "other"
    fn, argv = _train(w, t, "--model.widths", "4", "8", "16", "--out", str(other_runs))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert fn(argv) == 0
    (other,) = other_runs.glob("*/checkpoints/last.ckpt")
    return _ensemble(w, t, "--checkpoints", str(_checkpoint(w)), str(other), "--soup")


def case_ensemble_curation_user_id(w: World, t: Path):
    return _ensemble(w, t, "--runs", str(w.runs), "--user-id", "curation")


def case_ensemble_binned_mrc(w: World, t: Path):
    import mrcfile
    path = t / "binned.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.random.default_rng(0).normal(size=(48, 96, 96)).astype(np.float32))
        mrc.voxel_size = 20.0
    return _ensemble(w, t, "--runs", str(w.runs), "--data", str(path))


def case_ensemble_over_foreign_picks(w: World, t: Path):
    """A picks file of the same copick name that the project did not write (hand-made, or another tool's)."""
    overlay = t / "overlay"
    session = w.run_dir.name.rsplit("_fold", 1)[0].replace("_", "-")
    target = overlay / "ExperimentRuns" / "TS_sim_test_0" / "Picks" / f"czii-picker_{session}_apo-ferritin.json"
    _written(target, json.dumps({"pickable_object_name": "apo-ferritin", "user_id": "czii-picker",
                                 "session_id": session, "run_name": "TS_sim_test_0", "points": []}))
    return _ensemble(w, t, "--runs", str(w.runs), "--data", str(w.data), "--overlay", str(overlay))


def case_metric_submission_missing_columns(w: World, t: Path):
    csv = _written(t / "sub.csv", "id,experiment,particle_type\n0,TS_sim_test_0,apo-ferritin\n")
    return metric.main, [str(csv), "--gt", str(w.data / "test_truth")]


def case_metric_missing_ground_truth(w: World, t: Path):
    csv = _written(t / "sub.csv", "id,experiment,particle_type,x,y,z\n")
    return metric.main, [str(csv), "--gt", str(t / "no_truth")]


def case_metric_unknown_experiment(w: World, t: Path):
    csv = _written(t / "sub.csv", "id,experiment,particle_type,x,y,z\n0,TS_elsewhere,apo-ferritin,1,2,3\n")
    return metric.main, [str(csv), "--gt", str(w.data / "test_truth")]


def case_simulate_unknown_difficulty(w: World, t: Path):
    return simulate.main, ["--out", str(t / "sim"), "--difficulty", "medium"]


def case_simulate_into_a_full_folder(w: World, t: Path):
    _written(t / "sim" / "notes.txt", "mine\n")
    return simulate.main, ["--out", str(t / "sim"), "--size", "48,96,96"]


def case_simulate_missing_templates(w: World, t: Path):
    return simulate.main, ["--out", str(t / "sim"), "--templates", str(t / "no_maps")]


def _evil_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint that, unpickled without weights_only, runs a shell command creating ``marker``."""
    return _written(path, _evil_bytes(marker))


def _evil_bytes(marker: Path) -> bytes:
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
    return _train(w, t, "--init-from", str(_evil_checkpoint(t / "evil.ckpt", t / "PWNED")))


def case_resume_code_execution(w: World, t: Path):
    _evil_checkpoint(_resumable_copy(w, t), t / "PWNED")
    return _train(w, t, "--resume")


def case_ensemble_checkpoints_code_execution(w: World, t: Path):
    return _ensemble(w, t, "--checkpoints", str(_evil_checkpoint(t / "evil.ckpt", t / "PWNED")))


def case_ensemble_runs_code_execution(w: World, t: Path):
    shutil.copytree(w.runs, t / "runs")
    _evil_checkpoint(t / "runs" / w.run_dir.name / "checkpoints" / "weights.ckpt", t / "PWNED")
    return _ensemble(w, t, "--runs", str(t / "runs"))


def case_encoder_weights_code_execution(w: World, t: Path):
    evil = _evil_checkpoint(t / "encoder.pth", t / "PWNED")
    return _train(w, t, "--model.name", "unet-resnet18", "--model.encoder_weights", str(evil))


def case_experiment_outside_out(w: World, t: Path):
    return _train(w, t, "--experiment", "../x")


def case_config_experiment_outside_out_with_overwrite(w: World, t: Path):
    (t / "victim").mkdir()
    _written(t / "victim" / "thesis.tex", "years of work\n")
    return _train(w, t, "--config", str(_written(t / "c.yaml", "experiment: ../victim\n")), "--overwrite")


def case_overwrite_a_folder_train_did_not_create(w: World, t: Path):
    fn, argv = _train(w, t)
    _written(t / "runs" / w.run_dir.name / "notes.txt", "mine\n")
    return fn, [*argv, "--overwrite"]


def case_zero_patch_size(w: World, t: Path):
    return _train(w, t, "--data.patch_size", "0", "32", "32")


def case_negative_learning_rate(w: World, t: Path):
    return _train(w, t, "--optim.lr", "-1e-3")


def case_zero_epochs(w: World, t: Path):
    return _train(w, t, "--trainer.max_epochs", "0")


def case_infinite_number(w: World, t: Path):
    return _train(w, t, "--optim.lr", "1e400")


def case_empty_fold(w: World, t: Path):
    return _train(w, t, "--fold", "")


def case_all_joined_with_a_fold(w: World, t: Path):
    return _train(w, t, "--fold", "-1+2")


def case_copick_root_without_runs(w: World, t: Path):
    (t / "root" / "train" / "static").mkdir(parents=True)
    return _train(w, t, "--data", str(t / "root"))


def case_misnamed_voxel_spacing_folder(w: World, t: Path):
    data = _damaged_copy(w, t)
    spacing = tomogram_path(data, "train", RUN).parent
    spacing.rename(spacing.with_name("VoxelSpacing10.012"))
    return _train(w, t, data=data)


def case_copied_dataset_config(w: World, t: Path):
    data = _damaged_copy(w, t)
    return _train(w, t, "--data", str(data / "copick_config.json"))


def case_copick_nan_coordinates(w: World, t: Path):
    """A NaN in a pick file read through the copick library (JSON allows NaN)."""
    data = _damaged_copy(w, t)
    from dataio.copick_config import write_copick_configs
    write_copick_configs(data)
    path = _pick_file(data)
    doc = json.loads(path.read_text())
    doc["points"][0]["location"]["x"] = float("nan")
    path.write_text(json.dumps(doc))
    return _train(w, t, "--data", str(data / "copick_config.json"))


def case_ensemble_same_checkpoint_twice(w: World, t: Path):
    return _ensemble(w, t, "--checkpoints", str(_checkpoint(w)), str(_checkpoint(w)))


def case_ensemble_copy_of_a_checkpoint(w: World, t: Path):
    copy = t / "copy.ckpt"
    shutil.copy(_checkpoint(w), copy)
    return _ensemble(w, t, "--checkpoints", str(_checkpoint(w)), str(copy))


def case_ensemble_negative_threshold(w: World, t: Path):
    limits = {name: 0.3 for name in PARTICLE_NAMES} | {"ribosome": -0.1}
    path = _written(t / "thresholds.json", json.dumps(limits))
    return _ensemble(w, t, "--runs", str(w.runs), "--thresholds", str(path))


def case_ensemble_unfinished_run(w: World, t: Path):
    shutil.copytree(w.runs, t / "runs")
    status = t / "runs" / w.run_dir.name / "run.json"
    status.write_text(status.read_text().replace('"finished"', '"interrupted"'))
    return _ensemble(w, t, "--runs", str(t / "runs"))


def case_train_gpu_without_gpu(w: World, t: Path):
    return _train(w, t, "--trainer.accelerator", "gpu")


def case_ensemble_cuda_without_gpu(w: World, t: Path):
    return _ensemble(w, t, "--runs", str(w.runs), "--device", "cuda")


def case_ensemble_export_of_unknown_format(w: World, t: Path):
    return _ensemble(w, t, "--runs", str(w.runs), "--export", str(t / "ensemble.pt"))


def case_ensemble_out_is_a_folder(w: World, t: Path):
    (t / "sub.csv").mkdir()
    fn, argv = _ensemble(w, t, "--runs", str(w.runs))
    return fn, argv


def case_ensemble_overlay_under_a_file(w: World, t: Path):
    """An overlay that cannot be written (as root, permission bits do not stop writes; a file in the way does)."""
    _written(t / "blocker", "a file\n")
    return _ensemble(w, t, "--runs", str(w.runs), "--overlay", str(t / "blocker" / "overlay"))


def case_ensemble_pictures_under_a_file(w: World, t: Path):
    _written(t / "blocker", "a file\n")
    return _ensemble(w, t, "--runs", str(w.runs), "--pictures", str(t / "blocker" / "pictures"))


def case_ensemble_symlink_inside_overlay(w: World, t: Path):
    elsewhere = t / "elsewhere"
    elsewhere.mkdir()
    (t / "overlay" / "ExperimentRuns").mkdir(parents=True)
    (t / "overlay" / "ExperimentRuns" / "TS_sim_test_0").symlink_to(elsewhere, target_is_directory=True)
    return _ensemble(w, t, "--runs", str(w.runs), "--overlay", str(t / "overlay"))


def case_simulate_out_is_a_file(w: World, t: Path):
    return simulate.main, ["--out", str(_written(t / "sim", "a file\n")), "--size", "48,96,96"]


def case_baseline_missing_data(w: World, t: Path):
    from benchmarks import classical_baseline
    return classical_baseline.main, ["--data", str(t / "nowhere")]


def case_baseline_submission_under_a_file(w: World, t: Path):
    from benchmarks import classical_baseline
    _written(t / "blocker", "a file\n")
    return classical_baseline.main, ["--data", str(w.data), "--submission", str(t / "blocker" / "b.csv")]


def case_copick_config_not_a_dataset(w: World, t: Path):
    from dataio import copick_config
    return copick_config.main, [str(t / "nowhere")]


def case_copick_config_target_is_a_folder(w: World, t: Path):
    from dataio import copick_config
    data = _damaged_copy(w, t)
    (data / "copick_config.json").unlink()
    (data / "copick_config.json").mkdir()
    return copick_config.main, [str(data)]


def case_portal_out_exists(w: World, t: Path):
    from dataio import portal
    return portal.main, ["--dataset", "10440", "--overlay", str(t / "o"), "--out", str(_written(t / "p.json", "{}"))]


def case_metric_unreadable_submission(w: World, t: Path):
    (t / "sub.csv").mkdir()
    return metric.main, [str(t / "sub.csv"), "--gt", str(w.data / "test_truth")]


CASES: list[tuple[Callable, str]] = [
    (case_unknown_flag, "unrecognized arguments: --optim.lrr"),
    (case_unknown_config_key, "unknown config key"),
    (case_malformed_config_yaml, "bad.yaml"),
    (case_wrong_value_type, "optim.lr"),
    (case_no_fold, "--fold is required"),
    (case_unknown_fold, "unknown fold 7"),
    (case_missing_data_root, "nowhere"),
    (case_patch_larger_than_tomogram, "is larger than tomogram"),
    (case_unknown_model, "unknown model name 'unet-resnet9000'"),
    (case_missing_encoder_weights, "encoder weights file /no/such/encoder.pth"),
    (case_epochs_not_multiple_of_validation, "must be a multiple of trainer.check_val_every_n_epoch"),
    (case_folds_file_names_unknown_run, "TS_NOPE"),
    (case_run_folder_exists, "already exists; pass --resume to continue it"),
    (case_resume_without_checkpoint, "no checkpoint to resume from"),
    (case_resume_truncated_checkpoint, "cannot be read"),
    (case_resume_inference_only_checkpoint, "holds inference weights only"),
    (case_init_from_missing, "--init-from checkpoint"),
    (case_init_from_not_a_checkpoint, "truncated, corrupt or not a PyTorch checkpoint"),
    (case_init_from_plain_state_dict, "it holds no model weights"),
    (case_init_from_another_model, "is of another model than"),
    (case_truncated_zarr_chunk, "cannot read the tomogram"),
    (case_missing_zarr_chunk, "chunks are missing"),
    (case_malformed_picks_json, "malformed or truncated JSON"),
    (case_picks_outside_the_volume, "picks lie outside the volume"),
    (case_ensemble_empty_runs_folder, "no trained runs"),
    (case_ensemble_truncated_checkpoint, "--checkpoints checkpoint"),
    (case_ensemble_soup_of_different_models, "--soup averages weights, so every checkpoint must be the same network"),
    (case_ensemble_curation_user_id, "is the curated truth's user id"),
    (case_ensemble_binned_mrc, "Å/voxel but the models were trained at"),
    (case_ensemble_over_foreign_picks, "was not written by"),
    (case_metric_submission_missing_columns, "missing columns"),
    (case_metric_missing_ground_truth, "ground truth not found"),
    (case_metric_unknown_experiment, "not in the ground truth"),
    (case_simulate_unknown_difficulty, "difficulty 'medium': expected one of easy, realistic, hard"),
    (case_simulate_into_a_full_folder, "is not empty; pass --overwrite"),
    (case_simulate_missing_templates, "no_maps"),
    (case_init_from_code_execution, "asks to import posix.system when unpickled"),
    (case_resume_code_execution, "asks to import posix.system when unpickled"),
    (case_ensemble_checkpoints_code_execution, "asks to import posix.system when unpickled"),
    (case_ensemble_runs_code_execution, "asks to import posix.system when unpickled"),
    (case_encoder_weights_code_execution, "encoder weights file"),
    (case_experiment_outside_out, "experiment '../x' cannot name a file or folder"),
    (case_config_experiment_outside_out_with_overwrite, "experiment '../victim' cannot name a file or folder"),
    (case_overwrite_a_folder_train_did_not_create, "has no run.json marking it as a run folder train.py created"),
    (case_zero_patch_size, "config key 'data.patch_size' must be > 0 on every axis"),
    (case_negative_learning_rate, "config key 'optim.lr' must be > 0"),
    (case_zero_epochs, "config key 'trainer.max_epochs' must be >= 1"),
    (case_infinite_number, "config key 'optim.lr' must be a finite number"),
    (case_empty_fold, "--fold '': expected a fold number K"),
    (case_all_joined_with_a_fold, "-1 (train on every run) cannot be joined with other folds"),
    (case_copick_root_without_runs, "ExperimentRuns does not exist (the copick layout is"),
    (case_misnamed_voxel_spacing_folder, "it has VoxelSpacing10.012 instead of VoxelSpacing10.000"),
    (case_copied_dataset_config, "lies outside the dataset folder it sits in"),
    (case_copick_nan_coordinates, "has a missing or non-finite value"),
    (case_ensemble_same_checkpoint_twice, "(the same weights): each model would be averaged in twice"),
    (case_ensemble_copy_of_a_checkpoint, "(the same weights): each model would be averaged in twice"),
    (case_ensemble_negative_threshold, "threshold of ribosome must be a number in [0, 1]"),
    (case_ensemble_unfinished_run, "that did not finish"),
    (case_train_gpu_without_gpu, "trainer settings (accelerator 'gpu'"),
    (case_ensemble_cuda_without_gpu, "--device cuda: no such CUDA GPU is visible here"),
    (case_ensemble_export_of_unknown_format, "the file name must end in .onnx or .pt2"),
    (case_ensemble_out_is_a_folder, "is a folder; give a file path"),
    (case_ensemble_overlay_under_a_file, "blocker is a file, not a folder"),
    (case_ensemble_pictures_under_a_file, "--pictures"),
    (case_ensemble_symlink_inside_overlay, "is a symbolic link inside the overlay"),
    (case_simulate_out_is_a_file, "is a file, not a folder"),
    (case_baseline_missing_data, "data path not found"),
    (case_baseline_submission_under_a_file, "--submission"),
    (case_copick_config_not_a_dataset, "not a dataset root"),
    (case_copick_config_target_is_a_folder, "a folder is in the way of a file"),
    (case_portal_out_exists, "exists; not replacing it"),
    (case_metric_unreadable_submission, "sub.csv"),
]


def _run_cli(fn: Callable, argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = fn(argv)
        except SystemExit as stop:  # argparse, or sys.exit("message")
            code = stop.code if isinstance(stop.code, int) else 2
            if isinstance(stop.code, str):
                err.write(stop.code)
    return int(code or 0), out.getvalue() + err.getvalue()


@pytest.mark.parametrize("make, message", CASES, ids=[c.__name__[len("case_"):] for c, _ in CASES])
def test_bad_input_is_one_clear_error(world, tmp_path, make, message) -> None:
    fn, argv = make(world, tmp_path)
    code, text = _run_cli(fn, argv)
    assert code == 2, text[-2000:]
    assert message in text, text[-2000:]
    assert "Traceback" not in text
    assert not (tmp_path / "PWNED").exists(), "a checkpoint ran code when it was opened"
    if make.__name__.startswith("case_ensemble"):  # refused before any prediction: no submission half made
        assert not (tmp_path / "sub.csv").is_file() and "predicting" not in text
    if "victim" in make.__name__:  # nothing outside --out was touched
        assert (tmp_path / "victim" / "thesis.tex").read_text() == "years of work\n"
    if "overwrite_a_folder" in make.__name__:
        assert (tmp_path / "runs" / world.run_dir.name / "notes.txt").is_file()
    if fn is train.main and "--resume" not in argv and "--overwrite" not in argv:  # a failed start leaves nothing
        assert not list((tmp_path / "runs").glob("*/config.yaml"))


def test_the_error_table_lists_every_case() -> None:
    """ERRORS.md (linked from the README) holds every case with the message the user gets."""
    assert "(ERRORS.md)" in (REPO / "README.md").read_text()
    doc = (REPO / "ERRORS.md").read_text()
    table = doc[doc.index("| Bad input or fault"):]
    rows = [line for line in table.splitlines() if line.startswith("|")]
    missing = [message for _, message in CASES if not any(message in row for row in rows)]
    assert not missing, f"ERRORS.md's table lacks {missing}"
    assert len(rows) - 2 >= 25
