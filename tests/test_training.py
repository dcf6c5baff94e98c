"""Training end to end on tiny CPU runs: overfitting, DDP, resume, EMA checkpoints, init-from, CLI errors."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch

import train
from inference.fold_runs import FoldRun, find_fold_runs, load_model
from config.experiment import ExperimentConfig
from config.yaml_cli import from_dict, load_yaml
from inference.run_folder import OOF_CANDIDATES, VAL_METRICS
from lightning_modules.fold_validation import VAL_PICTURE
from lightning_modules.loggers import CSV_DIR
from lightning_modules.picker import ParticlePicker
from config.presets import PRESETS
from config.resolve import resolve_config
from inference.run_folder import RunFolder
from lightning_modules.training_run import fit
from tests.training_fixtures import cli_args, recomputed_validation_score, tiny_overrides, write_folds

NO_AUGMENT = {"flip": False, "rot90": False, "rotate_prob": 0.0, "intensity_scale": 0.0, "intensity_shift": 0.0}


pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]


@pytest.fixture(scope="module")
def short_run(twin, tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    """A 2-step run with EMA (decay 0.5 so the average moves) and validation on TS_A."""
    root, folds = twin
    cfg = resolve_config(None, None, tiny_overrides(root, folds, steps=2, ema={"decay": 0.5}))
    return fit(cfg, tmp_path_factory.mktemp("short_runs"))


def _checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def _model_weights(state: dict) -> dict[str, torch.Tensor]:
    return {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}


def _differs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    assert a.keys() == b.keys()
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_tiny_model_overfits_one_tomogram(twin, tmp_path) -> None:
    """Train on TS_B, validate on the identical TS_A: the official F4 must exceed 0.9."""
    root, folds = twin
    cfg = resolve_config(None, None, tiny_overrides(
        root, folds, patch=32, steps=32,
        data={"positive_fraction": 1.0, "augment": NO_AUGMENT},
        mixup={"prob": 0.0}, ema={"enabled": False}, optim={"lr": 1e-3, "warmup_fraction": 0.0},
        trainer={"max_epochs": 10}, inference={"window": [48, 64, 64], "batch_size": 1}, validation={"picture": False}))
    paths = fit(cfg, tmp_path)
    metrics = json.loads((paths.run_dir / VAL_METRICS).read_text())
    assert metrics["score"] > 0.9, metrics


def test_ddp_spawn_two_cpu_processes(twin, tmp_path) -> None:
    """The DDP code path (gloo, 2 processes), EMA on: ddp_spawn pickles every callback."""
    root, folds = twin
    cfg = resolve_config(None, None, tiny_overrides(
        root, folds, steps=4, ema={"enabled": True, "decay": 0.5}, trainer={"devices": "2", "strategy": "ddp_spawn"}))
    paths = fit(cfg, tmp_path)
    assert paths.last.is_file() and not paths.best.exists()  # the ensemble uses the last weights by default
    state = _checkpoint(paths.last)
    assert _differs(_model_weights(state["state_dict"]), _model_weights(state["current_model_state"]))
    assert state["global_step"] == 2  # 4 patches per epoch split over 2 processes, batch 1
    metrics = json.loads((paths.run_dir / VAL_METRICS).read_text())
    assert metrics["epoch"] == 0 and metrics["score"] == pytest.approx(recomputed_validation_score(paths.run_dir, root))
    candidates = pd.read_csv(paths.run_dir / OOF_CANDIDATES)
    assert set(candidates["experiment"]) <= {"TS_A"}  # the padded duplicate of TS_A counted once


def test_resume_continues_step_and_optimizer(short_run, tmp_path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(short_run.run_dir.parent, runs)
    cfg = resolve_config(None, None, tiny_overrides("unused", steps=2, trainer={"max_epochs": 2}))
    cfg.experiment = short_run.run_dir.name.rsplit("_fold", 1)[0]
    before = _checkpoint(runs / short_run.last.relative_to(short_run.run_dir.parent))
    assert before["global_step"] == 2
    paths = fit(cfg, runs, resume=True)
    metrics = sorted((paths.run_dir / CSV_DIR).glob("version_*/metrics.csv"))
    assert len(metrics) == 2  # the first run's metrics survive the resumed run's
    assert pd.read_csv(metrics[0])["step"].max() < pd.read_csv(metrics[1])["step"].min()
    after = _checkpoint(paths.last)
    assert after["global_step"] == 4
    assert after["epoch"] == 1
    adam_steps = {float(s["step"]) for s in after["optimizer_states"][0]["state"].values()}
    assert adam_steps == {4.0}  # 2 saved + 2 new; a fresh optimizer would say 2
    assert after["lr_schedulers"][0]["last_epoch"] == 4


def test_checkpoint_holds_ema_weights(short_run) -> None:
    state = _checkpoint(short_run.last)
    ema, raw = _model_weights(state["state_dict"]), _model_weights(state["current_model_state"])
    assert _differs(ema, raw)
    cfg = from_dict(ExperimentConfig, load_yaml(short_run.config_file))
    loaded = load_model(FoldRun(cfg, short_run.last)).state_dict()
    assert all(torch.equal(loaded[k], ema[k]) for k in ema)
    assert _differs({k: loaded[k] for k in raw}, raw)


def test_ema_before_its_start_step_holds_the_trained_weights(twin, tmp_path) -> None:
    """A run shorter than ema.start_step exports what it trained, not the initialisation."""
    root, folds = twin
    cfg = resolve_config(None, None, tiny_overrides(root, folds, steps=2, ema={"decay": 0.5, "start_step": 100}))
    state = _checkpoint(fit(cfg, tmp_path).last)
    ema, raw = _model_weights(state["state_dict"]), _model_weights(state["current_model_state"])
    assert not _differs(ema, raw)
    L.seed_everything(cfg.seed, workers=True)
    initial = ParticlePicker.from_config(cfg).model.state_dict()
    assert _differs(ema, {k: initial[k] for k in ema})


def test_fine_tuning_from_a_run_folder_is_recorded_and_named_apart(short_run, twin, tmp_path) -> None:
    """``train.py --init-from RUN_FOLDER`` starts from that run's weights.ckpt, records the absolute path in the
    run's config (a run is reproduced from its folder), and gets another recipe name than training from
    scratch; a resume continues from its own checkpoint, not from the pre-trained weights again."""
    root, folds = twin
    pretrained = shutil.copytree(short_run.run_dir, tmp_path / "pretrained")
    overrides = tiny_overrides(root, folds, steps=2, seed=1)
    runs = tmp_path / "runs"
    assert train.main(cli_args(overrides) + ["--out", str(runs), "--init-from", str(pretrained)]) == 0
    (run_dir,) = runs.iterdir()
    saved = load_yaml(run_dir / "config.yaml")
    assert saved["init_from"] == str(pretrained.absolute())
    scratch = resolve_config(None, None, overrides)
    assert scratch.init_from is None and run_dir.name != f"{scratch.experiment}_fold0"
    shutil.rmtree(pretrained)
    tuned = from_dict(ExperimentConfig, saved)
    resumed = fit(dataclasses.replace(tuned, trainer=dataclasses.replace(tuned.trainer, max_epochs=2)), runs,
                  resume=True)
    assert _checkpoint(resumed.last)["epoch"] == 1


def test_init_from_loads_weights_and_rejects_another_model(short_run, twin, tmp_path) -> None:
    root, folds = twin
    cfg = resolve_config(None, None, tiny_overrides(root, folds, steps=2, seed=1))
    module = ParticlePicker.from_config(cfg)
    ema = _model_weights(_checkpoint(short_run.last)["state_dict"])
    assert _differs(module.model.state_dict(), ema)
    module.load_weights_from(short_run.last)
    assert not _differs(module.model.state_dict(), ema)
    fresh = ParticlePicker.from_config(cfg)
    fresh.load_weights_from(short_run.run_dir)  # a run folder: its weights.ckpt, the final EMA weights
    assert not _differs(fresh.model.state_dict(), _model_weights(_checkpoint(short_run.weights)["state_dict"]))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        module.load_weights_from(tmp_path / "missing.ckpt")
    other = resolve_config(None, None, tiny_overrides(root, folds, steps=2, model={"widths": [4, 8, 16]}))
    with pytest.raises(ValueError, match="another model"):
        fit(dataclasses.replace(other, init_from=str(short_run.last)), tmp_path)
    assert not any(tmp_path.iterdir())  # a refused run leaves no folder that would block the corrected one


@pytest.mark.parametrize("section, values, error, message", [
    ("model", {"name": "unet-resnet9000"}, ValueError, "unknown model name 'unet-resnet9000'"),
    ("model", {"name": "unet-resnet18", "encoder_weights": "/no/such/encoder.pth"}, FileNotFoundError,
     "encoder weights file /no/such/encoder.pth"),
    ("data", {"fold": 7}, ValueError, "unknown fold 7"),
    ("data", {"patch_size": [64, 64, 64]}, ValueError, "larger than tomogram TS_B"),
])
def test_bad_config_is_a_clear_error(twin, tmp_path, section, values, error, message) -> None:
    root, folds = twin
    overrides = tiny_overrides(root, folds)
    overrides[section].update(values)
    with pytest.raises(error, match=message):
        fit(resolve_config(None, None, overrides), tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("choice", ["last", "best"])
def test_checkpoint_choice_decides_weights_and_oof_record(twin, tmp_path, choice) -> None:
    """last.ckpt is rewritten every epoch; with "best" a best.ckpt beside it is what the ensemble finds, and the
    OOF record is that epoch's; with "last" the record is the final epoch's."""
    root, folds = twin
    cfg = resolve_config(None, None, tiny_overrides(root, folds, steps=2, trainer={"max_epochs": 3},
                                                   validation={"checkpoint": choice}))
    paths = fit(cfg, tmp_path)
    assert _checkpoint(paths.last)["epoch"] == 2  # written after every epoch, not only on improvement
    record = json.loads((paths.run_dir / VAL_METRICS).read_text())
    (found,) = find_fold_runs(tmp_path)
    if choice == "last":
        assert not paths.best.exists() and found.checkpoint == paths.weights and record["epoch"] == 2
        assert _checkpoint(paths.weights)["epoch"] == 2
    else:
        best = _checkpoint(paths.best)
        assert found.checkpoint == paths.best and record["epoch"] == best["epoch"]
        assert record["score"] == pytest.approx(best["best_val_score"])


def test_last_checkpoint_needs_a_final_validation(twin) -> None:
    root, folds = twin
    with pytest.raises(ValueError, match="multiple of trainer.check_val_every_n_epoch"):
        resolve_config(None, None, tiny_overrides(root, folds, trainer={"max_epochs": 5,
                                                                        "check_val_every_n_epoch": 2}))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_trains_one_step_on_the_cpu(preset, twin, tmp_path) -> None:
    """Each named recipe resolves and runs one optimiser step and one validation on the CPU at a tiny size: the
    gpu preset keeps its network, loss and precision (bf16 autocast runs on the CPU too); only sizes shrink."""
    root, folds = twin
    tiny = {"data": {"data_root": str(root), "folds_file": str(folds), "patch_size": [32, 32, 32],
                     "batch_size": 2, "num_workers": 0, "patches_per_epoch": 2},  # BatchNorm needs 2 at 1^3
            "inference": {"window": [32, 64, 64], "batch_size": 1},
            "validation": {"picture": False},
            "trainer": {"accelerator": "cpu", "devices": "1", "max_epochs": 1, "check_val_every_n_epoch": 1},
            "logging": {"wandb": False}}
    cfg = resolve_config(preset, None, tiny)
    assert cfg.model.name == PRESETS[preset]["model"]["name"]
    assert cfg.trainer.precision == PRESETS[preset].get("trainer", {}).get("precision", cfg.trainer.precision)
    paths = fit(cfg, tmp_path)
    assert _checkpoint(paths.last)["global_step"] == 1
    score = json.loads((paths.run_dir / VAL_METRICS).read_text())["score"]
    assert score == pytest.approx(recomputed_validation_score(paths.run_dir, root))


def test_cli_rejects_unknown_keys(twin, tmp_path, capsys) -> None:
    root, folds = twin
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--data", str(root), "--optim.lrr", "1e-3"])
    assert exit_info.value.code == 2
    assert "--optim.lrr" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lrr: 0.001\n")
    assert train.main(["--data", str(root), "--config", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown config key" in err and "optim.lrr" in err


@pytest.fixture(scope="module")
def cli_run(tiny_dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path, str]:
    """``train.main`` on the 7-run tiny dataset, fold 0; returns (argv, run folder, stdout)."""
    out = tmp_path_factory.mktemp("cli_runs")
    overrides = tiny_overrides(tiny_dataset, steps=2, validation={"picture": True})
    argv = ["--preset", "cpu", "--out", str(out), *cli_args(overrides)]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert train.main(argv) == 0
    cfg = resolve_config("cpu", None, train.overrides_from(train.build_parser().parse_args(argv)))
    return argv, RunFolder.of(out, cfg).run_dir, stdout.getvalue()


def test_cli_writes_the_run_folder(cli_run) -> None:
    argv, run_dir, stdout = cli_run
    saved = from_dict(ExperimentConfig, load_yaml(run_dir / "config.yaml"))
    expected = resolve_config("cpu", None, train.overrides_from(train.build_parser().parse_args(argv)))
    assert saved == expected
    assert saved.data.fold == 0 and saved.model.name == "unet-tiny"
    for name in ("checkpoints/last.ckpt", OOF_CANDIDATES, "csv/version_0/metrics.csv",
                 VAL_METRICS, VAL_PICTURE):
        assert (run_dir / name).is_file(), name
    assert set(pd.read_csv(run_dir / OOF_CANDIDATES)["experiment"]) <= {"TS_5_4"}
    score = json.loads((run_dir / VAL_METRICS).read_text())["score"]
    assert f"val score {score:.4f}" in stdout
    assert str(run_dir) in stdout


def test_cli_refuses_to_clobber_and_to_resume_nothing(cli_run, tmp_path, capsys) -> None:
    argv, run_dir, _ = cli_run
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and str(run_dir) in err and "--resume" in err
    fresh = [*argv, "--out", str(tmp_path), "--resume"]
    assert train.main(fresh) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert not (RunFolder.of(tmp_path, from_dict(ExperimentConfig, load_yaml(run_dir / "config.yaml")))
                .last.exists())


def test_folds_file_is_the_split(twin, tmp_path) -> None:
    """A folds.yaml naming a run the dataset lacks is refused with the file name."""
    root, _ = twin
    bad = write_folds(tmp_path / "folds.yaml", {0: ["TS_A"], 1: ["TS_B", "TS_C"]})
    with pytest.raises(ValueError, match="unknown runs.*TS_C"):
        fit(resolve_config(None, None, tiny_overrides(root, bad)), tmp_path)


def test_same_seed_same_run_on_the_cpu(short_run, twin, tmp_path) -> None:
    """Seeded and deterministic on the CPU: the same config trains to bit-identical weights and scores."""
    root, folds = twin
    cfg = resolve_config(None, None, tiny_overrides(root, folds, steps=2, ema={"decay": 0.5}))
    again = fit(cfg, tmp_path)
    first, second = _checkpoint(short_run.last), _checkpoint(again.last)
    assert not _differs(_model_weights(first["current_model_state"]), _model_weights(second["current_model_state"]))
    assert not _differs(_model_weights(first["state_dict"]), _model_weights(second["state_dict"]))
    scores = [json.loads((p.run_dir / VAL_METRICS).read_text())["score"] for p in (short_run, again)]
    assert scores[0] == scores[1]
    other = fit(resolve_config(None, None, tiny_overrides(root, folds, steps=2, seed=7)), tmp_path)
    assert _differs(_model_weights(first["current_model_state"]),
                    _model_weights(_checkpoint(other.last)["current_model_state"]))
