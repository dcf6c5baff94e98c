"""Reading checkpoints written by train.py, safely: nothing but tensors and plain containers is ever unpickled
(``weights_only=True``), so a checkpoint from someone else cannot run code when it is opened; every error names
the file and the role it was given in."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dataio.torch_files import load_tensors

TRAINING_KEYS: tuple[str, ...] = ("optimizer_states", "lr_schedulers", "loops", "callbacks")
"""What resuming needs beyond the weights (Lightning's own restore reads these)."""


def read_checkpoint(path: str | Path, role: str, for_resume: bool = False) -> dict[str, Any]:
    """A checkpoint written by train.py, or a ValueError naming ``path`` and what is wrong with it.

    ``role`` says what it was given as (``--init-from``, ``--resume``, ``fold 3``); ``for_resume`` also requires
    the training state (a slim best.ckpt has none). ``mmap`` keeps the check of a large resume checkpoint cheap:
    Lightning reads it again to restore.
    """
    state = load_tensors(path, f"{role} checkpoint", mmap=for_resume)
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


def model_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The plain network's weights from a LightningModule checkpoint (``model.`` prefix removed)."""
    return {k[len("model."):]: v for k, v in state["state_dict"].items() if k.startswith("model.")}
