"""Files crafted by a stranger (a tomogram whose codec runs code, a copied or climbing run folder, bombs, absurd
spacings): each tool refuses them with one clear error and runs nothing (harness: tests/bad_input_harness.py)."""
from __future__ import annotations

import base64
import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from dataio.layout import tomogram_path
from tests.bad_input_harness import (World, check_one_clear_error, damaged_copy, ensemble_cli, pick_file_of, train_cli,
                                     written)
from particles import CZII_PARTICLES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Payload:
    """Unpickled, it runs a shell command that creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def pickle_codec_tomogram(zarr_dir: Path, marker: Path, role: str = "compressor") -> None:
    """Level 0 of a tomogram rewritten so that zarr would ``pickle.loads`` its chunks: the codec ``pickle`` as
    its compressor (every chunk the payload), or as a filter of an object dtype whose fill value is the payload
    (decoded while the metadata is parsed, before any chunk)."""
    meta_path = zarr_dir / "0" / ".zarray"
    meta = json.loads(meta_path.read_text())
    payload = pickle.dumps(Payload(marker))
    if role == "compressor":
        meta["compressor"] = {"id": "pickle"}
        for chunk in (p for p in (zarr_dir / "0").rglob("*") if p.is_file() and not p.name.startswith(".")):
            chunk.write_bytes(payload)
    else:
        meta.update(dtype=[["a", "|O"]], filters=[{"id": "pickle"}],
                    fill_value=base64.standard_b64encode(payload).decode())
    meta_path.write_text(json.dumps(meta))


def case_train_pickle_codec_tomogram(w: World, t: Path):
    data = damaged_copy(w, t)
    pickle_codec_tomogram(tomogram_path(data, "train", "TS_6_4"), t / "PWNED")
    return train_cli(w, t, data=data)


def case_train_pickle_fill_value_tomogram(w: World, t: Path):
    data = damaged_copy(w, t)
    pickle_codec_tomogram(tomogram_path(data, "train", "TS_6_4"), t / "PWNED", role="filter")
    return train_cli(w, t, data=data)


def case_ensemble_pickle_codec_tomogram(w: World, t: Path):
    data = damaged_copy(w, t)
    pickle_codec_tomogram(tomogram_path(data, "test", "TS_sim_test_0"), t / "PWNED")
    return ensemble_cli(w, t, "--runs", str(w.runs), "--data", str(data))


def case_ensemble_pickle_codec_zarr_file(w: World, t: Path):
    """The same tomogram given as a zarr file (``--data x.zarr``), read by the file source."""
    data = damaged_copy(w, t)
    zarr_dir = tomogram_path(data, "test", "TS_sim_test_0")
    pickle_codec_tomogram(zarr_dir, t / "PWNED", role="filter")
    return ensemble_cli(w, t, "--runs", str(w.runs), "--data", str(zarr_dir))


def case_baseline_pickle_codec_tomogram(w: World, t: Path):
    from benchmarks import classical_baseline
    data = damaged_copy(w, t)
    pickle_codec_tomogram(tomogram_path(data, "test", "TS_sim_test_0"), t / "PWNED")
    return classical_baseline.main, ["--data", str(data), "--submission", str(t / "b.csv")]


def case_train_copick_pickle_codec_tomogram(w: World, t: Path):
    """Through the copick library's own store (a copick config as --data)."""
    from dataio.copick_config import write_copick_configs
    data = damaged_copy(w, t)
    write_copick_configs(data, particles=CZII_PARTICLES)
    pickle_codec_tomogram(tomogram_path(data, "train", "TS_6_4"), t / "PWNED")
    return train_cli(w, t, "--data", str(data / "copick_config.json"))


def copied_runs(w: World, t: Path) -> Path:
    """A private copy of the world's runs folder (its one finished run)."""
    shutil.copytree(w.runs, t / "runs")
    return t / "runs" / w.run_dir.name


def edit_run_config(run_dir: Path, section: str | None, key: str, value: object) -> None:
    import yaml
    doc = yaml.safe_load((run_dir / "config.yaml").read_text())
    (doc[section] if section else doc)[key] = value
    (run_dir / "config.yaml").write_text(yaml.safe_dump(doc))


def case_ensemble_copied_run_folder(w: World, t: Path):
    run_dir = copied_runs(w, t)
    shutil.copytree(run_dir, run_dir.with_name(run_dir.name + ".bak"))
    return ensemble_cli(w, t, "--runs", str(t / "runs"))


def case_ensemble_renamed_copy_with_other_weights(w: World, t: Path):
    """A copy under another name whose weights were touched: refused by recipe and fold, not by bytes."""
    run_dir = copied_runs(w, t)
    copy = run_dir.with_name("backup")
    shutil.copytree(run_dir, copy)
    with open(copy / "checkpoints" / "weights.ckpt", "ab") as handle:
        handle.write(b"\0")
    return ensemble_cli(w, t, "--runs", str(t / "runs"))


def case_ensemble_climbing_fold(w: World, t: Path):
    edit_run_config(copied_runs(w, t), "data", "fold", "0/../../../x")
    return ensemble_cli(w, t, "--runs", str(t / "runs"))


