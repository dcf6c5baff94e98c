"""A copick project whose classes are not the CZII six (four proteins under other names, plus a membrane)
trains, ensembles, writes copick picks for every class and is scored, with no code edit."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import ensemble
from dataio.copick_config import write_copick_configs
from particles import Particle, ParticleSet
from postprocess.metric import read_submission

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

RENAMED = {"ribosome": "proteasome", "virus-like-particle": "capsid", "apo-ferritin": "ferritin-cage",
           "thyroglobulin": "tg-dimer", "beta-amylase": "membrane"}
"""The tiny dataset's classes under this project's names; beta-galactosidase's picks are dropped."""
FOUR = ParticleSet((Particle("proteasome", 1, 150.0, 1.0), Particle("capsid", 2, 135.0, 1.0),
                    Particle("ferritin-cage", 3, 60.0, 1.0), Particle("tg-dimer", 4, 130.0, 2.0)))


def tiny_training_flags(root: Path, runs: Path, patches: int) -> list[str]:
    """train.py flags of a tiny unet-tiny run of ``patches`` steps on the data's own copick particle set."""
    return ["--data", str(root), "--out", str(runs), "--particles", "copick", "--model.name", "unet-tiny",
            "--model.widths", "8", "16", "32", "--model.output_stride", "2", "--data.patch_size", "32", "32", "32",
            "--data.batch_size", "1", "--data.num_workers", "0", "--data.patches_per_epoch", str(patches),
            "--inference.window", "48", "96", "96", "--validation.picture", "false", "--trainer.accelerator", "cpu",
            "--trainer.devices", "1", "--trainer.precision", "32", "--trainer.max_epochs", "1",
            "--trainer.check_val_every_n_epoch", "1", "--logging.wandb", "false"]


def renamed_project(tiny_dataset: Path, root: Path, names: dict[str, str], particles: ParticleSet) -> Path:
    """A copy of the tiny dataset whose pick files carry ``names`` (classes left out lose their picks) and whose
    copick configs declare ``particles`` and a membrane (not a particle)."""
    shutil.copytree(tiny_dataset, root)
    for pick in sorted(root.rglob("Picks/*.json")):
        doc = json.loads(pick.read_text())
        old = doc["pickable_object_name"]
        pick.unlink()
        if old in names:
            doc["pickable_object_name"] = names[old]
            (pick.parent / pick.name.replace(old, names[old])).write_text(json.dumps(doc))
    for path in write_copick_configs(root, particles=particles):
        config = json.loads(path.read_text())
        config["pickable_objects"].append({"name": "membrane", "is_particle": False, "label": particles.num_classes + 1})
        path.write_text(json.dumps(config))
    return root


def four_class_project(tiny_dataset: Path, root: Path) -> Path:
    """Four other classes (and the membrane) under this project's names."""
    return renamed_project(tiny_dataset, root, RENAMED, FOUR)


