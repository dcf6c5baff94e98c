"""Checkpoint files on disk: written so a crash never leaves a truncated one, read with errors that name the
file, and slimmed to what inference needs."""
from __future__ import annotations

import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any
from weakref import proxy

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from dataio.atomic import atomic_path

INFERENCE_KEYS: tuple[str, ...] = ("state_dict", "hyper_parameters", "epoch", "global_step",
                                   "pytorch-lightning_version", "best_val_score")
"""What a checkpoint used only for inference keeps: the (EMA) weights, the config and where it came from."""

TRAINING_KEYS: tuple[str, ...] = ("optimizer_states", "lr_schedulers", "loops", "callbacks")
"""What resuming needs beyond the weights (Lightning's own restore reads these)."""

_UNREADABLE = (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile,
               AttributeError, ModuleNotFoundError, ImportError, IndexError, KeyError, TypeError)


_FORBIDDEN_GLOBAL = re.compile(r"(?:GLOBAL|global|class)\s+([\w.]+)")
"""torch's weights-only unpickler names the import it refused ("unsupported GLOBAL posix.system")."""


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


def read_checkpoint(path: str | Path, role: str, for_resume: bool = False) -> dict[str, Any]:
    """A checkpoint written by train.py, or a ValueError naming ``path`` and what is wrong with it.

    Never unpickles anything but tensors and plain containers (``weights_only=True``): a checkpoint from
    someone else cannot run code when it is opened. ``role`` says what it was given as (``--init-from``, ``--resume``, ``fold 3``); ``for_resume`` also
    requires the training state (a slim best.ckpt has none). ``mmap`` keeps the check of a large resume
    checkpoint cheap: Lightning reads it again to restore.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{role} checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=for_resume)
    except pickle.UnpicklingError as err:
        wanted = _FORBIDDEN_GLOBAL.search(str(err))
        if wanted is None:
            raise ValueError(f"{role} checkpoint {path} cannot be read (not a pickle of tensors): it is "
                             "truncated, corrupt or not a PyTorch checkpoint") from None
        raise ValueError(f"{role} checkpoint {path} asks to import {wanted.group(1)} when unpickled: it holds "
                         "Python objects other than tensors, numbers, strings and containers (another tool's "
                         "file, or one crafted to run code); refusing to load it (checkpoints are only read with "
                         "torch.load(weights_only=True))") from None
    except _UNREADABLE as err:
        raise ValueError(f"{role} checkpoint {path} cannot be read ({_first_line(err)}): it is truncated, "
                         "corrupt or not a PyTorch checkpoint") from None
    weights = state.get("state_dict") if isinstance(state, dict) else None
    if not isinstance(weights, dict) or not any(str(k).startswith("model.") for k in weights):
        raise ValueError(f"{role} checkpoint {path} is not one written by train.py: it holds no model weights "
                         "(no 'model.' keys in a 'state_dict')")
    if not isinstance(state.get("hyper_parameters", {}).get("config"), dict):
        raise ValueError(f"{role} checkpoint {path} is not one written by train.py: it carries no training config")
    missing = [key for key in TRAINING_KEYS if key not in state] if for_resume else []
    if missing:
        raise ValueError(f"{role} checkpoint {path} holds inference weights only (no {', '.join(missing)}): "
                         "training cannot continue from it; start the run again with --overwrite, or fine-tune "
                         "from it with --init-from")
    return state


def _first_line(err: BaseException) -> str:
    """torch's messages run on for lines: the first sentence names the problem."""
    return (str(err).splitlines() or [type(err).__name__])[0].split(". ")[0]


def model_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The plain network's weights from a LightningModule checkpoint (``model.`` prefix removed)."""
    return {k[len("model."):]: v for k, v in state["state_dict"].items() if k.startswith("model.")}


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
