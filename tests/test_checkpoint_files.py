"""Checkpoint files: atomic saves beside the target, slim best.ckpt, clear errors, exact resume."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch

from inference.run_folder import RunFolder
from lightning_modules import training_run
from inference.checkpoint_reader import TRAINING_KEYS, model_weights, read_checkpoint
from lightning_modules.checkpoint_files import AtomicCheckpointIO, remove_stale_temporaries
from inference.fold_runs import FoldRun, find_fold_runs, fold_run_from_checkpoint, load_model
from lightning_modules.picker import ParticlePicker
from config.resolve import resolve_config
from lightning_modules.training_run import fit
from tests.training_fixtures import tiny_overrides


pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def _equal_states(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_atomic_io_writes_beside_the_target_never_in_tmpdir(tmp_path, monkeypatch) -> None:
    """The temporary file lives in the checkpoint's own folder (a rename there is atomic); $TMPDIR stays empty
    even when the write fails half way, and the old checkpoint survives that failure."""
    elsewhere = tmp_path / "tmpdir"
    elsewhere.mkdir()
    monkeypatch.setenv("TMPDIR", str(elsewhere))
    target = tmp_path / "ckpt" / "last.ckpt"
    io_plugin = AtomicCheckpointIO()
    io_plugin.save_checkpoint({"state_dict": {"model.w": torch.ones(3)}}, target)
    assert torch.equal(_load(target)["state_dict"]["model.w"], torch.ones(3))

    def broken_save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        io_plugin.save_checkpoint({"state_dict": {"model.w": torch.zeros(3)}}, target)
    assert torch.equal(_load(target)["state_dict"]["model.w"], torch.ones(3))
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]
    assert not any(elsewhere.iterdir())


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path) -> None:
    (tmp_path / ".last.ckpt.abc123.tmp").write_bytes(b"partial")
    (tmp_path / "last.ckpt").write_bytes(b"kept")
    (tmp_path / "notes.tmp").write_text("someone else's")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".last.ckpt.abc123.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "notes.tmp"]


@pytest.fixture(scope="module")
def best_run(twin, tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    root, folds = twin
    cfg = resolve_config(None, None, tiny_overrides(root, folds, steps=2, ema={"decay": 0.5},
                                                   validation={"checkpoint": "best"}))
    return fit(cfg, tmp_path_factory.mktemp("best_runs"))


def test_best_checkpoint_is_slim_and_holds_the_ema_weights(best_run) -> None:
    best, last, weights = _load(best_run.best), _load(best_run.last), _load(best_run.weights)
    for slim in (best, weights):
        assert not set(TRAINING_KEYS) & set(slim) and "current_model_state" not in slim
        assert isinstance(slim["hyper_parameters"]["config"], dict)
    assert _equal_states(weights["state_dict"], last["state_dict"]) and weights["epoch"] == last["epoch"]
    assert set(TRAINING_KEYS) <= set(last)
    assert _equal_states(best["state_dict"], last["state_dict"])  # one epoch: best is last, EMA swapped in
    assert not _equal_states(model_weights(best), model_weights({"state_dict": last["current_model_state"]}))
    assert best_run.best.stat().st_size < 0.6 * best_run.last.stat().st_size
    (found,) = find_fold_runs(best_run.run_dir.parent)
    assert found.checkpoint == best_run.best
    assert _equal_states(load_model(found).state_dict(), model_weights(best))


@pytest.mark.parametrize("damage, message", [
    ("truncate", "cannot be read .*truncated, corrupt or not a PyTorch checkpoint"),
    ("text", "cannot be read .*truncated, corrupt or not a PyTorch checkpoint"),
    ("empty", "cannot be read"),
    ("plain_state_dict", "not one written by train.py: it holds no model weights"),
    ("no_config", "carries no training config"),
])
def test_damaged_or_foreign_checkpoints_are_named(best_run, tmp_path, damage, message) -> None:
    """The same error, naming the file, whether it is given to --init-from, --checkpoints (and so --soup),
    used as a fold's checkpoint, or resumed."""
    path = tmp_path / "given.ckpt"
    good = best_run.last.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "text":
        path.write_text("model: unet\n")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "plain_state_dict":
        torch.save({"conv.weight": torch.ones(2)}, path)
    else:
        state = _load(best_run.last)
        state.pop("hyper_parameters")
        torch.save(state, path)
    cfg = best_run.read_config()
    for role, call in (("--init-from", lambda: ParticlePicker.from_config(cfg).load_weights_from(path)),
                       ("--checkpoints", lambda: fold_run_from_checkpoint(path)),
                       ("fold 0", lambda: load_model(FoldRun(cfg, path))),
                       ("--resume", lambda: read_checkpoint(path, "--resume", for_resume=True))):
        with pytest.raises(ValueError, match=message) as info:
            call()
        assert str(path) in str(info.value) and role in str(info.value)


def test_resume_refuses_a_slim_or_damaged_last_checkpoint(best_run, tmp_path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(best_run.run_dir.parent, runs)
    cfg = best_run.read_config()
    paths = RunFolder.of(runs, cfg)
    shutil.copy(paths.best, paths.last)
    with pytest.raises(ValueError, match="inference weights only .*optimizer_states"):
        fit(cfg, runs, resume=True)
    paths.last.write_bytes(best_run.last.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"--resume checkpoint {paths.last} cannot be read"):
        fit(cfg, runs, resume=True)


class _StopAfterFirstEpoch(L.Callback):
    """An interruption at an epoch boundary, as a crash after last.ckpt was written would leave it."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.should_stop = True


def test_resume_reproduces_the_uninterrupted_run_exactly(twin, tmp_path, monkeypatch) -> None:
    """Step, learning-rate schedule, optimizer, EMA, mixup's random draws and the patch sampler all continue
    where they stopped: a run interrupted after epoch 0 and resumed ends bit-identical to one never stopped."""
    root, folds = twin
    overrides = tiny_overrides(root, folds, steps=4, trainer={"max_epochs": 3}, ema={"decay": 0.5},
                               mixup={"prob": 0.5}, data={"batch_size": 2})
    straight = fit(resolve_config(None, None, overrides), tmp_path / "straight")
    build = training_run.build_trainer

    def interrupted_trainer(*args: object, **kwargs: object) -> L.Trainer:
        trainer = build(*args, **kwargs)
        trainer.callbacks.append(_StopAfterFirstEpoch())
        return trainer
    monkeypatch.setattr(training_run, "build_trainer", interrupted_trainer)
    cfg = resolve_config(None, None, overrides)
    stopped = fit(cfg, tmp_path / "resumed")
    assert _load(stopped.last)["global_step"] == 2
    monkeypatch.setattr(training_run, "build_trainer", build)
    resumed = fit(cfg, tmp_path / "resumed", resume=True)
    a, b = _load(straight.last), _load(resumed.last)
    assert a["global_step"] == b["global_step"] == 6
    for key in ("state_dict", "current_model_state"):
        assert _equal_states(a[key], b[key]), key
    adam_a, adam_b = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    assert all(_equal_states(adam_a[i], adam_b[i]) for i in adam_a)
    assert a["lr_schedulers"] == b["lr_schedulers"]
    scores = [json.loads((p.run_dir / "val_metrics.json").read_text())["score"] for p in (straight, resumed)]
    assert scores[0] == scores[1]