def test_a_four_class_project_trains_ensembles_writes_and_scores(tiny_dataset, tmp_path, capsys) -> None:
    root = four_class_project(tiny_dataset, tmp_path / "four")
    runs = tmp_path / "runs"
    flags = tiny_training_flags(root, runs, patches=3)
    for fold in ("0", "1"):
        with open(tmp_path / f"train{fold}.log", "w") as log:
            done = subprocess.run([sys.executable, "train.py", "--fold", fold, *flags], cwd=REPO, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=600)
        assert done.returncode == 0, (tmp_path / f"train{fold}.log").read_text()[-3000:]
    assert "skipping picks of 'membrane'" in (tmp_path / "train0.log").read_text()
    (run_dir,) = [p for p in runs.iterdir() if p.name.endswith("_fold0")]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["particles"] == FOUR.to_records() and config["model"]["out_channels"] == 4  # weights kept
    assert config["data"]["class_sampling_weights"] == {n: 1.0 for n in FOUR.names}

    out = tmp_path / "submission.csv"
    assert ensemble.main(["--runs", str(runs), "--split", "test", "--out", str(out), "--score",
                          "--pictures", str(tmp_path / "pics"), "--tta", "identity", "--no-wandb"]) == 0
    printed = capsys.readouterr().out
    assert set(read_submission(out, particles=FOUR)["particle_type"]) <= set(FOUR.names)
    for name in FOUR.names:  # the OOF table and the test score each list every class of the project, once
        assert len(re.findall(rf"^\s*{name}\s+\d", printed, re.M)) == 2, printed
    assert "beta-galactosidase" not in printed
    overlay = tmp_path / "submission_copick" / "ExperimentRuns"
    for test_run in ("TS_sim_test_0", "TS_sim_test_1"):
        written = sorted(p.name for p in (overlay / test_run / "Picks").glob("*.json"))
        assert written == sorted(f"czii-picker_{config['experiment'].replace('_', '-')}_{n}.json" for n in FOUR.names)
    thresholds = json.loads(next(runs.glob("*.thresholds.json")).read_text())
    assert set(thresholds["thresholds"]) == set(FOUR.names)
    assert thresholds["fitted_with"]["settings"]["particles"] == list(FOUR.names)
    assert (tmp_path / "pics" / "oof_pr_curves.png").stat().st_size > 0
    assert pd.read_csv(out).shape[1] == 6
    # the metric tool scores it the same way, told the classes by the project's copick config
    metric = subprocess.run([sys.executable, "-m", "postprocess.metric", str(out), "--gt", str(root / "test_truth"),
                             "--particles", str(root / "copick_config.json")], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert metric.returncode == 0, metric.stderr
    assert all(name in metric.stdout for name in FOUR.names) and "beta-galactosidase" not in metric.stdout


def test_a_nine_class_set_is_simulated_from_its_maps_trained_and_scored(tmp_path, capsys) -> None:
    """simulate.py --particles writes a nine-class dataset (two classes from MRC maps, the rest ellipsoids of
    their radii) whose copick configs declare the set; train.py --particles copick and ensemble.py use it."""
    import mrcfile
    import numpy as np

    nine = ParticleSet(tuple(Particle(f"c{i}", i, 50.0 + 10 * i, 2.0 if i in (2, 7) else 1.0) for i in range(1, 10)))
    spec = tmp_path / "nine.yaml"
    spec.write_text(yaml.safe_dump({"particles": nine.to_records()}))
    maps = tmp_path / "maps"
    maps.mkdir()
    grid = np.indices((16, 16, 16)).astype(np.float32) - 7.5
    for name, axes in (("c1", (6.0, 4.0, 3.0)), ("c9", (7.0, 7.0, 7.0))):
        density = (((grid / np.array(axes)[:, None, None, None]) ** 2).sum(0) <= 1).astype(np.float32)
        with mrcfile.new(maps / f"{name}.mrc") as mrc:
            mrc.set_data(density)
            mrc.voxel_size = 10.0
    root = tmp_path / "data"
    done = subprocess.run([sys.executable, "simulate.py", "--out", str(root), "--size", "48,96,96", "--n-test", "2",
                           "--particles", str(spec), "--templates", str(maps)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "c1: template c1" in done.stdout and "c5: ellipsoid of its radius" in done.stdout
    declared = json.loads((root / "copick_config.json").read_text())["pickable_objects"]
    assert [(o["name"], o["radius"]) for o in declared] == [(p.name, p.radius) for p in nine.particles]
    runs = tmp_path / "runs"
    flags = tiny_training_flags(root, runs, patches=2)
    for fold in ("0", "1"):
        trained = subprocess.run([sys.executable, "train.py", "--fold", fold, *flags], cwd=REPO,
                                 capture_output=True, text=True, timeout=600)
        assert trained.returncode == 0, trained.stderr[-3000:]
    (run_dir,) = [p for p in runs.iterdir() if p.name.endswith("_fold0")]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["particles"] == nine.to_records()
    out = tmp_path / "submission.csv"
    assert ensemble.main(["--runs", str(runs), "--split", "test", "--out", str(out), "--score", "--tta", "identity",
                          "--no-wandb"]) == 0
    printed = capsys.readouterr().out
    for p in nine.particles:
        assert len(re.findall(rf"^\s*{p.name}\s+\d", printed, re.M)) == 2, printed
    assert set(read_submission(out, particles=nine)["particle_type"]) <= set(nine.names)
    # the classical baseline every accuracy table shows runs on the same set
    baseline = subprocess.run([sys.executable, "-m", "benchmarks.classical_baseline", "--data", str(root),
                               "--particles", "copick"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert baseline.returncode == 0, baseline.stderr[-2000:]
    table = baseline.stdout.split("test runs (2)")[1]
    assert all(re.search(rf"^\s*{p.name}\s+\d.*{p.weight:.4f}$", table, re.M) for p in nine.particles), table


def new_user_project(tiny_dataset: Path, root: Path) -> Path:
    """The tiny dataset as a new user's copick project: apo-ferritin named ``apoferritin``, the ribosome's picks
    as an unknown ``my-protein``, beta-galactosidase and thyroglobulin absent, and a membrane."""
    names = {"apo-ferritin": "apoferritin", "ribosome": "my-protein", "beta-amylase": "beta-amylase",
             "virus-like-particle": "virus-like-particle"}
    own = ParticleSet((Particle("apoferritin", 1, 55.0), Particle("beta-amylase", 2, 65.0),
                       Particle("my-protein", 3, 150.0, 1.0), Particle("virus-like-particle", 4, 135.0)))
    return renamed_project(tiny_dataset, root, names, own)


def test_train_py_takes_the_copick_projects_own_classes_with_no_flag(tiny_dataset, tmp_path) -> None:
    """``train.py --data project/copick_config.json`` trains the config's four classes (the CZII radius and
    weight for the six under any alias); forcing the CZII six instead is an error naming the classes it would
    leave out and the flag that includes them."""
    root = new_user_project(tiny_dataset, tmp_path / "project")
    runs = tmp_path / "runs"
    flags = [f for f in tiny_training_flags(root / "copick_config.json", runs, patches=2) if f not in ("copick",)]
    flags.remove("--particles")
    done = subprocess.run([sys.executable, "train.py", "--fold", "0", *flags], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    records = yaml.safe_load((run_dir / "config.yaml").read_text())["particles"]
    assert [(r["name"], r["radius"], r["weight"]) for r in records] == [
        ("apoferritin", 60.0, 1.0), ("beta-amylase", 65.0, 0.0), ("my-protein", 150.0, 1.0),
        ("virus-like-particle", 135.0, 1.0)]
    czii = subprocess.run([sys.executable, "train.py", "--fold", "0", *flags, "--particles", "czii",
                           "--experiment", "six"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert czii.returncode == 2, czii.stderr[-2000:]
    assert "picks of ['apoferritin', 'my-protein'], particle classes of the copick config" in czii.stderr
    assert "train on the data's own classes (train.py without --particles, or --particles copick)" in czii.stderr
