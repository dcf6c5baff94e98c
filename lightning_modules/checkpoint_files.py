"""Checkpoint files on disk: written so a crash never leaves a truncated one, read with errors that name the
file, and slimmed to what inference needs."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any
from weakref import proxy

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from runtime.atomic import atomic_path

INFERENCE_KEYS: tuple[str, ...] = ("state_dict", "hyper_parameters", "epoch", "global_step",
                                   "pytorch-lightning_version", "best_val_score")
"""What a checkpoint used only for inference keeps: the (EMA) weights, the config and where it came from."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Every checkpoint goes to a temporary file in its own folder, is fsynced, then renamed over the target.

    Lightning's default writes through a temporary file in ``$TMPDIR`` and moves it: on a cluster with a
    node-local /tmp that move is a copy, and a kill during it leaves the target truncated.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


def slim_checkpoint(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The inference part of a full checkpoint (no optimizer, scheduler or callback state, no raw weights)."""
    return {key: checkpoint[key] for key in INFERENCE_KEYS if key in checkpoint}


class SlimCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose file holds only what inference needs: with EMA the averaged weights (swapped in
    by the EMA callback's save hook, which a ``save_weights_only`` checkpoint would skip) and the config.
    A resnet34 fold's weights.ckpt / best.ckpt is a quarter of its full training state."""

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        trainer.strategy.save_checkpoint(slim_checkpoint(checkpoint), filepath)
        trainer.strategy.barrier("SlimCheckpoint._save_checkpoint")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Temporary checkpoint files a killed save left in ``folder`` (only names ``atomic_path`` makes)."""
    stale = sorted(folder.glob(".*.ckpt.*.tmp")) if folder.is_dir() else []
    for path in stale:
        path.unlink()
    return stale


def rng_states() -> dict[str, Any]:
    """Every global generator a training step draws from (mixup uses torch's), for an exact resume; as plain
    lists and tensors, which Lightning's ``weights_only`` restore accepts."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state(),
                              "numpy": [kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss]}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    kind, key, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
