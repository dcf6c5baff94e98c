"""W&B as the comparison tool, read back offline with the wandb library: a sweep trial's training runs and
its ensemble form one group, with the config flattened and the OOF CV where a sweep can optimise it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runtime.wandb_runs import RUN_VARIABLES, child_environment, flatten_config
from particles import PARTICLE_NAMES
from postprocess.wandb_report import OBJECTIVE
from tests.training_fixtures import cli_args, tiny_overrides
from tests.wandb_files import offline_runs

REPO = Path(__file__).resolve().parents[1]


def test_configs_are_flattened_to_one_column_per_field() -> None:
    doc = {"seed": 1, "data": {"patch_size": (64, 64, 64), "fold": "0+1"}, "optim": {"lr": 4e-3, "x": {"y": None}}}
    assert flatten_config(doc) == {"seed": 1, "data.patch_size": [64, 64, 64], "data.fold": "0+1",
                                   "optim.lr": 4e-3, "optim.x.y": None}


def test_children_of_a_sweep_trial_do_not_inherit_its_run() -> None:
    env = {"PATH": "/bin", "WANDB_MODE": "offline", "WANDB_PROJECT": "p", **{v: "x" for v in RUN_VARIABLES}}
    assert child_environment(env) == {"PATH": "/bin", "WANDB_MODE": "offline", "WANDB_PROJECT": "p"}


def test_the_sweep_definition_drives_the_trial_with_recipe_flags() -> None:
    sweep = yaml.safe_load((REPO / "sweeps" / "cpu_recipe.yaml").read_text())
    assert sweep["metric"] == {"name": OBJECTIVE, "goal": "maximize"}
    assert (REPO / sweep["program"]).is_file()
    from config.experiment import ExperimentConfig
    from config.yaml_cli import leaf_fields

    known = {name for name, _, _ in leaf_fields(ExperimentConfig)}
    assert set(sweep["parameters"]) <= known, set(sweep["parameters"]) - known


def test_the_sweep_tunes_nothing_its_recipe_ignores() -> None:
    """Every loss field the sweep varies changes the loss of the preset it trains (a sweep over
    ``loss.pos_weight`` under the cpu preset's Dice loss would tune nothing)."""
    import torch

    from config.resolve import resolve_config
    from lightning_modules.losses import build_loss

    sweep = yaml.safe_load((REPO / "sweeps" / "cpu_recipe.yaml").read_text())
    preset = sweep["command"][sweep["command"].index("--preset") + 1]
    torch.manual_seed(0)
    logits, target = torch.randn(2, 6, 4, 4, 4), torch.rand(2, 6, 4, 4, 4)
    for name, spec in sweep["parameters"].items():
        if not name.startswith("loss."):
            continue
        losses = set()
        for value in spec["values"][:2]:
            cfg = resolve_config(preset, None, {"loss": {name.split(".", 1)[1]: value}})
            losses.add(round(float(build_loss(cfg.loss)(logits, target)), 6))
        assert len(losses) == 2, f"{name} does not change the {preset} preset's loss"


@pytest.mark.slow
def test_a_sweep_trial_logs_train_and_ensemble_runs_in_one_group(tiny_dataset, tmp_path) -> None:
    overrides = tiny_overrides(tiny_dataset, steps=2, logging={"wandb": True})
    for key in ("fold", "data_root"):
        overrides["data"].pop(key)
    out = tmp_path / "runs"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": "",
           "WANDB_RUN_ID": "trialabc", "WANDB_SWEEP_ID": "sweep1"}  # as `wandb agent` starts a trial
    with open(tmp_path / "trial.log", "w") as log:
        done = subprocess.run([sys.executable, "sweeps/trial.py", "--data", str(tiny_dataset), "--out", str(out),
                               "--folds", "0", "1", *cli_args(overrides), "--optim.lr=0.002"],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=900)
    assert done.returncode == 0, (tmp_path / "trial.log").read_text()[-3000:]
    runs = offline_runs(out)
    by_job = {job: [r for r in runs if r.job_type == job] for job in ("trial", "train", "ensemble")}
    assert [len(by_job[j]) for j in ("trial", "train", "ensemble")] == [1, 2, 1], [(r.job_type, r.path) for r in runs]
    trial, ensemble_run = by_job["trial"][0], by_job["ensemble"][0]
    experiment = "sweep1-trialabc"
    assert trial.run_id == "trialabc"
    assert {r.group for r in by_job["train"] + [ensemble_run]} == {experiment}
    for run in by_job["train"]:  # the full config, one key per field, the swept value as given
        assert run.config["optim.lr"] == 0.002 and run.config["data.patch_size"] == [32, 32, 32]
        assert run.config["experiment"] == experiment and "data" not in run.config
    assert sorted(r.config["data.fold"] for r in by_job["train"]) == ["0", "1"]  # text, like "0+1"
    saved = json.loads((out / f"{experiment}.thresholds.json").read_text())
    oof = saved["oof_scores"]
    assert ensemble_run.summary[OBJECTIVE] == pytest.approx(oof[OBJECTIVE]) == pytest.approx(trial.summary[OBJECTIVE])
    for name in PARTICLE_NAMES:
        assert ensemble_run.summary[f"threshold/{name}"] == pytest.approx(saved["thresholds"][name])
        assert f"oof/f4/{name}" in ensemble_run.summary and f"test/f4/{name}" in ensemble_run.summary
    assert "test/score" in ensemble_run.summary
    assert ensemble_run.history["oof_pr_curves/_type"] == "table-file"
    assert ensemble_run.history["oof_pr_curves/nrows"] > len(PARTICLE_NAMES)  # a curve per class
    assert ensemble_run.config["ensemble.split"] == "test" and ensemble_run.config["optim.lr"] == 0.002


def test_the_ensemble_run_carries_its_pictures_and_nothing_when_disabled(tmp_path, monkeypatch) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from postprocess.wandb_report import log_ensemble_run

    png = tmp_path / "TS_1_slices.png"
    plt.imsave(png, [[0.0, 1.0], [1.0, 0.0]])
    curves = pd.DataFrame({"class": ["ribosome"] * 2, "threshold": [0.2, 0.5], "precision": [0.5, 1.0],
                           "recall": [1.0, 0.5], "f4": [0.94, 0.53]})
    kwargs = dict(project="p", entity=None, group="g", name="ensemble-test", config={"optim": {"lr": 0.1}},
                  directory=tmp_path / "w", scores={OBJECTIVE: 0.5}, thresholds={"ribosome": 0.2},
                  pr_curves=curves, pictures=[png])
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert log_ensemble_run(**kwargs) is None and not (tmp_path / "w").exists()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    assert log_ensemble_run(**kwargs)
    [run] = offline_runs(tmp_path / "w")
    assert (run.job_type, run.group, run.config["optim.lr"]) == ("ensemble", "g", 0.1)
    assert run.summary[OBJECTIVE] == 0.5 and run.summary["threshold/ribosome"] == 0.2
    assert run.history["pictures/TS_1_slices/_type"] == "image-file"
    assert run.history["oof_pr_curves/nrows"] == 2
