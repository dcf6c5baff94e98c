"""What a user must be able to trust beyond one clear error per bad input (tests/test_bad_inputs_*.py): outputs
that appear together or not at all, run folders that say whether they finished, failed starts that leave
nothing behind, Ctrl-C that says how to continue, and the same treatment of foreign objects in every layout."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import ensemble
import train
from dataio.copick_config import write_copick_configs
from dataio.copick_project import CopickProjectSource
from dataio.copick_source import CopickSource
from dataio.layout import train_overlay_root
from runtime.run_status import read_run_status
from lightning_modules.picker import ParticlePicker
from tests.training_fixtures import cli_args, tiny_overrides
from particles import CZII_PARTICLES

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]


def _train_argv(root: Path, runs: Path, steps: int = 2, **extra: object) -> list[str]:
    overrides = tiny_overrides(root, steps=steps, inference={"window": [48, 96, 96]}, **extra)
    return ["--out", str(runs), *cli_args(overrides)]


@pytest.fixture(scope="module")
def runs(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished run (fold 0) of the tiny recipe."""
    out = tmp_path_factory.mktemp("trust_runs")
    assert train.main(_train_argv(tiny_dataset, out)) == 0
    return out


def _outputs(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_finished_run_says_so(runs) -> None:
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    status = read_run_status(run_dir)
    assert status is not None and status["status"] == "finished" and status["global_step"] == 2


def test_ensemble_outputs_appear_together_or_not_at_all(runs, tiny_dataset, tmp_path, monkeypatch) -> None:
    """A failure while the third pick file is written (a kill, a full disk) leaves the previous CSV, pick files,
    pictures and thresholds exactly as they were, and no temporary file behind."""
    work = tmp_path / "work"
    shutil.copytree(runs, work / "runs")
    argv = ["--runs", str(work / "runs"), "--data", str(tiny_dataset), "--out", str(work / "out" / "sub.csv"),
            "--pictures", str(work / "out" / "pictures")]
    assert ensemble.main(argv) == 0
    before = _outputs(work)
    assert any(k.endswith("sub.csv") for k in before) and any(k.endswith(".png") for k in before)
    assert any(k.endswith("thresholds.json") for k in before) and any(k.endswith("ribosome.json") for k in before)

    import dataio.pick_writers as pick_writers
    real, calls = pick_writers.pick_json, []

    def dies_on_the_third(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what Ctrl-C (or a kill's Python equivalent) does mid-write
        return real(*args, **kwargs)

    monkeypatch.setattr(pick_writers, "pick_json", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):  # other settings: new thresholds and picks would replace the old
        ensemble.main([*argv, "--tta", "identity", "flip_x", "--refit-thresholds"])
    assert _outputs(work) == before
    monkeypatch.setattr(pick_writers, "pick_json", real)
    assert ensemble.main([*argv, "--tta", "identity", "flip_x", "--refit-thresholds"]) == 0
    after = _outputs(work)
    assert set(after) == set(before) and after != before
    assert not [k for k in after if k.endswith(".tmp") or ".tmp." in k]


def test_a_failed_start_leaves_nothing_that_blocks_others(runs, tiny_dataset, tmp_path, capsys) -> None:
    """A run that fails before its first checkpoint (here: a batch larger than an epoch) removes its folder,
    so the next ensemble over the runs folder still works."""
    work = tmp_path / "runs"
    shutil.copytree(runs, work)
    failed = _train_argv(tiny_dataset, work, seed=7, data={"batch_size": 4, "patches_per_epoch": 2})
    assert train.main(failed) == 2
    assert "batch_size 4 exceeds patches_per_epoch 2" in capsys.readouterr().err
    assert len([p for p in work.iterdir() if p.is_dir()]) == 1
    assert ensemble.main(["--runs", str(work), "--data", str(tiny_dataset), "--out", str(tmp_path / "s.csv")]) == 0


def test_a_run_that_fails_after_a_checkpoint_is_recorded_and_refused(runs, tiny_dataset, tmp_path, monkeypatch,
                                                                     capsys) -> None:
    work = tmp_path / "runs"
    argv = _train_argv(tiny_dataset, work, trainer={"max_epochs": 2})
    real = ParticlePicker.training_step

    def crashes_in_epoch_two(self, batch, batch_idx):
        if self.current_epoch == 1:
            raise ValueError("simulated crash in epoch 2")
        return real(self, batch, batch_idx)

    monkeypatch.setattr(ParticlePicker, "training_step", crashes_in_epoch_two)
    assert train.main(argv) == 2
    (run_dir,) = [p for p in work.iterdir() if p.is_dir()]
    status = read_run_status(run_dir)
    assert status["status"] == "failed" and "simulated crash" in status["reason"]
    common = ["--runs", str(work), "--data", str(tiny_dataset), "--out", str(tmp_path / "s.csv")]
    capsys.readouterr()
    assert ensemble.main(common) == 2
    assert f"{run_dir} (failed)" in capsys.readouterr().err
    assert ensemble.main([*common, "--allow-unfinished"]) == 0
    assert "--allow-unfinished: using" in capsys.readouterr().out
    monkeypatch.setattr(ParticlePicker, "training_step", real)
    assert train.main([*argv, "--resume"]) == 0  # the failed run continues from its last checkpoint
    assert read_run_status(run_dir)["status"] == "finished"


def test_scoring_runs_the_models_trained_on_says_so(runs, tiny_dataset, tmp_path, capsys) -> None:
    code = ensemble.main(["--runs", str(runs), "--data", str(tiny_dataset), "--split", "train", "--score",
                          "--out", str(tmp_path / "s.csv"), "--thresholds", str(tmp_path / "t.json")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "warning: --score includes runs some models trained on (TS_5_4" not in printed  # held out by fold 0
    assert "warning: --score includes runs some models trained on (TS_69_2, TS_6_4" in printed


def test_a_non_particle_pick_file_is_skipped_with_a_note_in_every_layout(tiny_dataset, tmp_path, capsys) -> None:
    """A membrane's picks beside the particles': both the Kaggle-layout reader and the copick library path skip
    them with one line naming the object (once, not per run), and read the same particle picks."""
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    write_copick_configs(data, particles=CZII_PARTICLES)
    for run in ("TS_5_4", "TS_6_4"):
        picks = train_overlay_root(data) / "ExperimentRuns" / run / "Picks"
        (picks / "curation_0_membrane.json").write_text(json.dumps({
            "pickable_object_name": "membrane", "user_id": "curation", "session_id": "0", "run_name": run,
            "unit": "angstrom", "points": [{"location": {"x": 10.0, "y": 10.0, "z": 10.0}}]}))
    config = json.loads((data / "copick_config.json").read_text())
    config["pickable_objects"].append({"name": "membrane", "is_particle": False, "label": 7, "radius": 10})
    (data / "copick_config.json").write_text(json.dumps(config))
    tables = []
    for source in (CopickSource(data, particles=CZII_PARTICLES), CopickProjectSource(data / "copick_config.json",
                                                                                     particles=CZII_PARTICLES)):
        capsys.readouterr()
        tables.append([source.picks(run) for run in ("TS_5_4", "TS_6_4")])
        notes = [line for line in capsys.readouterr().out.splitlines() if "skipping picks of 'membrane'" in line]
        assert len(notes) == 1, notes
    for kaggle, copick in zip(*tables):
        assert len(kaggle) == len(copick) > 0 and "membrane" not in set(copick["particle_type"])


def _default_sigint() -> None:
    """A test run in the background (``cmd &``, some CI runners) inherits SIGINT ignored, and Python then installs
    no KeyboardInterrupt handler: give the child the terminal's default, as a user's shell does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_training_says_how_to_continue(tiny_dataset, tmp_path) -> None:
    """SIGINT to a real training process: exit code 130, a line naming --resume, run.json 'interrupted', an
    ensemble that refuses the run by name; then --resume finishes it."""
    runs = tmp_path / "runs"

    def argv_for(epochs: int) -> list[str]:  # one run folder whatever its length
        return ["--experiment", "ctrl-c", *_train_argv(tiny_dataset, runs, steps=2, trainer={"max_epochs": epochs})]

    argv = argv_for(5000)  # far longer than the test waits
    env = {**os.environ, "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    log = tmp_path / "train.log"  # a file, not a pipe: a full pipe nobody reads would block the child
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "train.py", *argv], cwd=REPO, env=env, text=True, stdout=sink,
                                stderr=subprocess.STDOUT, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 240
    while not list(runs.glob("*/checkpoints/weights.ckpt")) and time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    err = log.read_text()
    assert proc.returncode == 130, err[-2000:]
    assert "was interrupted at epoch" in err and "--resume" in err and "Traceback" not in err
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    assert read_run_status(run_dir)["status"] == "interrupted"
    refused = subprocess.run([sys.executable, "ensemble.py", "--runs", str(runs), "--data", str(tiny_dataset),
                              "--out", str(tmp_path / "s.csv")], cwd=REPO, env=env, text=True,
                             capture_output=True, timeout=240)
    assert refused.returncode == 2 and f"{run_dir} (interrupted)" in refused.stderr
    interrupted = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    done = subprocess.run([sys.executable, "train.py", *argv_for(interrupted["epoch"] + 2), "--resume"], cwd=REPO,
                          env=env, text=True, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    status = read_run_status(run_dir)
    assert status["status"] == "finished" and status["global_step"] > interrupted["global_step"]


def test_picks_of_an_object_the_copick_config_never_declares_are_an_error(tiny_dataset, tmp_path) -> None:
    """A pick file whose object is not in the project's copick config is a typo or another project's file:
    refused by name in both layouts, never skipped."""
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    write_copick_configs(data, particles=CZII_PARTICLES)
    picks = train_overlay_root(data) / "ExperimentRuns" / "TS_5_4" / "Picks"
    (picks / "curation_0_ribosme.json").write_text(json.dumps({
        "pickable_object_name": "ribosme", "user_id": "curation", "session_id": "0", "run_name": "TS_5_4",
        "unit": "angstrom", "points": [{"location": {"x": 10.0, "y": 10.0, "z": 10.0}}]}))
    for source in (CopickSource(data, particles=CZII_PARTICLES), CopickProjectSource(data / "copick_config.json",
                                                                                     particles=CZII_PARTICLES)):
        with pytest.raises(ValueError, match=r"picks of \['ribosme'\], object\(s\) that the copick config .*"
                                             r"copick_config.json does not declare"):
            source.picks("TS_5_4")
        assert len(source.picks("TS_6_4")) > 0  # other runs read as before
