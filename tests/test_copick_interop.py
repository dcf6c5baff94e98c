"""Against the real copick library: it opens what the project writes, and the project reads what it writes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

import train
from dataio.copick_source import CopickSource
from dataio.layout import COPICK_CONFIG_NAME, TEST_COPICK_CONFIG_NAME
from dataio.pick_readers import PickSelection
from dataio.sources import CopickProjectSource, open_source
from particles import CZII_PARTICLES, PARTICLES, PARTICLE_NAMES
from postprocess.metric import load_ground_truth
from tests.training_fixtures import cli_args, tiny_overrides

copick = pytest.importorskip("copick")


def counts(table: pd.DataFrame) -> dict[tuple[str, str], int]:
    return {k: int(v) for k, v in table.groupby(["experiment", "particle_type"]).size().items()}


def test_copick_opens_the_simulated_project_and_reads_the_same_picks_and_voxels(tiny_dataset: Path) -> None:
    ours = CopickSource(tiny_dataset, particles=CZII_PARTICLES)
    project = copick.from_file(str(tiny_dataset / COPICK_CONFIG_NAME))
    assert sorted(r.name for r in project.runs) == ours.run_names()
    run = project.get_run("TS_6_4")
    theirs = {p.pickable_object_name: len(p.points) for p in run.picks}
    mine = ours.picks("TS_6_4")["particle_type"].value_counts()
    assert theirs == {n: int(mine.get(n, 0)) for n in PARTICLE_NAMES}
    tomogram = run.get_voxel_spacing(10.0).get_tomograms("denoised")[0]
    through_copick = np.asarray(zarr.open(tomogram.zarr(), mode="r")["0"][:])
    np.testing.assert_array_equal(through_copick, ours.load_tomogram("TS_6_4"))  # "/" chunk keys: not zeros
    test_project = copick.from_file(str(tiny_dataset / TEST_COPICK_CONFIG_NAME))
    assert sorted(r.name for r in test_project.runs) == ["TS_sim_test_0", "TS_sim_test_1"]
    assert sum(len(p.points) for p in test_project.get_run("TS_sim_test_0").picks) == len(
        CopickSource(tiny_dataset, split="test", particles=CZII_PARTICLES).picks("TS_sim_test_0"))


def test_the_copick_adapter_reads_what_the_layout_reader_reads(tiny_dataset: Path) -> None:
    via_copick = open_source(tiny_dataset / COPICK_CONFIG_NAME, particles=CZII_PARTICLES)
    assert isinstance(via_copick, CopickProjectSource) and via_copick.has_picks
    direct = CopickSource(tiny_dataset, particles=CZII_PARTICLES)
    assert via_copick.run_names() == direct.run_names()
    np.testing.assert_array_equal(via_copick.load_tomogram("TS_5_4"), direct.load_tomogram("TS_5_4"))
    assert counts(via_copick.picks("TS_5_4")) == counts(direct.picks("TS_5_4"))


def test_picks_copick_writes_as_another_user_are_ignored_unless_selected(tiny_dataset: Path, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    from dataio.copick_config import write_copick_configs
    write_copick_configs(data, particles=CZII_PARTICLES)
    truth = CopickSource(data, split="test", particles=CZII_PARTICLES).picks("TS_sim_test_0")
    project = copick.from_file(str(data / TEST_COPICK_CONFIG_NAME))
    for name, n in (("TS_sim_test_0", 2), ("TS_sim_test_1", 1)):
        picks = project.get_run(name).new_picks(object_name="ribosome", session_id="7", user_id="annotator")
        picks.from_numpy(np.full((n, 3), 150.0))
        picks.store()
    pd.testing.assert_frame_equal(CopickSource(data, split="test", particles=CZII_PARTICLES).picks("TS_sim_test_0"),
                                  truth)
    gt = load_ground_truth(data / "test_truth", particles=CZII_PARTICLES)
    assert int((gt["experiment"] == "TS_sim_test_0").sum()) == len(truth)
    annotator = load_ground_truth(data / "test_truth", PickSelection("annotator"), particles=CZII_PARTICLES)
    assert annotator["experiment"].tolist() == ["TS_sim_test_0"] * 2 + ["TS_sim_test_1"]


def _copick_native_project(root: Path, runs: list[str], shape=(32, 64, 64), user: str = "curation") -> Path:
    """A project written by copick's own API (its config, its folders, its zarr store, its pick files)."""
    config = {"name": "native", "version": "1.0.0", "config_type": "filesystem",
              "pickable_objects": [{"name": p.name, "is_particle": True, "label": p.label, "radius": p.radius}
                                   for p in PARTICLES],
              "overlay_root": f"local://{root / 'overlay'}", "overlay_fs_args": {"auto_mkdir": True},
              "static_root": f"local://{root / 'static'}", "static_fs_args": {"auto_mkdir": True}}
    (root / "static").mkdir(parents=True)
    path = root / "native.json"
    path.write_text(json.dumps(config))
    project = copick.from_file(str(path))
    rng = np.random.default_rng(0)
    for name in runs:
        run = project.new_run(name)
        volume = rng.normal(size=shape).astype(np.float32)
        spacing = run.new_voxel_spacing(voxel_size=10.0)
        tomogram = spacing.new_tomogram(tomo_type="denoised")
        zarr.open_group(tomogram.zarr(), mode="w").create_dataset("0", data=volume, chunks=(16, 32, 32),
                                                                   dimension_separator="/")
        centres = rng.uniform(100, 300, size=(3, 3))
        for particle_name in ("ribosome", "apo-ferritin"):
            picks = run.new_picks(object_name=particle_name, session_id="0", user_id=user)
            picks.from_numpy(centres)
            picks.store()
    return path


def test_a_copick_native_project_trains_one_tiny_epoch(tmp_path: Path) -> None:
    config = _copick_native_project(tmp_path / "native", ["run-a", "run-b", "run-c"])
    folds = tmp_path / "folds.yaml"
    folds.write_text("folds:\n  0: [run-a]\n  1: [run-b]\n  2: [run-c]\n")
    source = open_source(config, particles=CZII_PARTICLES)
    assert source.voxel_spacing == 10.0 and len(source.picks("run-b")) == 6
    with pytest.raises(ValueError, match=r"no voxel spacing 20.0 Å; present: \[10.0\]"):
        open_source(config, voxel_spacing=20.0, particles=CZII_PARTICLES)
    overrides = tiny_overrides(config, folds_file=folds, steps=2, inference={"window": [32, 64, 64]})
    assert train.main(["--out", str(tmp_path / "runs"), *cli_args(overrides)]) == 0
    assert list((tmp_path / "runs").glob("*/checkpoints/last.ckpt"))


def test_a_project_holding_only_a_models_picks_is_unlabelled_not_an_error(tmp_path: Path) -> None:
    config = _copick_native_project(tmp_path / "unlabelled", ["run-a"], user="czii-picker")
    assert open_source(config,
                       particles=CZII_PARTICLES).has_picks is False  # e.g. a second ensemble.py run on its own output
    assert open_source(config, selection=PickSelection("czii-picker"), particles=CZII_PARTICLES).has_picks
