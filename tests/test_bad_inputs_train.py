"""train.py's bad inputs: flags, config values, folds, resume and --init-from, the data it reads, run folders; each
one clear error (harness: tests/bad_input_harness.py)."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import train
from dataio.layout import tomogram_path
from tests.bad_input_harness import (RUN, World, check_one_clear_error, damaged_copy, first_chunk, last_checkpoint,
                                     pick_file_of, resumable_copy, train_cli, written, yaml_folds)
from particles import CZII_PARTICLES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def case_unknown_flag(w: World, t: Path):
    return train_cli(w, t, "--optim.lrr", "1e-3")


def case_unknown_config_key(w: World, t: Path):
    return train_cli(w, t, "--config", str(written(t / "bad.yaml", "optim:\n  lrr: 0.001\n")))


def case_malformed_config_yaml(w: World, t: Path):
    return train_cli(w, t, "--config", str(written(t / "bad.yaml", "optim: [unclosed\n")))


def case_wrong_value_type(w: World, t: Path):
    return train_cli(w, t, "--optim.lr", "fast")


def case_no_fold(w: World, t: Path):
    fn, argv = train_cli(w, t)
    i = argv.index("--fold")
    return fn, argv[:i] + argv[i + 2:]


def case_unknown_fold(w: World, t: Path):
    return train_cli(w, t, "--fold", "7")


def case_missing_data_root(w: World, t: Path):
    return train_cli(w, t, "--data", str(t / "nowhere"))


def case_patch_larger_than_tomogram(w: World, t: Path):
    return train_cli(w, t, "--data.patch_size", "64", "64", "64")


def case_unknown_model(w: World, t: Path):
    return train_cli(w, t, "--model.name", "unet-resnet9000")


def case_detector_with_a_3d_patch(w: World, t: Path):
    return train_cli(w, t, "--model.name", "fcos-slices")  # the tiny recipe asks for 32^3 patches


def case_missing_encoder_weights(w: World, t: Path):
    return train_cli(w, t, "--model.name", "unet-resnet18", "--model.encoder_weights", "/no/such/encoder.pth")


def case_epochs_not_multiple_of_validation(w: World, t: Path):
    return train_cli(w, t, "--trainer.max_epochs", "5", "--trainer.check_val_every_n_epoch", "2")


def case_folds_file_names_unknown_run(w: World, t: Path):
    folds = written(t / "folds.yaml", yaml_folds({0: [RUN], 1: ["TS_NOPE"]}))
    return train_cli(w, t, "--data.folds_file", str(folds))


def case_run_folder_exists(w: World, t: Path):
    return train.main, w.argv


def case_resume_without_checkpoint(w: World, t: Path):
    return train_cli(w, t, "--resume")


def case_resume_truncated_checkpoint(w: World, t: Path):
    last = resumable_copy(w, t)
    last.write_bytes(last.read_bytes()[:4096])
    return train_cli(w, t, "--resume")


def case_resume_inference_only_checkpoint(w: World, t: Path):
    last = resumable_copy(w, t)
    state = torch.load(last, map_location="cpu", weights_only=False)
    torch.save({k: state[k] for k in ("state_dict", "hyper_parameters")}, last)
    return train_cli(w, t, "--resume")


def case_init_from_missing(w: World, t: Path):
    return train_cli(w, t, "--init-from", str(t / "missing.ckpt"))


def case_init_from_not_a_checkpoint(w: World, t: Path):
    return train_cli(w, t, "--init-from", str(written(t / "notes.ckpt", "just some text\n")))


def case_init_from_plain_state_dict(w: World, t: Path):
    path = t / "weights.pth"
    torch.save({"conv.weight": torch.ones(2)}, path)
    return train_cli(w, t, "--init-from", str(path))


def case_init_from_another_model(w: World, t: Path):
    return train_cli(w, t, "--init-from", str(last_checkpoint(w)), "--model.widths", "4", "8", "16")


def case_truncated_zarr_chunk(w: World, t: Path):
    data = damaged_copy(w, t)
    chunk = first_chunk(data)
    chunk.write_bytes(chunk.read_bytes()[:20])
    return train_cli(w, t, data=data)


def case_missing_zarr_chunk(w: World, t: Path):
    data = damaged_copy(w, t)
    first_chunk(data).unlink()
    return train_cli(w, t, data=data)


def case_malformed_picks_json(w: World, t: Path):
    data = damaged_copy(w, t)
    path = pick_file_of(data)
    path.write_text(path.read_text()[:50])
    return train_cli(w, t, data=data)


def case_picks_outside_the_volume(w: World, t: Path):
    data = damaged_copy(w, t)
    path = pick_file_of(data)
    doc = json.loads(path.read_text())
    doc["points"][0]["location"]["x"] = 1e6
    path.write_text(json.dumps(doc))
    return train_cli(w, t, data=data)


def case_experiment_outside_out(w: World, t: Path):
    return train_cli(w, t, "--experiment", "../x")


def case_config_experiment_outside_out_with_overwrite(w: World, t: Path):
    (t / "victim").mkdir()
    written(t / "victim" / "thesis.tex", "years of work\n")
    return train_cli(w, t, "--config", str(written(t / "c.yaml", "experiment: ../victim\n")), "--overwrite")


def case_overwrite_a_folder_train_did_not_create(w: World, t: Path):
    fn, argv = train_cli(w, t)
    written(t / "runs" / w.run_dir.name / "notes.txt", "mine\n")
    return fn, [*argv, "--overwrite"]


def case_zero_patch_size(w: World, t: Path):
    return train_cli(w, t, "--data.patch_size", "0", "32", "32")


def case_negative_learning_rate(w: World, t: Path):
    return train_cli(w, t, "--optim.lr", "-1e-3")


def case_zero_epochs(w: World, t: Path):
    return train_cli(w, t, "--trainer.max_epochs", "0")


def case_infinite_number(w: World, t: Path):
    return train_cli(w, t, "--optim.lr", "1e400")


def case_empty_fold(w: World, t: Path):
    return train_cli(w, t, "--fold", "")


def case_all_joined_with_a_fold(w: World, t: Path):
    return train_cli(w, t, "--fold", "-1+2")


def case_copick_root_without_runs(w: World, t: Path):
    (t / "root" / "train" / "static").mkdir(parents=True)
    return train_cli(w, t, "--data", str(t / "root"))


def case_misnamed_voxel_spacing_folder(w: World, t: Path):
    data = damaged_copy(w, t)
    spacing = tomogram_path(data, "train", RUN).parent
    spacing.rename(spacing.with_name("VoxelSpacing10.012"))
    return train_cli(w, t, data=data)


def case_copied_dataset_config(w: World, t: Path):
    data = damaged_copy(w, t)
    return train_cli(w, t, "--data", str(data / "copick_config.json"))


def case_copick_nan_coordinates(w: World, t: Path):
    """A NaN in a pick file read through the copick library (JSON allows NaN)."""
    data = damaged_copy(w, t)
    from dataio.copick_config import write_copick_configs
    write_copick_configs(data, particles=CZII_PARTICLES)
    path = pick_file_of(data)
    doc = json.loads(path.read_text())
    doc["points"][0]["location"]["x"] = float("nan")
    path.write_text(json.dumps(doc))
    return train_cli(w, t, "--data", str(data / "copick_config.json"))


def case_train_gpu_without_gpu(w: World, t: Path):
    return train_cli(w, t, "--trainer.accelerator", "gpu")


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
    (case_detector_with_a_3d_patch, "fcos-slices sees 5 slices (2 x model.slice_half_depth + 1), so the patch's z must be 5"),
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
    (case_train_gpu_without_gpu, "trainer settings (accelerator 'gpu'"),
]


@pytest.mark.parametrize("make, message", CASES, ids=[c.__name__[len("case_"):] for c, _ in CASES])
def test_bad_input_is_one_clear_error(world, tmp_path, make, message) -> None:
    check_one_clear_error(world, tmp_path, make, message)