def case_ensemble_absolute_experiment(w: World, t: Path):
    edit_run_config(copied_runs(w, t), None, "experiment", str(t / "victim" / "x"))
    return ensemble_cli(w, t, "--runs", str(t / "runs"), "--session-id", "mine")


def case_ensemble_split_spacing_zero(w: World, t: Path):
    split = copied_runs(w, t) / "split.yaml"
    split.write_text(split.read_text().replace("voxel_spacing: 10.012", "voxel_spacing: 0"))
    return ensemble_cli(w, t, "--runs", str(t / "runs"))


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))
"""The "billion laughs": 9**10 strings from a few hundred bytes."""


def case_train_alias_bomb_config(w: World, t: Path):
    return train_cli(w, t, "--config", str(written(t / "bomb.yaml", ALIAS_BOMB)))


def case_ensemble_alias_bomb_run_config(w: World, t: Path):
    run_dir = copied_runs(w, t)
    (run_dir / "config.yaml").write_text((run_dir / "config.yaml").read_text() + ALIAS_BOMB.replace("a:", "zz:", 1))
    return ensemble_cli(w, t, "--runs", str(t / "runs"))


def case_train_deeply_nested_pick_file(w: World, t: Path):
    data = damaged_copy(w, t)
    pick_file_of(data).write_text("[" * 100_000 + "]" * 100_000)
    return train_cli(w, t, data=data)


def case_train_pick_file_is_a_fifo(w: World, t: Path):
    data = damaged_copy(w, t)
    path = pick_file_of(data)
    path.unlink()
    os.mkfifo(path)
    return train_cli(w, t, data=data)


def case_train_pick_file_links_to_dev_zero(w: World, t: Path):
    data = damaged_copy(w, t)
    path = pick_file_of(data)
    path.unlink()
    path.symlink_to("/dev/zero")
    return train_cli(w, t, data=data)


def case_train_copick_pick_file_is_a_fifo(w: World, t: Path):
    from dataio.copick_config import write_copick_configs
    data = damaged_copy(w, t)
    write_copick_configs(data, particles=CZII_PARTICLES)
    path = pick_file_of(data)
    path.unlink()
    os.mkfifo(path)
    return train_cli(w, t, "--data", str(data / "copick_config.json"))


def case_train_copick_deeply_nested_pick_file(w: World, t: Path):
    from dataio.copick_config import write_copick_configs
    data = damaged_copy(w, t)
    write_copick_configs(data, particles=CZII_PARTICLES)
    pick_file_of(data).write_text("[" * 100_000 + "]" * 100_000)
    return train_cli(w, t, "--data", str(data / "copick_config.json"))


def case_train_empty_multiscales(w: World, t: Path):
    data = damaged_copy(w, t)
    (tomogram_path(data, "train", "TS_6_4") / ".zattrs").write_text(json.dumps({"multiscales": [{}]}))
    return train_cli(w, t, data=data)


def _copick_config_with(data: Path, change: Callable[[dict], None]) -> Path:
    from dataio.copick_config import write_copick_configs
    write_copick_configs(data, particles=CZII_PARTICLES)
    config = data / "copick_config.json"
    doc = json.loads(config.read_text())
    change(doc)
    config.write_text(json.dumps(doc))
    return config


def case_train_copick_object_not_a_mapping(w: World, t: Path):
    data = damaged_copy(w, t)
    _copick_config_with(data, lambda doc: doc["pickable_objects"].append(1))
    return train_cli(w, t, "--particles", "copick", data=data)


def case_train_copick_metadata_a_list(w: World, t: Path):
    data = damaged_copy(w, t)
    _copick_config_with(data, lambda doc: doc["pickable_objects"][0].update(metadata=[]))
    return train_cli(w, t, "--particles", "copick", data=data)


def _copick_spacing_folder(w: World, t: Path, name: str):
    from dataio.copick_config import write_copick_configs
    data = damaged_copy(w, t)
    write_copick_configs(data, particles=CZII_PARTICLES)
    for run in (data / "train" / "static" / "ExperimentRuns").iterdir():
        (run / "VoxelSpacing10.000").rename(run / name)
    return train_cli(w, t, "--data", str(data / "copick_config.json"))


def case_train_copick_spacing_folder_zero(w: World, t: Path):
    return _copick_spacing_folder(w, t, "VoxelSpacing0.000")


def case_train_copick_spacing_folder_nan(w: World, t: Path):
    return _copick_spacing_folder(w, t, "VoxelSpacingnan")


def case_ensemble_mrc_nan_spacing(w: World, t: Path):
    import mrcfile
    import numpy as np
    path = t / "nan.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.random.default_rng(0).normal(size=(48, 96, 96)).astype(np.float32))
        mrc.voxel_size = 10.0
        mrc.header.cella.x = float("nan")
    return ensemble_cli(w, t, "--runs", str(w.runs), "--data", str(path))


def case_ensemble_negative_ome_spacing(w: World, t: Path):
    data = damaged_copy(w, t)
    zarr_dir = tomogram_path(data, "test", "TS_sim_test_0")
    attrs = json.loads((zarr_dir / ".zattrs").read_text())
    for dataset in attrs["multiscales"][0]["datasets"]:
        dataset["coordinateTransformations"][0]["scale"] = [-10.0, -10.0, -10.0]
    (zarr_dir / ".zattrs").write_text(json.dumps(attrs))
    return ensemble_cli(w, t, "--runs", str(w.runs), "--data", str(zarr_dir))


def case_ensemble_over_a_colleagues_picks(w: World, t: Path):
    """The same recipe's picks (same copick user and session) that a colleague's ensemble wrote into the
    shared overlay."""
    overlay = t / "overlay"
    session = w.run_dir.name.rsplit("_fold", 1)[0].replace("_", "-")
    target = overlay / "ExperimentRuns" / "TS_sim_test_0" / "Picks" / f"czii-picker_{session}_apo-ferritin.json"
    written(target, json.dumps({"pickable_object_name": "apo-ferritin", "user_id": "czii-picker",
                                 "session_id": session, "run_name": "TS_sim_test_0", "points": [],
                                 "written_by": "czii-picker", "written_for": "colleague@lab-node-3"}))
    return ensemble_cli(w, t, "--runs", str(w.runs), "--data", str(w.data), "--overlay", str(overlay))


CASES: list[tuple[Callable, str]] = [
    (case_train_pickle_codec_tomogram, "its compressor is codec 'pickle', which is not a data codec"),
    (case_train_pickle_fill_value_tomogram, "its filter is codec 'pickle', which is not a data codec"),
    (case_ensemble_pickle_codec_tomogram, "its compressor is codec 'pickle', which is not a data codec"),
    (case_ensemble_pickle_codec_zarr_file, "its filter is codec 'pickle', which is not a data codec"),
    (case_baseline_pickle_codec_tomogram, "its compressor is codec 'pickle', which is not a data codec"),
    (case_train_copick_pickle_codec_tomogram, "its compressor is codec 'pickle', which is not a data codec"),
    (case_ensemble_copied_run_folder, "both hold fold 0 of experiment"),
    (case_ensemble_renamed_copy_with_other_weights, "both hold fold 0 of experiment"),
    (case_ensemble_climbing_fold, "--fold '0/../../../x': expected a fold number"),
    (case_ensemble_absolute_experiment, "cannot name a file or folder"),
    (case_ensemble_split_spacing_zero, "voxel spacing 0 must be a positive finite number"),
    (case_train_alias_bomb_config, "alias *a is not allowed here"),
    (case_ensemble_alias_bomb_run_config, "is not allowed here"),
    (case_train_deeply_nested_pick_file, "nested deeper than 64 levels"),
    (case_train_pick_file_is_a_fifo, "is not a regular file"),
    (case_train_pick_file_links_to_dev_zero, "is not a regular file"),
    (case_train_copick_pick_file_is_a_fifo, "is not a regular file"),
    (case_train_copick_deeply_nested_pick_file, "nested too deeply to be a pick file"),
    (case_train_empty_multiscales, ".zattrs 'multiscales' is malformed"),
    (case_train_copick_object_not_a_mapping, "a pickable object without a name: 1"),
    (case_train_copick_metadata_a_list, "has metadata [], not a mapping"),
    (case_train_copick_spacing_folder_zero, "voxel spacing 0.0 must be a positive finite number"),
    (case_train_copick_spacing_folder_nan, "voxel spacing nan must be a positive finite number"),
    (case_ensemble_mrc_nan_spacing, "must be a positive finite number"),
    (case_ensemble_negative_ome_spacing, "voxel spacing -10.0 must be a positive finite number"),
    (case_ensemble_over_a_colleagues_picks, "was written by czii-picker for colleague@lab-node-3"),
]


@pytest.mark.parametrize("make, message", CASES, ids=[c.__name__[len("case_"):] for c, _ in CASES])
def test_bad_input_is_one_clear_error(world, tmp_path, make, message) -> None:
    check_one_clear_error(world, tmp_path, make, message)


@pytest.mark.slow
def test_the_ensemble_does_not_need_the_encoder_weights_file_training_started_from(world, tmp_path) -> None:
    """The checkpoint holds every weight: the encoder file named in the run's config may be gone since."""
    import torch

    from config.experiment import ModelConfig
    from models.registry import build_model
    from tests.bad_input_harness import run_cli

    small = ["--model.decoder_channels", "16", "8", "8", "8", "8", "--data.batch_size", "2"]
    encoder = tmp_path / "encoder.pth"
    torch.save(build_model(ModelConfig(name="unet-resnet18", decoder_channels=(16, 8, 8, 8, 8))).encoder.state_dict(),
               encoder)
    fn, argv = train_cli(world, tmp_path, "--model.name", "unet-resnet18", "--model.encoder_weights", str(encoder),
                         *small)
    code, text = run_cli(fn, argv)
    assert code == 0, text[-2000:]
    encoder.unlink()
    fn, argv = ensemble_cli(world, tmp_path, "--runs", str(tmp_path / "runs"))
    code, text = run_cli(fn, argv)
    assert code == 0, text[-2000:]
    assert (tmp_path / "sub.csv").is_file()
